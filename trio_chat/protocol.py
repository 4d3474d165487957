"""The trio-chat wire protocol (PROTOCOL.md), sans-IO: bytes in, typed frames out.

Both sides use it: the server parses client frames, the client parses server
frames, and each encodes what it sends. Nothing here does I/O or imports an
event loop (a test checks that), so it is tested by pushing bytes through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Final, Generic, Literal, TypeAlias, TypeVar, overload

from .core.errors import ERROR_CODES, ErrorCode
from .core.errors import ChatError as ChatError  # re-exported: what the rules raise
from .core.rules import MAX_NAME as MAX_NAME  # re-exported: clients validate with the same rules
from .core.rules import MAX_TEXT as MAX_TEXT
from .core.rules import SURROGATE, nfc_length
from .core.rules import Name as Name
from .core.rules import check_text as check_text
from .core.rules import name_key as name_key
from .core.rules import parse_name as parse_name

PROTOCOL_VERSION: Final = 1
MAX_FRAME: Final = 65536  # bytes of a client frame, its LF included
SMALL_FRAME: Final = 16384  # bytes past which only a valid `say` is accepted
HISTORY_LIMIT: Final = 500  # the most messages one join or history answer holds
DEFAULT_LIMIT: Final = 50
MAX_ID: Final = 64  # characters of a string `id` or a `nonce`
MAX_INT: Final = 2**53  # JSON integers beyond this are not exact everywhere
MIN_PASSWORD: Final = 8
MAX_PASSWORD: Final = 1024
MAX_REASON: Final = 400
# Server frames (a joined with 500 long messages) may be far larger than MAX_FRAME;
# a client decoder still bounds them so a broken server cannot exhaust its memory.
MAX_SERVER_FRAME: Final = 32 * 1024 * 1024

RequestId: TypeAlias = str | int

ByeReason = Literal[
    "quit", "shutdown", "timeout", "replaced", "slow_consumer", "too_many_errors", "server_busy"
]
LeaveReason = Literal["part", "quit", "timeout", "replaced", "gone"]
BYE_REASONS: Final[frozenset[str]] = frozenset(ByeReason.__args__)  # type: ignore[attr-defined]
LEAVE_REASONS: Final[frozenset[str]] = frozenset(LeaveReason.__args__)  # type: ignore[attr-defined]


class ProtocolError(ChatError):
    """The peer sent something the protocol does not allow: answer with an error frame.

    Raised only for the peer's faults; the connection may carry on afterwards.
    """

    def __init__(self, code: ErrorCode, message: str, re: RequestId | None = None) -> None:
        super().__init__(code, message)
        self.re = re

    def frame(self) -> Error:
        """The error frame that answers this fault."""
        return Error(code=self.code, message=self.message, re=self.re)


# --------------------------------------------------------------------------- framing


class LineDecoder:
    """Splits a byte stream into frames, never buffering more than `max_frame` of one line.

    A line longer than `max_frame` (its LF included) raises `frame_too_large` once,
    as soon as it is known to be too long; its remaining bytes are skipped up to
    the next LF without being kept.
    """

    __slots__ = ("_buf", "_scanned", "_skipping", "_start", "max_frame")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._start = 0  # where the unread part of _buf begins
        self._scanned = 0  # no LF in _buf[_start:_scanned]
        self._skipping = False

    @property
    def buffered(self) -> int:
        """Bytes held of an incomplete frame."""
        return len(self._buf) - self._start

    def feed(self, data: bytes | bytearray) -> None:
        if self._start:
            del self._buf[: self._start]
            self._scanned -= self._start
            self._start = 0
        if self._skipping:
            lf = data.find(b"\n")
            if lf < 0:
                return
            self._skipping = False
            data = data[lf + 1 :]
        self._buf += data

    def next_line(self) -> bytes | None:
        """The next complete frame without its line end, or None until more data comes."""
        buf = self._buf
        while True:
            lf = buf.find(b"\n", max(self._start, self._scanned))
            if lf < 0:
                if len(buf) - self._start >= self.max_frame:
                    self._discard()
                    self._skipping = True
                    raise _too_large(self.max_frame)
                self._scanned = len(buf)
                return None
            start = self._start
            self._start = self._scanned = lf + 1
            if lf + 1 - start > self.max_frame:
                raise _too_large(self.max_frame)
            end = lf - 1 if lf > start and buf[lf - 1] == 0x0D else lf
            if end == start:
                continue  # an empty line
            line = bytes(buf[start:end])
            if self._start == len(buf):
                self._discard()
            if line.isspace():
                continue
            return line

    def _discard(self) -> None:
        self._buf.clear()
        self._start = self._scanned = 0


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

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "hello", "name": self.name.spelling, "protocol": 1}
        if self.password is not None:
            frame["password"] = self.password
        if self.client is not None:
            frame["client"] = self.client
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

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "say"}
        if self.room is not None:
            frame["room"] = self.room.spelling
        if self.to is not None:
            frame["to"] = self.to.spelling
        frame["text"] = self.text
        if self.nonce is not None:
            frame["nonce"] = self.nonce
        return _with_id(frame, self.id)


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """Older messages of a room (`room`) or of a direct conversation (`with_`)."""

    type: ClassVar[str] = "history"
    room: Name | None = None
    with_: Name | None = None
    before: int | None = None
    limit: int = DEFAULT_LIMIT
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "history", "limit": self.limit}
        if self.room is not None:
            frame["room"] = self.room.spelling
        if self.with_ is not None:
            frame["with"] = self.with_.spelling
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
    type: ClassVar[str] = "rooms"
    id: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        return _with_id({"type": "rooms"}, self.id)


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
    Hello | Join | Part | Say | HistoryRequest | Who | RoomsRequest | Ping | Pong | Quit
)


def _with_id(frame: dict[str, Any], id: RequestId | None) -> dict[str, Any]:
    if id is not None:
        frame["id"] = id
    return frame


def _parse_hello(obj: dict[str, Any], rid: RequestId | None) -> Hello:
    name = parse_name(_required(obj, "name"), "name", "name_invalid")
    password = _check_str(obj, "password", MIN_PASSWORD, MAX_PASSWORD)
    if "protocol" in obj and (type(obj["protocol"]) is not int or obj["protocol"] != 1):
        raise ProtocolError("invalid_field", "protocol: this server speaks protocol 1")
    client = obj.get("client")
    if "client" in obj and (not isinstance(client, str) or SURROGATE.search(client)):
        raise ProtocolError("invalid_field", "client must be a string")
    return Hello(name=name, password=password, client=client, id=rid)


def _room(obj: Mapping[str, Any]) -> Name:
    return parse_name(_required(obj, "room"), "room", "room_invalid")


def _limit(obj: Mapping[str, Any]) -> int:
    limit = _check_int(obj, "limit", 1, HISTORY_LIMIT)
    return DEFAULT_LIMIT if limit is None else limit


def _parse_join(obj: dict[str, Any], rid: RequestId | None) -> Join:
    return Join(room=_room(obj), since=_check_int(obj, "since", 0), limit=_limit(obj), id=rid)


def _parse_part(obj: dict[str, Any], rid: RequestId | None) -> Part:
    return Part(room=_room(obj), id=rid)


def _parse_say(obj: dict[str, Any], rid: RequestId | None) -> Say:
    target = _one_of(obj, "room", "to")
    text = check_text(_required(obj, "text"))
    nonce = _check_str(obj, "nonce", 1, MAX_ID)
    if target == "room":
        return Say(text=text, room=_room(obj), nonce=nonce, id=rid)
    to = parse_name(obj["to"], "to", "name_invalid")
    return Say(text=text, to=to, nonce=nonce, id=rid)


def _parse_history(obj: dict[str, Any], rid: RequestId | None) -> HistoryRequest:
    target = _one_of(obj, "room", "with")
    before = _check_int(obj, "before", 1)
    limit = _limit(obj)
    if target == "room":
        return HistoryRequest(room=_room(obj), before=before, limit=limit, id=rid)
    with_ = parse_name(obj["with"], "with", "name_invalid")
    return HistoryRequest(with_=with_, before=before, limit=limit, id=rid)


def _parse_quit(obj: dict[str, Any], rid: RequestId | None) -> Quit:
    return Quit(reason=_check_str(obj, "reason", 0, MAX_REASON), id=rid)


_CLIENT_PARSERS: Final[dict[str, Callable[[dict[str, Any], RequestId | None], ClientFrame]]] = {
    "hello": _parse_hello,
    "join": _parse_join,
    "part": _parse_part,
    "say": _parse_say,
    "history": _parse_history,
    "who": lambda obj, rid: Who(room=_room(obj), id=rid),
    "rooms": lambda obj, rid: RoomsRequest(id=rid),
    "ping": lambda obj, rid: Ping(id=rid),
    "pong": lambda obj, rid: Pong(id=rid),
    "quit": _parse_quit,
}


def _frame_type(obj: dict[str, Any]) -> tuple[str, RequestId | None]:
    """The frame's `type` and its valid `id` (copied as `re` into any error that follows)."""
    rid = None
    if "id" in obj:
        rid = check_request_id(obj["id"])  # an invalid id gets an error without `re`
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_frame", "a frame needs a string field type", rid)
    return kind, rid


def parse_client_frame(line: bytes) -> ClientFrame:
    """One client frame (without its LF), validated; any fault raises ProtocolError.

    A `say` past SMALL_FRAME bytes whose text is over max_text is
    `frame_too_large`, as it was when max_frame was 16 KiB: the larger
    max_frame is room for a valid text's escapes, not for a longer text.
    """
    obj = loads_object(line)
    kind, rid = _frame_type(obj)
    parser = _CLIENT_PARSERS.get(kind)
    if parser is None:
        raise ProtocolError("unknown_type", f"unknown frame type {kind[:40]!r}", rid)
    if kind == "say" and len(line) > SMALL_FRAME and _overlong(obj.get("text")):
        raise _too_large(SMALL_FRAME, rid)
    try:
        return parser(obj, rid)
    except ProtocolError as exc:
        exc.re = rid
        raise
    except ChatError as exc:  # a name or a text against the chat's rules
        raise ProtocolError(exc.code, exc.message, rid) from None


def _overlong(text: object) -> bool:
    return isinstance(text, str) and nfc_length(text) > MAX_TEXT


# --------------------------------------------------------------------------- server frames


@dataclass(frozen=True, slots=True)
class Message:
    """A stored chat message: to a room (`room`) or to one user (`to`)."""

    type: ClassVar[str] = "message"
    id: int
    sender: str
    text: str
    ts: str
    room: str | None = None
    to: str | None = None
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "message", "id": self.id}
        if self.room is not None:
            frame["room"] = self.room
        else:
            frame["to"] = self.to
        frame["from"] = self.sender
        frame["text"] = self.text
        frame["ts"] = self.ts
        return _with_re(frame, self.re)


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

    def to_wire(self) -> dict[str, Any]:
        limits = {
            "max_frame": self.limits.max_frame,
            "max_text": self.limits.max_text,
            "history_limit": self.limits.history_limit,
        }
        frame = {
            "type": "welcome",
            "name": self.name,
            "account": self.account,
            "server": self.server,
            "protocol": self.protocol,
            "limits": limits,
        }
        return _with_re(frame, self.re)


@dataclass(frozen=True, slots=True)
class Joined:
    type: ClassVar[str] = "joined"
    room: str
    members: tuple[str, ...]
    history: tuple[Message, ...]
    more: bool
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        frame = {
            "type": "joined",
            "room": self.room,
            "members": list(self.members),
            "history": [m.to_wire() for m in self.history],
            "more": self.more,
        }
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
    messages: tuple[Message, ...]
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


@dataclass(frozen=True, slots=True)
class RoomList:
    type: ClassVar[str] = "rooms"
    rooms: tuple[RoomInfo, ...]
    re: RequestId | None = None

    def to_wire(self) -> dict[str, Any]:
        rooms = [{"room": r.room, "members": r.members} for r in self.rooms]
        return _with_re({"type": "rooms", "rooms": rooms}, self.re)


@dataclass(frozen=True, slots=True)
class Presence:
    type: ClassVar[str] = "presence"
    room: str
    name: str
    state: Literal["joined", "left"]
    ts: str
    reason: LeaveReason | None = None

    def to_wire(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "presence",
            "room": self.room,
            "name": self.name,
            "state": self.state,
        }
        if self.reason is not None:
            frame["reason"] = self.reason
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
    | HistoryPage
    | Members
    | RoomList
    | Presence
    | Ping
    | Pong
    | Bye
    | Error
)
Frame: TypeAlias = ClientFrame | ServerFrame


def encode(frame: Frame) -> bytes:
    """A frame's bytes on the wire."""
    return dumps(frame.to_wire())


class _Fields:
    """Typed reads of a server frame's fields: a wrong one is `bad_frame` (a broken server)."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    def _get(self, key: str, kinds: tuple[type, ...], optional: bool) -> Any:
        value = self.obj.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ProtocolError("bad_frame", f"{self.obj.get('type')}: bad field {key}")
        return value

    def text(self, key: str) -> str:
        return self._get(key, (str,), False)  # type: ignore[no-any-return]

    def opt_text(self, key: str) -> str | None:
        return self._get(key, (str,), True)  # type: ignore[no-any-return]

    def integer(self, key: str) -> int:
        return self._get(key, (int,), False)  # type: ignore[no-any-return]

    def flag(self, key: str) -> bool:
        return self._get(key, (bool,), False)  # type: ignore[no-any-return]

    def items(self, key: str) -> list[Any]:
        return self._get(key, (list,), False)  # type: ignore[no-any-return]

    def re(self) -> RequestId | None:
        return self._get("re", (str, int), True)  # type: ignore[no-any-return]


def _message(obj: object) -> Message:
    if not isinstance(obj, dict):
        raise ProtocolError("bad_frame", "a message must be an object")
    f = _Fields(obj)
    room, to = f.opt_text("room"), f.opt_text("to")
    if (room is None) == (to is None):
        raise ProtocolError("bad_frame", "a message needs exactly one of room and to")
    return Message(
        id=f.integer("id"),
        sender=f.text("from"),
        text=f.text("text"),
        ts=f.text("ts"),
        room=room,
        to=to,
        re=f.re(),
    )


def _strings(values: list[Any], what: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) for v in values):
        raise ProtocolError("bad_frame", f"{what} must be strings")
    return tuple(values)


def _parse_welcome(f: _Fields) -> Welcome:
    limits = f.obj.get("limits")
    if not isinstance(limits, dict):
        raise ProtocolError("bad_frame", "welcome: bad field limits")
    lf = _Fields(limits)
    return Welcome(
        name=f.text("name"),
        account=f.flag("account"),
        server=f.text("server"),
        protocol=f.integer("protocol"),
        limits=Limits(lf.integer("max_frame"), lf.integer("max_text"), lf.integer("history_limit")),
        re=f.re(),
    )


def _parse_joined(f: _Fields) -> Joined:
    return Joined(
        room=f.text("room"),
        members=_strings(f.items("members"), "members"),
        history=tuple(map(_message, f.items("history"))),
        more=f.flag("more"),
        re=f.re(),
    )


def _parse_history_page(f: _Fields) -> HistoryPage:
    room, with_ = f.opt_text("room"), f.opt_text("with")
    if (room is None) == (with_ is None):
        raise ProtocolError("bad_frame", "history needs exactly one of room and with")
    return HistoryPage(
        messages=tuple(map(_message, f.items("messages"))),
        more=f.flag("more"),
        room=room,
        with_=with_,
        re=f.re(),
    )


def _parse_rooms(f: _Fields) -> RoomList:
    rooms = []
    for item in f.items("rooms"):
        if not isinstance(item, dict):
            raise ProtocolError("bad_frame", "rooms: each room must be an object")
        rf = _Fields(item)
        rooms.append(RoomInfo(rf.text("room"), rf.integer("members")))
    return RoomList(rooms=tuple(rooms), re=f.re())


def _parse_presence(f: _Fields) -> Presence:
    state = f.text("state")
    reason = f.opt_text("reason")
    if state not in ("joined", "left") or (reason is not None and reason not in LEAVE_REASONS):
        raise ProtocolError("bad_frame", "presence: bad state or reason")
    return Presence(
        room=f.text("room"),
        name=f.text("name"),
        state=state,  # type: ignore[arg-type]
        ts=f.text("ts"),
        reason=reason,  # type: ignore[arg-type]
    )


def _parse_bye(f: _Fields) -> Bye:
    reason = f.text("reason")
    if reason not in BYE_REASONS:
        raise ProtocolError("bad_frame", f"bye: unknown reason {reason!r}")
    return Bye(reason=reason, message=f.opt_text("message") or "")  # type: ignore[arg-type]


def _parse_error(f: _Fields) -> Error:
    code = f.text("code")
    if code not in ERROR_CODES:
        raise ProtocolError("bad_frame", f"error: unknown code {code!r}")
    return Error(code=code, message=f.opt_text("message") or "", re=f.re())  # type: ignore[arg-type]


_SERVER_PARSERS: Final[dict[str, Callable[[_Fields], ServerFrame]]] = {
    "welcome": _parse_welcome,
    "joined": _parse_joined,
    "left": lambda f: Left(room=f.text("room"), re=f.re()),
    "message": lambda f: _message(f.obj),
    "history": _parse_history_page,
    "members": lambda f: Members(
        room=f.text("room"), members=_strings(f.items("members"), "members"), re=f.re()
    ),
    "rooms": _parse_rooms,
    "presence": _parse_presence,
    "ping": lambda f: Ping(),
    "pong": lambda f: Pong(re=f.re()),
    "bye": _parse_bye,
    "error": _parse_error,
}


def parse_server_frame(line: bytes) -> ServerFrame:
    """One server frame (without its LF) as seen by a client; a malformed one is `bad_frame`."""
    obj = loads_object(line)
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_frame", "a frame needs a string field type")
    parser = _SERVER_PARSERS.get(kind)
    if parser is None:
        raise ProtocolError("unknown_type", f"unknown frame type {kind[:40]!r}")
    return parser(_Fields(obj))


# --------------------------------------------------------------------------- connection


class Role(Enum):
    SERVER = "server"  # reads client frames
    CLIENT = "client"  # reads server frames


class NeedData(Enum):
    """`next_event()` has nothing until more bytes are received."""

    NEED_DATA = "need_data"


NEED_DATA: Final = NeedData.NEED_DATA


_In = TypeVar("_In", ClientFrame, ServerFrame)


class Connection(Generic[_In]):
    """One side of a conversation: feed it bytes, take typed frames out, encode what to send.

    A server's Connection reads client frames, a client's reads server frames.
    A peer's fault raises ProtocolError from `next_event()` after the offending
    frame is consumed, so the caller answers it and calls `next_event()` again.
    """

    __slots__ = ("_lines", "_parse", "role")

    @overload
    def __init__(
        self: Connection[ClientFrame], role: Literal[Role.SERVER], max_frame: int | None = None
    ) -> None: ...
    @overload
    def __init__(
        self: Connection[ServerFrame], role: Literal[Role.CLIENT], max_frame: int | None = None
    ) -> None: ...
    def __init__(self, role: Role, max_frame: int | None = None) -> None:
        self.role = role
        if max_frame is None:
            max_frame = MAX_FRAME if role is Role.SERVER else MAX_SERVER_FRAME
        self._lines = LineDecoder(max_frame)
        self._parse: Callable[[bytes], Any] = (
            parse_client_frame if role is Role.SERVER else parse_server_frame
        )

    @property
    def buffered(self) -> int:
        return self._lines.buffered

    def receive_data(self, data: bytes | bytearray) -> None:
        self._lines.feed(data)

    def next_event(self) -> _In | NeedData:
        line = self._lines.next_line()
        if line is None:
            return NEED_DATA
        frame: _In = self._parse(line)
        return frame

    @staticmethod
    def send(frame: Frame) -> bytes:
        return encode(frame)


# --------------------------------------------------------------------------- fan-out


def with_re(data: bytes, re: RequestId | None) -> bytes:
    """An encoded frame with `re` added, without encoding it again."""
    if re is None:
        return data
    return data[:-2] + b',"re":' + json.dumps(re, ensure_ascii=False).encode() + b"}\n"


class JsonWire:
    """How the hub's fan-out items look on the JSON-lines door: one instance for every member."""

    __slots__ = ()

    def encode(self, item: Message | Presence) -> bytes:
        return encode(item)

    def own(self, message: Message, re: RequestId | None) -> bytes | None:
        """The sender's copy of its message: with `re`, or None when it is the shared one."""
        return None if re is None else with_re(encode(message), re)


JSON_WIRE: Final = JsonWire()
