"""The frames of PROTOCOL.md section 10 (read markers, the direct conversations), both sides.

Kept apart from `frames`: the codec registers these parsers in its tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from ..core.rules import Name, parse_name
from .base import MAX_INT, ProtocolError, RequestId
from .frames import _check_int, _one_of, _with_id, _with_re

MAX_DEVICE: Final = 64  # characters of a `hello`'s device label

# --------------------------------------------------------------------------- client frames


@dataclass(frozen=True, slots=True)
class Mark:
    """Move the read marker of a room (`room`) or direct conversation (`with_`) to `upto`."""

    type: ClassVar[str] = "mark"
    upto: int
    room: Name | None = None
    with_: Name | None = None
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "mark"}
        if self.room is not None:
            frame["room"] = self.room.spelling
        if self.with_ is not None:
            frame["with"] = self.with_.spelling
        frame["upto"] = self.upto
        return _with_id(frame, self.id)


@dataclass(frozen=True, slots=True)
class DirectsRequest:
    """The account's direct conversations with their markers."""

    type: ClassVar[str] = "directs"
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_id({"type": "directs"}, self.id)


def _parse_mark(obj: dict[str, Any], rid: RequestId | None) -> Mark:
    target = _one_of(obj, "room", "with")
    upto = _check_int(obj, "upto", 1)
    if upto is None:
        raise ProtocolError("invalid_field", "upto is required")
    if target == "room":
        return Mark(upto, room=parse_name(obj["room"], "room", "room_invalid"), id=rid)
    return Mark(upto, with_=parse_name(obj["with"], "with", "name_invalid"), id=rid)


CLIENT_PARSERS: Final[dict[str, Callable[[dict[str, Any], RequestId | None], Any]]] = {
    "mark": _parse_mark,
    "directs": lambda obj, rid: DirectsRequest(rid),
}


# --------------------------------------------------------------------------- server frames


@dataclass(frozen=True, slots=True)
class Marked:
    """Where the account's read marker of a conversation is now (to each of its devices)."""

    type: ClassVar[str] = "marked"
    upto: int
    room: str | None = None
    with_: str | None = None
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "marked"}
        if self.room is not None:
            frame["room"] = self.room
        else:
            frame["with"] = self.with_
        frame["upto"] = self.upto
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class DirectInfo:
    """One direct conversation: the other name, its newest entry, the marker, unread messages."""

    with_: str
    last: int
    read: int
    unread: int


@dataclass(frozen=True, slots=True)
class Directs:
    """The answer to `directs`: the most recent conversation first."""

    type: ClassVar[str] = "directs"
    directs: tuple[DirectInfo, ...]
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        directs = [
            {"with": d.with_, "last": d.last, "read": d.read, "unread": d.unread}
            for d in self.directs
        ]
        return _with_re({"type": "directs", "directs": directs}, self.re)


def _bad(obj: Mapping[str, Any], key: str) -> ProtocolError:
    return ProtocolError("bad_frame", f"{obj.get('type')}: bad field {key}")


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _bad(obj, key)
    return value


def _count(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise _bad(obj, key)
    return value


def _re(obj: Mapping[str, Any]) -> RequestId | None:
    value = obj.get("re")
    if value is None:
        return None
    if type(value) not in (str, int):
        raise _bad(obj, "re")
    return value  # type: ignore[no-any-return]


def _parse_marked(obj: Mapping[str, Any]) -> Marked:
    room, with_ = obj.get("room"), obj.get("with")
    if (room is None) == (with_ is None):
        raise ProtocolError("bad_frame", "marked: needs exactly one of room and with")
    if room is not None:
        return Marked(_count(obj, "upto"), room=_text(obj, "room"), re=_re(obj))
    return Marked(_count(obj, "upto"), with_=_text(obj, "with"), re=_re(obj))


def _parse_directs(obj: Mapping[str, Any]) -> Directs:
    items = obj.get("directs")
    if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
        raise _bad(obj, "directs")
    directs = tuple(
        DirectInfo(_text(d, "with"), _count(d, "last"), _count(d, "read"), _count(d, "unread"))
        for d in items
    )
    return Directs(directs, _re(obj))


SERVER_PARSERS: Final[dict[str, Callable[[Mapping[str, Any]], Any]]] = {
    "marked": _parse_marked,
    "directs": _parse_directs,
}
