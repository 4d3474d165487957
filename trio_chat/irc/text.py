"""Message text between the chat and IRC: mIRC formatting, CTCP, and lines that fit IRC.

Pure functions on str, no I/O. IRC lines are 512 bytes (see `privmsg_budget`), so a
chat message becomes one PRIVMSG per line, long lines split at character boundaries.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from .codec import MAX_MESSAGE

ACTION_OVERHEAD: Final = len("\x01ACTION \x01")  # bytes `ctcp_action` adds to a text

_FORMATTING: Final = re.compile(
    "\x03(?:[0-9]{1,2}(?:,[0-9]{1,2})?)?"  # colour: fg, then bg only after a fg
    "|\x04(?:[0-9A-Fa-f]{6}(?:,[0-9A-Fa-f]{6})?)?"  # hex colour
    "|[\x02\x0f\x11\x16\x1d\x1e\x1f]"  # bold, reset, monospace, reverse, italic, strike, underline
)
# Controls the chat's text rules forbid (all but TAB and LF); IRC cannot carry LF anyway.
_CONTROLS: Final = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# NUL and CR would break an IRC line; \x01 would make a client read the line as CTCP.
_LINE_BREAKERS: Final = re.compile("[\x00\r\x01]")

_ZWJ: Final = 0x200D
_RI_FIRST: Final = 0x1F1E6  # regional indicators pair up into flags
_RI_LAST: Final = 0x1F1FF
# Viramas that join the consonants around them into one conjunct (Unicode InCB=Linker).
_LINKERS: Final = frozenset((0x094D, 0x09CD, 0x0ACD, 0x0B4D, 0x0C4D, 0x0D4D))


def strip_formatting(text: str) -> str:
    """`text` without mIRC formatting codes (bold, italic, colours, reset, ...)."""
    return _FORMATTING.sub("", text)


def clean_from_irc(text: str) -> str:
    """Text an IRC user sent, as the chat keeps it: no formatting, no control but TAB."""
    return _CONTROLS.sub("", strip_formatting(text))


# --------------------------------------------------------------------------- CTCP


def parse_ctcp(text: str) -> tuple[str, str] | None:
    """(COMMAND, argument) of a CTCP message, or None if `text` is not one.

    The closing \\x01 is optional, as some clients leave it out when they split.
    """
    if not text.startswith("\x01"):
        return None
    body = text[1:]
    close = body.find("\x01")
    if close >= 0:
        body = body[:close]
    command, _, argument = body.partition(" ")
    if not command:
        return None
    return command.upper(), argument


def ctcp_action(text: str) -> str:
    """`text` as a CTCP ACTION (/me); a \\x01 inside it is dropped."""
    return f"\x01ACTION {text.replace(chr(1), '')}\x01"


# --------------------------------------------------------------------------- splitting


def privmsg_budget(source: str, command: str, target: str) -> int:
    """Bytes left for the text in `:source COMMAND target :text` CR LF within 512."""
    return MAX_MESSAGE - len(f":{source} {command} {target} :\r\n".encode())


def split_for_irc(text: str, budget: int) -> list[str]:
    """The non-empty lines of `text`, each cut into pieces of at most `budget` UTF-8 bytes.

    NUL, CR and \\x01 are dropped, TAB kept. Pieces end at a character boundary, not
    inside a grapheme cluster when one fits, and after a space when that keeps at least
    two thirds of the budget; a line's pieces joined give the line back. The result is
    empty when `text` has no non-empty line. To send an action, split then wrap each
    piece with `ctcp_action`, giving `budget - ACTION_OVERHEAD`.
    """
    if budget < 4:
        raise ValueError("budget must be at least 4 bytes, the longest UTF-8 character")
    pieces: list[str] = []
    for line in _LINE_BREAKERS.sub("", text).split("\n"):
        if not line:
            continue
        if len(line) * 4 <= budget:
            pieces.append(line)  # fits whatever its characters
            continue
        data = line.encode()
        if len(data) <= budget:
            pieces.append(line)
            continue
        _split_bytes(data, budget, pieces)
    return pieces


def _split_bytes(data: bytes, budget: int, pieces: list[str]) -> None:
    """Append the pieces of one over-long UTF-8 line to `pieces`."""
    start = 0
    while len(data) - start > budget:
        limit = start + budget
        cut = limit
        while data[cut] & 0xC0 == 0x80:  # a continuation byte: inside a character
            cut -= 1
        # A UTF-8 character is at most 4 bytes and budget >= 4, so cut > start here.
        point_cut = cut
        while cut > start and not _is_cluster_boundary(data, start, cut):
            cut = _previous_char(data, cut)
        if cut == start:  # one cluster longer than the budget: cut it between characters
            cut = point_cut
        space = data.rfind(b" ", start, limit)
        if (
            space >= 0
            and space + 1 != cut
            and 3 * (space + 1 - start) >= 2 * budget
            and _is_cluster_boundary(data, start, space + 1)
        ):
            cut = space + 1
        pieces.append(data[start:cut].decode())
        start = cut
    pieces.append(data[start:].decode())


def _previous_char(data: bytes, pos: int) -> int:
    """Where the character before byte `pos` (a character start) begins."""
    pos -= 1
    while data[pos] & 0xC0 == 0x80:
        pos -= 1
    return pos


def _char_at(data: bytes, pos: int) -> int:
    """The code point starting at byte `pos`."""
    lead = data[pos]
    size = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    return ord(data[pos : pos + size].decode())


def _is_cluster_boundary(data: bytes, start: int, pos: int) -> bool:
    """Whether a piece may end at character start `pos` (start < pos < len(data)).

    An approximation of Unicode grapheme clusters: no break before a mark, ZWJ,
    variation selector or emoji modifier, none after a ZWJ, none inside a flag or
    an Indic conjunct.
    """
    after = _char_at(data, pos)
    if _extends(after):
        return False
    before_pos = _previous_char(data, pos)
    before = _char_at(data, before_pos)
    if before == _ZWJ:
        return False
    if before in _LINKERS and unicodedata.category(chr(after)) == "Lo":
        return False
    if _RI_FIRST <= after <= _RI_LAST and _RI_FIRST <= before <= _RI_LAST:
        # Indicators pair from the start of their run (or of this piece, itself a boundary).
        run = 1
        while before_pos > start:
            before_pos = _previous_char(data, before_pos)
            if not _RI_FIRST <= _char_at(data, before_pos) <= _RI_LAST:
                break
            run += 1
        return run % 2 == 0
    return True


def _extends(code: int) -> bool:
    """Whether character `code` belongs to the grapheme cluster before it."""
    if code < 0x300:  # ASCII and Latin-1: nothing combines
        return False
    return (
        unicodedata.category(chr(code)) in ("Mn", "Mc", "Me")
        or code in (_ZWJ, 0x200C, 0xFF9E, 0xFF9F)  # ZWJ, ZWNJ, halfwidth kana voicing
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences (subdivision flags)
        or 0x1160 <= code <= 0x11FF  # Hangul medial vowels and final consonants
        or 0xD7B0 <= code <= 0xD7FF
    )
