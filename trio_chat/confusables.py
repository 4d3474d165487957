"""Look-alike names (PROTOCOL.md section 3): Unicode TR39 skeletons from ICU's confusables.

`confusables.json` maps each code point to its TR39 prototype. It is generated
from ICU's SpoofChecker, the maintained implementation of TR39, by running this
module with PyICU installed (`nox -s confusables`), so the server itself needs
no ICU at run time.
"""

from __future__ import annotations

import functools
import json
import sys
import unicodedata
from pathlib import Path

from .protocol import Name

TABLE = Path(__file__).with_name("confusables.json")


@functools.cache
def _prototypes() -> dict[str, str]:
    with TABLE.open(encoding="utf-8") as file:
        table: dict[str, str] = json.load(file)["map"]
    return table


def skeleton(text: str) -> str:
    """TR39 skeleton: NFD, each character to its prototype, NFD again."""
    prototypes = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join([prototypes.get(c, c) for c in decomposed]))


def skeletons(name: Name) -> set[str]:
    """The skeletons a name is compared by: of its spelling, its key, and its NFKC key,
    each also case-folded after the mapping.

    Case folding can hide a look-alike (`I` and `l` share a skeleton, `i` and
    `l` do not) or reveal one (`ѕ` and `S` only match folded); TR39 leaves
    compatibility forms such as fullwidth letters to NFKC. Folding after the
    mapping, as ergo does, catches digits: TR39 maps `0` to `O`, which folds to
    `o`, so `B0b` looks like `Bob`.
    """
    compatible = unicodedata.normalize("NFKC", name.key).casefold()
    shapes = {skeleton(name.spelling), skeleton(name.key), skeleton(compatible)}
    return shapes | {shape.casefold() for shape in shapes}


class LookAlikes:
    """Names in use, by skeleton, to refuse a different name that looks the same."""

    def __init__(self) -> None:
        # skeleton -> keys of the names that have it: a tuple, as it nearly always holds
        # one key (48 bytes, where a set takes 216: one or three per name online)
        self._keys: dict[str, tuple[str, ...]] = {}
        _prototypes()  # the table is read now, not at the first login (1.3 MB of JSON)

    def add(self, name: Name) -> None:
        for shape in skeletons(name):
            keys = self._keys.get(shape, ())
            if name.key not in keys:
                self._keys[shape] = (*keys, name.key)

    def remove(self, name: Name) -> None:
        for shape in skeletons(name):
            kept = tuple(key for key in self._keys.get(shape, ()) if key != name.key)
            if kept:
                self._keys[shape] = kept
            else:
                self._keys.pop(shape, None)

    def clash(self, name: Name) -> bool:
        """True when another name (not this one in another case) looks like `name`."""
        return any(
            key != name.key for shape in skeletons(name) for key in self._keys.get(shape, ())
        )


def generate() -> None:
    """Write `confusables.json` from ICU's SpoofChecker (needs PyICU)."""
    import icu  # type: ignore[import-not-found]  # only to regenerate the table

    checker = icu.SpoofChecker()
    table = {}
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        # only characters that survive NFD can reach the mapping step
        if 0xD800 <= code <= 0xDFFF or unicodedata.normalize("NFD", char) != char:
            continue
        shape = checker.getSkeleton(0, char)
        if shape != char:
            table[char] = shape
    source = f"ICU {icu.ICU_VERSION} SpoofChecker (Unicode {icu.UNICODE_VERSION}, TR39)"
    with TABLE.open("w", encoding="utf-8") as file:
        json.dump({"source": source, "map": table}, file, ensure_ascii=False, sort_keys=True)
    print(f"{TABLE}: {len(table)} prototypes from {source}")


if __name__ == "__main__":
    generate()
