"""Bytes to JSON objects and back: LF-delimited frames with a size bound, strict JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from ..lines import BoundedLines
from .base import MAX_FRAME, SMALL_FRAME, ProtocolError, RequestId

# --------------------------------------------------------------------------- framing


class LineDecoder(BoundedLines):
    """Splits a byte stream into frames, never buffering more than `max_frame` of one line.

    A line longer than `max_frame` (its LF included) raises `frame_too_large` once;
    empty lines and lines of white space only are skipped.
    """

    __slots__ = ()

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        super().__init__(max_frame, _too_large, skip_whitespace=True)

    @property
    def max_frame(self) -> int:
        return self.max_line


def _too_large(limit: int, re: RequestId | None = None) -> ProtocolError:
    if limit == SMALL_FRAME:
        message = f"a say over {limit} bytes must hold a valid text"
    else:
        message = f"a frame is at most {limit} bytes, its LF included"
    return ProtocolError("frame_too_large", message, re)


# --------------------------------------------------------------------------- JSON


class _NonFinite:
    """Stands for NaN/Infinity in parsed JSON, so a field holding one is `invalid_field`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NonFinite"


NON_FINITE: Final = _NonFinite()


class _HugeInt:
    """Stands for an integer of more digits than any valid field holds (`invalid_field`).

    Python refuses to parse integers past 4300 digits at all; shorter ones past
    2^53 parse, and the field checks refuse them.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "HugeInt"


HUGE_INT: Final = _HugeInt()
_MAX_INT_DIGITS: Final = 32


def _parse_int(digits: str) -> int | _HugeInt:
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else HUGE_INT


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in object")
    return obj


_decoder = json.JSONDecoder(
    parse_constant=lambda _name: NON_FINITE,
    parse_int=_parse_int,
    object_pairs_hook=_no_duplicate_keys,
)


def loads_object(line: bytes) -> dict[str, Any]:
    """One frame's bytes as a JSON object, or `bad_frame`."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("bad_frame", "a frame must be UTF-8") from None
    try:
        obj = _decoder.decode(text)
    except RecursionError:
        raise ProtocolError("bad_frame", "JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, duplicate keys, an integer of too many digits
        raise ProtocolError("bad_frame", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_frame", "a frame must be a JSON object")
    return obj


def dumps(frame: Mapping[str, Any]) -> bytes:
    """One frame on the wire: compact UTF-8 JSON and its LF."""
    return (
        json.dumps(frame, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
            "utf-8"
        )
        + b"\n"
    )
