"""Frames from and to bytes: parse client and server frames, encode, the sans-IO Connection,
and the JSON wire variant the hub encodes fan-out items with."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Final, Generic, Literal, Protocol, TypeVar, overload

from ..core.errors import ERROR_CODES, ChatError
from ..core.rules import (
    MAX_TEXT,
    SURROGATE,
    Name,
    check_text,
    nfc_length,
    parse_name,
)
from ..core.search import MAX_QUERY, SEARCH_DEFAULT_LIMIT, SEARCH_LIMIT
from . import markers, moderation
from .base import (
    BYE_REASONS,
    DEFAULT_LIMIT,
    HISTORY_LIMIT,
    LEAVE_REASONS,
    MAX_FRAME,
    MAX_ID,
    MAX_PASSWORD,
    MAX_REASON,
    MAX_SERVER_FRAME,
    MIN_PASSWORD,
    ROOMS_LIMIT,
    SMALL_FRAME,
    ProtocolError,
    RequestId,
)
from .frames import (
    Bye,
    ClientFrame,
    Delete,
    DeleteEntry,
    Edit,
    EditEntry,
    Entry,
    Error,
    Frame,
    Hello,
    HistoryPage,
    HistoryRequest,
    Join,
    Joined,
    Left,
    Limits,
    Members,
    Message,
    Part,
    Ping,
    Pong,
    Presence,
    Quit,
    Results,
    RoomInfo,
    RoomList,
    RoomsRequest,
    Say,
    Search,
    ServerFrame,
    TopicEntry,
    Welcome,
    Who,
    _check_int,
    _check_str,
    _one_of,
    _required,
    check_request_id,
)
from .framing import LineDecoder, _too_large, dumps, loads_object


def _parse_hello(obj: dict[str, Any], rid: RequestId | None) -> Hello:
    name = parse_name(_required(obj, "name"), "name", "name_invalid")
    password = _check_str(obj, "password", MIN_PASSWORD, MAX_PASSWORD)
    if "protocol" in obj and (type(obj["protocol"]) is not int or obj["protocol"] != 1):
        raise ProtocolError("invalid_field", "protocol: this server speaks protocol 1")
    client = obj.get("client")
    if "client" in obj and (not isinstance(client, str) or SURROGATE.search(client)):
        raise ProtocolError("invalid_field", "client must be a string")
    device = _check_str(obj, "device", 1, markers.MAX_DEVICE)
    return Hello(name=name, password=password, client=client, id=rid, device=device)


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
    reply_to = _check_int(obj, "reply_to", 1)
    action = _check_bool(obj, "action")
    if target == "room":
        room, to = _room(obj), None
    else:
        room, to = None, parse_name(obj["to"], "to", "name_invalid")
    return Say(text=text, room=room, to=to, nonce=nonce, id=rid, reply_to=reply_to, action=action)


def _check_bool(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if type(value) is not bool:
        raise ProtocolError("invalid_field", f"{key} must be true or false")
    return value


def _message_id(obj: Mapping[str, Any]) -> int:
    message = _check_int(obj, "message", 1)
    if message is None:
        raise ProtocolError("invalid_field", "message is required")
    return message


def _parse_edit(obj: dict[str, Any], rid: RequestId | None) -> Edit:
    return Edit(message=_message_id(obj), text=check_text(_required(obj, "text")), id=rid)


def _parse_delete(obj: dict[str, Any], rid: RequestId | None) -> Delete:
    return Delete(message=_message_id(obj), id=rid)


def _parse_history(obj: dict[str, Any], rid: RequestId | None) -> HistoryRequest:
    target = _one_of(obj, "room", "with")
    before = _check_int(obj, "before", 1)
    after = _check_int(obj, "after", 0)
    limit = _limit(obj)
    if target == "room":
        return HistoryRequest(room=_room(obj), before=before, limit=limit, id=rid, after=after)
    with_ = parse_name(obj["with"], "with", "name_invalid")
    return HistoryRequest(with_=with_, before=before, limit=limit, id=rid, after=after)


def _parse_search(obj: dict[str, Any], rid: RequestId | None) -> Search:
    query = _check_str(obj, "query", 1, MAX_QUERY)
    if query is None:
        raise ProtocolError("invalid_field", "query is required")
    if "room" in obj and "with" in obj:
        raise ProtocolError("invalid_field", "at most one of room and with is allowed")
    room = _room(obj) if "room" in obj else None
    with_ = parse_name(obj["with"], "with", "name_invalid") if "with" in obj else None
    from_ = parse_name(obj["from"], "from", "name_invalid") if "from" in obj else None
    before = _check_int(obj, "before", 1)
    limit = _check_int(obj, "limit", 1, SEARCH_LIMIT)
    limit = SEARCH_DEFAULT_LIMIT if limit is None else limit
    return Search(query, room, with_, from_, before, limit, rid)


def _parse_rooms_request(obj: dict[str, Any], rid: RequestId | None) -> RoomsRequest:
    after = obj.get("after")
    limit = _check_int(obj, "limit", 1, ROOMS_LIMIT)
    return RoomsRequest(
        after=None if after is None else parse_name(after, "after", "room_invalid"),
        limit=ROOMS_LIMIT if limit is None else limit,
        id=rid,
    )


def _parse_quit(obj: dict[str, Any], rid: RequestId | None) -> Quit:
    return Quit(reason=_check_str(obj, "reason", 0, MAX_REASON), id=rid)


_CLIENT_PARSERS: Final[dict[str, Callable[[dict[str, Any], RequestId | None], ClientFrame]]] = {
    "hello": _parse_hello,
    "join": _parse_join,
    "part": _parse_part,
    "say": _parse_say,
    "edit": _parse_edit,
    "delete": _parse_delete,
    "history": _parse_history,
    "search": _parse_search,
    "who": lambda obj, rid: Who(room=_room(obj), id=rid),
    "rooms": _parse_rooms_request,
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


class Encodable(Protocol):
    """Any frame of either side, of any section: it knows its own wire form."""

    def to_wire(self) -> dict[str, Any]: ...


def encode(frame: Encodable) -> bytes:
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

    def opt_integer(self, key: str) -> int | None:
        return self._get(key, (int,), True)  # type: ignore[no-any-return]

    def integer(self, key: str) -> int:
        return self._get(key, (int,), False)  # type: ignore[no-any-return]

    def flag(self, key: str) -> bool:
        return self._get(key, (bool,), False)  # type: ignore[no-any-return]

    def items(self, key: str) -> list[Any]:
        return self._get(key, (list,), False)  # type: ignore[no-any-return]

    def re(self) -> RequestId | None:
        return self._get("re", (str, int), True)  # type: ignore[no-any-return]


def _place(f: _Fields) -> tuple[str | None, str | None]:
    room, to = f.opt_text("room"), f.opt_text("to")
    if (room is None) == (to is None):
        raise ProtocolError("bad_frame", f"{f.obj.get('type')}: needs exactly one of room and to")
    return room, to


def _message(obj: object) -> Message:
    if not isinstance(obj, dict):
        raise ProtocolError("bad_frame", "a message must be an object")
    f = _Fields(obj)
    room, to = _place(f)
    deleted = f.obj.get("deleted") is True
    return Message(
        id=f.integer("id"),
        sender=f.text("from"),
        text="" if deleted else f.text("text"),
        ts=f.text("ts"),
        room=room,
        to=to,
        re=f.re(),
        reply_to=f.opt_integer("reply_to"),
        action=f.obj.get("action") is True,
        edited=f.opt_text("edited"),
        deleted=deleted,
    )


def _edit_entry(f: _Fields) -> EditEntry:
    room, to = _place(f)
    deleted = f.obj.get("deleted") is True
    return EditEntry(
        id=f.integer("id"),
        message=f.integer("message"),
        sender=f.text("from"),
        text="" if deleted else f.text("text"),
        ts=f.text("ts"),
        room=room,
        to=to,
        re=f.re(),
        deleted=deleted,
    )


def _delete_entry(f: _Fields) -> DeleteEntry:
    room, to = _place(f)
    return DeleteEntry(
        id=f.integer("id"),
        message=f.integer("message"),
        by=f.text("by"),
        ts=f.text("ts"),
        room=room,
        to=to,
        re=f.re(),
    )


def _topic_entry(f: _Fields) -> TopicEntry:
    return TopicEntry(
        id=f.integer("id"),
        room=f.text("room"),
        text=f.text("text"),
        by=f.text("by"),
        ts=f.text("ts"),
        re=f.re(),
    )


_ENTRY_PARSERS: Final[dict[str, Callable[[_Fields], Entry]]] = {
    "message": lambda f: _message(f.obj),
    "edit": _edit_entry,
    "delete": _delete_entry,
    "topic": _topic_entry,
}


def _entry(obj: object) -> Entry:
    """One entry of a page: a message, or an edit, deletion or topic change (section 9)."""
    if not isinstance(obj, dict):
        raise ProtocolError("bad_frame", "an entry must be an object")
    parse = _ENTRY_PARSERS.get(obj.get("type"))  # type: ignore[arg-type]
    if parse is None:
        raise ProtocolError("bad_frame", "an entry's type must be message, edit, delete or topic")
    return parse(_Fields(obj))


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
        features=tuple(v for v in f.obj.get("features") or () if isinstance(v, str)),
    )


def _parse_joined(f: _Fields) -> Joined:
    return Joined(
        room=f.text("room"),
        members=_strings(f.items("members"), "members"),
        history=tuple(map(_entry, f.items("history"))),
        more=f.flag("more"),
        re=f.re(),
        topic=f.opt_text("topic"),
        owner=f.opt_text("owner"),
        ops=_strings(f.obj.get("ops") or [], "ops"),
        private=f.obj.get("private") is True,
        read=f.opt_integer("read"),
    )


def _parse_history_page(f: _Fields) -> HistoryPage:
    room, with_ = f.opt_text("room"), f.opt_text("with")
    if (room is None) == (with_ is None):
        raise ProtocolError("bad_frame", "history needs exactly one of room and with")
    return HistoryPage(
        messages=tuple(map(_entry, f.items("messages"))),
        more=f.flag("more"),
        room=room,
        with_=with_,
        re=f.re(),
    )


def _parse_results(f: _Fields) -> Results:
    found = f.items("messages")
    if not all(isinstance(m, dict) and m.get("type") == "message" for m in found):
        raise ProtocolError("bad_frame", "results: messages must be messages")
    return Results(
        query=f.text("query"), messages=tuple(map(_message, found)), more=f.flag("more"), re=f.re()
    )


def _parse_rooms(f: _Fields) -> RoomList:
    rooms = []
    for item in f.items("rooms"):
        if not isinstance(item, dict):
            raise ProtocolError("bad_frame", "rooms: each room must be an object")
        rf = _Fields(item)
        read, unread = rf.opt_integer("read"), rf.opt_integer("unread")
        rooms.append(RoomInfo(rf.text("room"), rf.integer("members"), read, unread))
    more = f.obj.get("more", False)
    return RoomList(rooms=tuple(rooms), more=more is True, re=f.re())


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
        message=f.opt_text("message"),
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
    "edit": _edit_entry,
    "delete": _delete_entry,
    "topic": _topic_entry,
    "history": _parse_history_page,
    "results": _parse_results,
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


def _by_object(parse: Callable[[Mapping[str, Any]], Any], f: _Fields) -> Any:
    return parse(f.obj)


# section 11's frames (topics, rooms, moderation) are in their own module
_CLIENT_PARSERS.update(moderation.CLIENT_PARSERS)
for _kind, _parse in moderation.SERVER_PARSERS.items():
    _SERVER_PARSERS[_kind] = functools.partial(_by_object, _parse)
# section 10's frames (read markers, direct conversations) too
_CLIENT_PARSERS.update(markers.CLIENT_PARSERS)
for _kind, _parse in markers.SERVER_PARSERS.items():
    _SERVER_PARSERS[_kind] = functools.partial(_by_object, _parse)


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

    def encode(self, item: Entry | Presence) -> bytes:
        return encode(item)

    def own(self, message: Entry, re: RequestId | None) -> bytes | None:
        """The sender's copy of its message: with `re`, or None when it is the shared one."""
        return None if re is None else with_re(encode(message), re)

    def marker(self, marked: markers.Marked, ts: str | None) -> bytes:
        """A read marker that moved on another device: the `marked` frame (section 10)."""
        return dumps(marked.to_wire())


JSON_WIRE: Final = JsonWire()
