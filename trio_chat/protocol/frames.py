"""Every frame of both sides as a typed, frozen value, and the checks of a client frame's fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeAlias

from ..core.errors import ErrorCode
from ..core.rules import (
    MAX_TEXT,
    SURROGATE,
    Name,
    nfc_length,
)
from ..core.search import SEARCH_DEFAULT_LIMIT
from .base import (
    DEFAULT_LIMIT,
    HISTORY_LIMIT,
    MAX_FRAME,
    MAX_ID,
    MAX_INT,
    PROTOCOL_VERSION,
    ROOMS_LIMIT,
    ByeReason,
    LeaveReason,
    ProtocolError,
    RequestId,
)

# --------------------------------------------------------------------------- fields

_MISSING: Final = object()


def _check_int(obj: Mapping[str, Any], key: str, lo: int, hi: int = MAX_INT) -> int | None:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        return None
    if type(value) is not int or not lo <= value <= hi:
        raise ProtocolError("invalid_field", f"{key} must be an integer from {lo} to {hi}")
    return value


def _check_str(obj: Mapping[str, Any], key: str, lo: int, hi: int) -> str | None:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        return None
    if not isinstance(value, str) or SURROGATE.search(value) or not lo <= nfc_length(value) <= hi:
        raise ProtocolError("invalid_field", f"{key} must be a string of {lo} to {hi} characters")
    return value


def check_request_id(value: object) -> RequestId:
    """A frame's `id`: a string of 1 to 64 characters or an integer within ±2^53."""
    if type(value) is int and -MAX_INT <= value <= MAX_INT:
        return value
    if isinstance(value, str) and not SURROGATE.search(value) and 1 <= nfc_length(value) <= MAX_ID:
        return value
    raise ProtocolError(
        "invalid_field", f"id must be a string of 1 to {MAX_ID} characters or an integer"
    )


def _one_of(obj: Mapping[str, Any], first: str, second: str) -> str:
    has_first, has_second = first in obj, second in obj
    if has_first == has_second:
        raise ProtocolError("invalid_field", f"exactly one of {first} and {second} is required")
    return first if has_first else second


def _required(obj: Mapping[str, Any], key: str) -> Any:
    if key not in obj:
        raise ProtocolError("invalid_field", f"{key} is required")
    return obj[key]


def _with_re(frame: dict[str, Any], re: RequestId | None) -> dict[str, Any]:
    if re is not None:
        frame["re"] = re
    return frame


# --------------------------------------------------------------------------- client frames


@dataclass(frozen=True, slots=True)
class Hello:
    type: ClassVar[str] = "hello"
    name: Name
    password: str | None = None
    client: str | None = None
    id: RequestId | None = None
    device: str | None = None  # section 10: the label of one of an account's devices

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "hello", "name": self.name.spelling, "protocol": 1}
        if self.password is not None:
            frame["password"] = self.password
        if self.client is not None:
            frame["client"] = self.client
        if self.device is not None:
            frame["device"] = self.device
        return _with_id(frame, self.id)


@dataclass(frozen=True, slots=True)
class Join:
    type: ClassVar[str] = "join"
    room: Name
    since: int | None = None
    limit: int = DEFAULT_LIMIT
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "join", "room": self.room.spelling, "limit": self.limit}
        if self.since is not None:
            frame["since"] = self.since
        return _with_id(frame, self.id)


@dataclass(frozen=True, slots=True)
class Part:
    type: ClassVar[str] = "part"
    room: Name
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_id({"type": "part", "room": self.room.spelling}, self.id)


@dataclass(frozen=True, slots=True)
class Say:
    """A message to a room (`room`) or to one user (`to`): exactly one is set."""

    type: ClassVar[str] = "say"
    text: str
    room: Name | None = None
    to: Name | None = None
    nonce: str | None = None
    id: RequestId | None = None
    reply_to: int | None = None
    action: bool = False

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "say"}
        if self.room is not None:
            frame["room"] = self.room.spelling
        if self.to is not None:
            frame["to"] = self.to.spelling
        frame["text"] = self.text
        if self.nonce is not None:
            frame["nonce"] = self.nonce
        if self.reply_to is not None:
            frame["reply_to"] = self.reply_to
        if self.action:
            frame["action"] = True
        return _with_id(frame, self.id)


@dataclass(frozen=True, slots=True)
class Edit:
    """Change the text of one's own message (section 9)."""

    type: ClassVar[str] = "edit"
    message: int
    text: str
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_id({"type": "edit", "message": self.message, "text": self.text}, self.id)


@dataclass(frozen=True, slots=True)
class Delete:
    """Take a message back (section 9): its text is erased everywhere."""

    type: ClassVar[str] = "delete"
    message: int
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_id({"type": "delete", "message": self.message}, self.id)


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """A page of a room (`room`) or of a direct conversation (`with_`): the newest entries
    before `before`, or the oldest after `after` (section 9)."""

    type: ClassVar[str] = "history"
    room: Name | None = None
    with_: Name | None = None
    before: int | None = None
    limit: int = DEFAULT_LIMIT
    id: RequestId | None = None
    after: int | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "history", "limit": self.limit}
        if self.room is not None:
            frame["room"] = self.room.spelling
        if self.with_ is not None:
            frame["with"] = self.with_.spelling
        if self.before is not None:
            frame["before"] = self.before
        if self.after is not None:
            frame["after"] = self.after
        return _with_id(frame, self.id)


@dataclass(frozen=True, slots=True)
class Search:
    """Find messages (section 9): in a room (`room`), a direct conversation (`with_`), or
    every conversation one may read (neither); `from_` narrows to one author."""

    type: ClassVar[str] = "search"
    query: str
    room: Name | None = None
    with_: Name | None = None
    from_: Name | None = None
    before: int | None = None
    limit: int = SEARCH_DEFAULT_LIMIT
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "search", "query": self.query, "limit": self.limit}
        if self.room is not None:
            frame["room"] = self.room.spelling
        if self.with_ is not None:
            frame["with"] = self.with_.spelling
        if self.from_ is not None:
            frame["from"] = self.from_.spelling
        if self.before is not None:
            frame["before"] = self.before
        return _with_id(frame, self.id)


@dataclass(frozen=True, slots=True)
class Who:
    type: ClassVar[str] = "who"
    room: Name
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_id({"type": "who", "room": self.room.spelling}, self.id)


@dataclass(frozen=True, slots=True)
class RoomsRequest:
    """A page of the room list: the first `limit` rooms after the room `after`, by name."""

    type: ClassVar[str] = "rooms"
    after: Name | None = None
    limit: int = ROOMS_LIMIT
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "rooms"}
        if self.after is not None:
            frame["after"] = self.after.spelling
        if self.limit != ROOMS_LIMIT:
            frame["limit"] = self.limit
        return _with_id(frame, self.id)


@dataclass(frozen=True, slots=True)
class Ping:
    """A keepalive probe; the server sends it too, so it is a frame of both sides."""

    type: ClassVar[str] = "ping"
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_id({"type": "ping"}, self.id)


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to `ping`, from either side; `re` when the server answers a ping's id."""

    type: ClassVar[str] = "pong"
    id: RequestId | None = None
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_re(_with_id({"type": "pong"}, self.id), self.re)


@dataclass(frozen=True, slots=True)
class Quit:
    type: ClassVar[str] = "quit"
    reason: str | None = None
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "quit"}
        if self.reason is not None:
            frame["reason"] = self.reason
        return _with_id(frame, self.id)


ClientFrame: TypeAlias = (
    Hello
    | Join
    | Part
    | Say
    | Edit
    | Delete
    | HistoryRequest
    | Search
    | Who
    | RoomsRequest
    | Ping
    | Pong
    | Quit
)


def _with_id(frame: dict[str, Any], id: RequestId | None) -> dict[str, Any]:
    if id is not None:
        frame["id"] = id
    return frame


# --------------------------------------------------------------------------- server frames


@dataclass(slots=True)
class Message:
    """A stored chat message: to a room (`room`) or to one user (`to`), in its current state.

    `edited` is the time of its latest edit; a deleted message has no text.
    Not frozen, but never changed once made: one is built per message as it is
    committed and per row of every history page, and a frozen dataclass's
    `__init__` costs three times as much (it sets each field through
    `object.__setattr__`).
    """

    type: ClassVar[str] = "message"
    id: int
    sender: str
    text: str
    ts: str
    room: str | None = None
    to: str | None = None
    re: RequestId | None = None
    reply_to: int | None = None
    action: bool = False
    edited: str | None = None
    deleted: bool = False

    def to_wire(self) -> dict[str, Any]:
        frame = _place({"type": "message", "id": self.id}, self.room, self.to)
        frame["from"] = self.sender
        if self.deleted:
            frame["deleted"] = True
        else:
            frame["text"] = self.text
        frame["ts"] = self.ts
        if self.reply_to is not None:
            frame["reply_to"] = self.reply_to
        if self.action:
            frame["action"] = True
        if self.edited is not None and not self.deleted:
            frame["edited"] = self.edited
        return _with_re(frame, self.re)


def _place(frame: dict[str, Any], room: str | None, to: str | None) -> dict[str, Any]:
    if room is not None:
        frame["room"] = room
    else:
        frame["to"] = to
    return frame


@dataclass(frozen=True, slots=True)
class EditEntry:
    """The log entry of an edit: `message` got `text` (no text once that message is deleted)."""

    type: ClassVar[str] = "edit"
    id: int
    message: int
    sender: str
    text: str
    ts: str
    room: str | None = None
    to: str | None = None
    re: RequestId | None = None
    deleted: bool = False

    def to_wire(self) -> dict[str, Any]:
        frame = _place({"type": "edit", "id": self.id}, self.room, self.to)
        frame["message"] = self.message
        frame["from"] = self.sender
        if self.deleted:
            frame["deleted"] = True
        else:
            frame["text"] = self.text
        frame["ts"] = self.ts
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class DeleteEntry:
    """The log entry of a deletion: `by` took `message` back."""

    type: ClassVar[str] = "delete"
    id: int
    message: int
    by: str
    ts: str
    room: str | None = None
    to: str | None = None
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame = _place({"type": "delete", "id": self.id}, self.room, self.to)
        frame["message"] = self.message
        frame["by"] = self.by
        frame["ts"] = self.ts
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class TopicEntry:
    """The log entry of a topic change (section 11); `""` clears it."""

    type: ClassVar[str] = "topic"
    id: int
    room: str
    text: str
    by: str
    ts: str
    re: RequestId | None = None
    to: None = None  # a topic is a room's: here so every entry has `room` and `to`

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "topic", "id": self.id, "room": self.room}
        frame["text"] = self.text
        frame["by"] = self.by
        frame["ts"] = self.ts
        return _with_re(frame, self.re)


Entry: TypeAlias = Message | EditEntry | DeleteEntry | TopicEntry
"""What a conversation's log holds; every kind takes its id from the one sequence."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame: int = MAX_FRAME
    max_text: int = MAX_TEXT
    history_limit: int = HISTORY_LIMIT


@dataclass(frozen=True, slots=True)
class Welcome:
    type: ClassVar[str] = "welcome"
    name: str
    account: bool
    server: str
    protocol: int = PROTOCOL_VERSION
    limits: Limits = field(default_factory=Limits)
    re: RequestId | None = None
    features: tuple[str, ...] = ()  # the additions of sections 9 to 13 the server speaks

    def to_wire(self) -> dict[str, Any]:
        limits = {
            "max_frame": self.limits.max_frame,
            "max_text": self.limits.max_text,
            "history_limit": self.limits.history_limit,
        }
        frame: dict[str, Any] = {
            "type": "welcome",
            "name": self.name,
            "account": self.account,
            "server": self.server,
            "protocol": self.protocol,
            "limits": limits,
        }
        if self.features:
            frame["features"] = list(self.features)
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class Joined:
    type: ClassVar[str] = "joined"
    room: str
    members: tuple[str, ...]
    history: tuple[Entry, ...]
    more: bool
    re: RequestId | None = None
    # section 11: the room's topic ("" none), owner (None: none), ops and whether it is private;
    # `topic` None leaves the four out (a server without moderation)
    topic: str | None = None
    owner: str | None = None
    ops: tuple[str, ...] = ()
    private: bool = False
    read: int | None = None  # section 10: an account's read marker of the room (0: none)

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "joined",
            "room": self.room,
            "members": list(self.members),
            "history": [m.to_wire() for m in self.history],
            "more": self.more,
        }
        if self.topic is not None:
            frame.update(
                topic=self.topic, owner=self.owner, ops=list(self.ops), private=self.private
            )
        if self.read is not None:
            frame["read"] = self.read
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class Left:
    type: ClassVar[str] = "left"
    room: str
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_re({"type": "left", "room": self.room}, self.re)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """The answer to `history`: a page of a room (`room`) or a conversation (`with_`)."""

    type: ClassVar[str] = "history"
    messages: tuple[Entry, ...]
    more: bool
    room: str | None = None
    with_: str | None = None
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "history"}
        if self.room is not None:
            frame["room"] = self.room
        else:
            frame["with"] = self.with_
        frame["messages"] = [m.to_wire() for m in self.messages]
        frame["more"] = self.more
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class Results:
    """The answer to `search`: the messages found, newest first; `more`: older ones exist."""

    type: ClassVar[str] = "results"
    query: str
    messages: tuple[Message, ...]
    more: bool
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "results", "query": self.query}
        frame["messages"] = [m.to_wire() for m in self.messages]
        frame["more"] = self.more
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class Members:
    type: ClassVar[str] = "members"
    room: str
    members: tuple[str, ...]
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_re(
            {"type": "members", "room": self.room, "members": list(self.members)}, self.re
        )


@dataclass(frozen=True, slots=True)
class RoomInfo:
    room: str
    members: int
    read: int | None = None  # section 10: for a room the account is in, its marker
    unread: int | None = None  # and the messages after it, not the account's own


@dataclass(frozen=True, slots=True)
class RoomList:
    type: ClassVar[str] = "rooms"
    rooms: tuple[RoomInfo, ...]
    more: bool = False
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        rooms = [_room_info(r) for r in self.rooms]
        return _with_re({"type": "rooms", "rooms": rooms, "more": self.more}, self.re)


def _room_info(info: RoomInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {"room": info.room, "members": info.members}
    if info.read is not None:
        entry["read"] = info.read
        entry["unread"] = info.unread
    return entry


@dataclass(frozen=True, slots=True)
class Presence:
    type: ClassVar[str] = "presence"
    room: str
    name: str
    state: Literal["joined", "left"]
    ts: str
    reason: LeaveReason | None = None
    message: str | None = None  # a quit's own words, when the user gave some

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "presence",
            "room": self.room,
            "name": self.name,
            "state": self.state,
        }
        if self.reason is not None:
            frame["reason"] = self.reason
        if self.message:
            frame["message"] = self.message
        frame["ts"] = self.ts
        return frame


@dataclass(frozen=True, slots=True)
class Bye:
    type: ClassVar[str] = "bye"
    reason: ByeReason
    message: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": "bye", "reason": self.reason, "message": self.message}


@dataclass(frozen=True, slots=True)
class Error:
    type: ClassVar[str] = "error"
    code: ErrorCode
    message: str
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_re({"type": "error", "code": self.code, "message": self.message}, self.re)


ServerFrame: TypeAlias = (
    Welcome
    | Joined
    | Left
    | Message
    | EditEntry
    | DeleteEntry
    | TopicEntry
    | HistoryPage
    | Results
    | Members
    | RoomList
    | Presence
    | Ping
    | Pong
    | Bye
    | Error
)
Frame: TypeAlias = ClientFrame | ServerFrame
