"""The frames of PROTOCOL.md section 11 (topics, private rooms, moderation), both sides.

Kept apart from `frames`: the codec registers these parsers in its tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeAlias

from ..core.rules import Name, nfc_length, parse_name
from .base import MAX_REASON, ProtocolError, RequestId
from .frames import _check_str, _required, _with_id, _with_re

MAX_TOPIC: Final = 300
_BAD_TOPIC = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_topic(value: object) -> str:
    """A topic: 0 to 300 characters, no control character (it is one line, also on IRC)."""
    if not isinstance(value, str) or _BAD_TOPIC.search(value):
        raise ProtocolError("invalid_field", "text must be a string without control characters")
    if nfc_length(value) > MAX_TOPIC:
        raise ProtocolError("invalid_field", f"text must be 0 to {MAX_TOPIC} characters")
    return value


# --------------------------------------------------------------------------- client frames


@dataclass(frozen=True, slots=True)
class TopicRequest:
    type: ClassVar[str] = "topic"
    room: Name
    text: str
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_id({"type": "topic", "room": self.room.spelling, "text": self.text}, self.id)


@dataclass(frozen=True, slots=True)
class SetRoom:
    """Change a room: private or not, and (server admins) its owner."""

    type: ClassVar[str] = "set"
    room: Name
    private: bool | None = None
    owner: Name | None = None
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "set", "room": self.room.spelling}
        if self.private is not None:
            frame["private"] = self.private
        if self.owner is not None:
            frame["owner"] = self.owner.spelling
        return _with_id(frame, self.id)


@dataclass(frozen=True, slots=True)
class Moderate:
    """invite, kick, ban, unban, op, deop (`kind`); a `ban` without room is server-wide."""

    kind: str
    name: Name
    room: Name | None = None
    reason: str = ""
    id: RequestId | None = None

    @property
    def type(self) -> str:
        return self.kind

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": self.kind}
        if self.room is not None:
            frame["room"] = self.room.spelling
        frame["name"] = self.name.spelling
        if self.reason:
            frame["reason"] = self.reason
        return _with_id(frame, self.id)


@dataclass(frozen=True, slots=True)
class BansRequest:
    type: ClassVar[str] = "bans"
    room: Name
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_id({"type": "bans", "room": self.room.spelling}, self.id)


ModerationRequest: TypeAlias = TopicRequest | SetRoom | Moderate | BansRequest
ACTS: Final = ("invite", "kick", "ban", "unban", "op", "deop")
_WITH_REASON: Final = frozenset({"kick", "ban"})


def _room(obj: Mapping[str, Any]) -> Name:
    return parse_name(_required(obj, "room"), "room", "room_invalid")


def _name(obj: Mapping[str, Any]) -> Name:
    return parse_name(_required(obj, "name"), "name", "name_invalid")


def _bool(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if key in obj and type(value) is not bool:
        raise ProtocolError("invalid_field", f"{key} must be true or false")
    return value


def _parse_topic(obj: dict[str, Any], rid: RequestId | None) -> TopicRequest:
    return TopicRequest(_room(obj), check_topic(_required(obj, "text")), rid)


def _parse_set(obj: dict[str, Any], rid: RequestId | None) -> SetRoom:
    if "private" not in obj and "owner" not in obj:
        raise ProtocolError("invalid_field", "set needs private or owner")
    owner = obj.get("owner", _ABSENT)
    if owner is None:
        raise ProtocolError("invalid_field", "owner must be an account's name")
    return SetRoom(
        _room(obj),
        _bool(obj, "private"),
        None if owner is _ABSENT else parse_name(owner, "owner", "name_invalid"),
        rid,
    )


_ABSENT: Final = object()


def _act_parser(kind: str) -> Callable[[dict[str, Any], RequestId | None], Moderate]:
    def parse(obj: dict[str, Any], rid: RequestId | None) -> Moderate:
        room = None if kind == "ban" and "room" not in obj else _room(obj)
        reason = _check_str(obj, "reason", 0, MAX_REASON) if kind in _WITH_REASON else None
        return Moderate(kind, _name(obj), room, reason or "", rid)

    return parse


CLIENT_PARSERS: Final[dict[str, Callable[[dict[str, Any], RequestId | None], Any]]] = {
    "topic": _parse_topic,
    "set": _parse_set,
    "bans": lambda obj, rid: BansRequest(_room(obj), rid),
    **{kind: _act_parser(kind) for kind in ACTS},
}


# --------------------------------------------------------------------------- server frames


@dataclass(frozen=True, slots=True)
class RoomState:
    """`room`: who owns and operates a room and whether it is private (sent when it changes).

    `change` and `by` are not on the wire: what changed in IRC MODE words, and by whom.
    """

    type: ClassVar[str] = "room"
    room: str
    owner: str | None
    ops: tuple[str, ...] = ()
    private: bool = False
    re: RequestId | None = None
    change: str = ""
    by: str = ""

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "room", "room": self.room, "owner": self.owner}
        frame.update(ops=list(self.ops), private=self.private)
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class Invited:
    type: ClassVar[str] = "invited"
    room: str
    name: str
    by: str
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame = {"type": "invited", "room": self.room, "name": self.name, "by": self.by}
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class Kicked:
    type: ClassVar[str] = "kicked"
    room: str
    name: str
    by: str
    reason: str = ""
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame = {"type": "kicked", "room": self.room, "name": self.name, "by": self.by}
        frame["reason"] = self.reason
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class Banned:
    """The answer to `ban` (`unban`: `lifted`); `room` None for a server-wide ban."""

    room: str | None
    name: str
    by: str = ""
    reason: str = ""
    re: RequestId | None = None
    lifted: bool = False

    @property
    def type(self) -> str:
        return "unbanned" if self.lifted else "banned"

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": self.type}
        if self.room is not None:
            frame["room"] = self.room
        frame["name"] = self.name
        if not self.lifted:
            frame["by"] = self.by
            frame["reason"] = self.reason
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class BanInfo:
    name: str
    by: str
    reason: str
    ts: str


@dataclass(frozen=True, slots=True)
class BanList:
    type: ClassVar[str] = "bans"
    room: str
    bans: tuple[BanInfo, ...]
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        bans = [{"name": b.name, "by": b.by, "reason": b.reason, "ts": b.ts} for b in self.bans]
        return _with_re({"type": "bans", "room": self.room, "bans": bans}, self.re)


RoomEvent: TypeAlias = RoomState | Invited | Kicked | Banned | BanList


def _text(obj: Mapping[str, Any], key: str, optional: bool = False) -> Any:
    value = obj.get(key)
    if (value is None and optional) or isinstance(value, str):
        return value
    raise ProtocolError("bad_frame", f"{obj.get('type')}: bad field {key}")


def _re(obj: Mapping[str, Any]) -> RequestId | None:
    value = obj.get("re")
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


def _parse_room(obj: Mapping[str, Any]) -> RoomState:
    ops = obj.get("ops")
    if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
        raise ProtocolError("bad_frame", "room: bad field ops")
    return RoomState(
        _text(obj, "room"), _text(obj, "owner", True), tuple(ops), obj.get("private") is True,
        _re(obj),
    )  # fmt: skip


def _parse_bans(obj: Mapping[str, Any]) -> BanList:
    bans = obj.get("bans")
    if not isinstance(bans, list) or not all(isinstance(b, dict) for b in bans):
        raise ProtocolError("bad_frame", "bans: bad field bans")
    infos = tuple(
        BanInfo(_text(b, "name"), _text(b, "by"), _text(b, "reason"), _text(b, "ts")) for b in bans
    )
    return BanList(_text(obj, "room"), infos, _re(obj))


def _parse_banned(obj: Mapping[str, Any], lifted: bool) -> Banned:
    return Banned(
        _text(obj, "room", True), _text(obj, "name"), _text(obj, "by", True) or "",
        _text(obj, "reason", True) or "", _re(obj), lifted,
    )  # fmt: skip


SERVER_PARSERS: Final[dict[str, Callable[[Mapping[str, Any]], Any]]] = {
    "room": _parse_room,
    "invited": lambda o: Invited(_text(o, "room"), _text(o, "name"), _text(o, "by"), _re(o)),
    "kicked": lambda o: Kicked(
        _text(o, "room"), _text(o, "name"), _text(o, "by"), _text(o, "reason", True) or "", _re(o)
    ),
    "banned": lambda o: _parse_banned(o, False),
    "unbanned": lambda o: _parse_banned(o, True),
    "bans": _parse_bans,
}
