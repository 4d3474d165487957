"""The JSON-lines door (PROTOCOL.md sections 1 to 5): frames in, calls on the core, frames out.

It holds no chat rule: each frame type maps to one core call, and the answer
(or the `ChatError`) is encoded back with the frame's `id` as `re`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .. import __version__
from ..core.chat import Chat, JoinResult
from ..core.errors import ChatError
from ..protocol import (
    JSON_WIRE,
    NEED_DATA,
    Bye,
    ClientFrame,
    Connection,
    Delete,
    Edit,
    Error,
    Frame,
    Hello,
    HistoryPage,
    HistoryRequest,
    Join,
    Joined,
    Left,
    Members,
    Part,
    Ping,
    Pong,
    ProtocolError,
    Quit,
    RequestId,
    Results,
    Role,
    RoomInfo,
    RoomList,
    RoomsRequest,
    Say,
    Search,
    Welcome,
    Who,
    encode,
    with_re,
)
from ..protocol.moderation import RoomEvent
from . import json_markers, json_rooms
from .base import DoorSession

MAX_HELLOS = 5  # failed hellos before the connection is closed (password guessing)
SERVER = f"trio-chat/{__version__}"

_PING = encode(Ping())


class JsonSession(DoorSession):
    """One connection speaking JSON lines."""

    __slots__ = ("conn", "hello_tries")
    door = "json"

    def __init__(
        self,
        stream: trio.abc.Stream,
        peer: str,
        chat: Chat,
        *,
        handshake_deadline: float | None = None,
    ) -> None:
        super().__init__(stream, peer, chat, handshake_deadline=handshake_deadline)
        self.conn = Connection(Role.SERVER)
        self.hello_tries = 0

    def encode_bye(self, bye: Bye) -> bytes:
        return encode(bye)

    def encode_ping(self) -> bytes:
        return _PING

    def refuse(self, re: RequestId | None, error: ChatError) -> None:
        self.send(Error(code=error.code, message=error.message, re=re))

    def send(self, frame: Frame) -> None:
        self.send_bytes(encode(frame))

    def room_event(self, event: RoomEvent) -> None:
        """Section 11's events (kicked, invited, room) as frames."""
        self.send_bytes(json_rooms.encode_event(event))

    async def handle(self, data: bytes | bytearray) -> None:
        conn = self.conn
        conn.receive_data(data)
        while not self.closed:
            try:
                frame = conn.next_event()
            except ProtocolError as exc:
                await self.pace()
                self.fault(encode(exc.frame()))
                continue
            if frame is NEED_DATA:
                return
            await self.pace()
            try:
                await self._dispatch(frame)
            except ChatError as exc:
                self.fault(encode(Error(code=exc.code, message=exc.message, re=frame.id)))
            else:
                self.errors = 0

    async def _dispatch(self, frame: ClientFrame) -> None:
        if self.member is None:
            handler = _BEFORE_WELCOME.get(type(frame))
            if handler is None:
                raise ChatError("handshake_required", "say hello first")
        else:
            handler = _HANDLERS[type(frame)]
        await handler(self, frame)

    # ------------------------------------------------------------------ frames

    async def _ping(self, frame: Ping) -> None:
        self.send(Pong(re=frame.id))

    async def _pong(self, frame: Pong) -> None:
        pass

    async def _quit(self, frame: Quit) -> None:
        self.close(Bye("quit", "goodbye"), "quit", frame.reason or None)

    async def _hello(self, hello: Hello) -> None:
        self.hello_tries += 1
        try:
            member = await self.chat.login(
                hello.name,
                hello.password,
                owner=self,
                outbox=self.outbox,
                wire=JSON_WIRE,
                peer=self.peer,
                host=self.host,
                device=hello.device,
            )
        except ChatError as exc:
            if self.hello_tries < MAX_HELLOS:
                raise
            self.send(Error(code=exc.code, message=exc.message, re=hello.id))
            self.close(Bye("too_many_errors", f"{MAX_HELLOS} failed hellos"), "gone")
            return
        if member is None:
            return
        self.member = member
        self.send(
            Welcome(
                name=member.name.spelling,
                account=member.account,
                server=SERVER,
                re=hello.id,
                features=self.chat.features,
            )
        )

    async def _again(self, frame: Hello) -> None:
        raise ChatError("bad_state", "already welcomed")

    async def _join(self, join: Join) -> None:
        assert self.member is not None

        def answer(result: JoinResult) -> None:
            self.send(
                Joined(
                    room=result.room,
                    members=result.members,
                    history=result.history,
                    more=result.more,
                    re=join.id,
                    **_room_view(result),
                    read=result.read,
                )
            )

        await self.chat.join(
            self.member, join.room, since=join.since, limit=join.limit, answer=answer
        )

    async def _part(self, part: Part) -> None:
        assert self.member is not None
        self.send(Left(room=self.chat.part(self.member, part.room), re=part.id))

    async def _say(self, say: Say) -> None:
        assert self.member is not None
        earlier = await self.chat.say(
            self.member,
            say.text,
            room=say.room,
            to=say.to,
            nonce=say.nonce,
            re=say.id,
            reply_to=say.reply_to,
            action=say.action,
        )
        if earlier is not None:
            self.send_bytes(with_re(encode(earlier), say.id))

    async def _edit(self, edit: Edit) -> None:
        assert self.member is not None
        await self.chat.edit(self.member, edit.message, edit.text, re=edit.id)

    async def _delete(self, delete: Delete) -> None:
        assert self.member is not None
        await self.chat.delete(self.member, delete.message, re=delete.id)

    async def _history(self, request: HistoryRequest) -> None:
        assert self.member is not None
        page = await self.chat.history(
            self.member,
            room=request.room,
            with_=request.with_,
            before=request.before,
            after=request.after,
            limit=request.limit,
        )
        self.send(
            HistoryPage(
                messages=page.messages,
                more=page.more,
                room=page.room,
                with_=page.with_,
                re=request.id,
            )
        )

    async def _search(self, request: Search) -> None:
        assert self.member is not None
        found = await self.chat.search(
            self.member,
            request.query,
            room=request.room,
            with_=request.with_,
            from_=request.from_,
            before=request.before,
            limit=request.limit,
        )
        self.send(
            Results(query=request.query, messages=found.messages, more=found.more, re=request.id)
        )

    async def _who(self, who: Who) -> None:
        room, names = self.chat.who(who.room, self.member)
        self.send(Members(room=room, members=tuple(names), re=who.id))

    async def _rooms(self, request: RoomsRequest) -> None:
        after = None if request.after is None else request.after.key
        listing, more = self.chat.rooms(after=after, limit=request.limit, member=self.member)
        assert self.member is not None
        reading = await self.chat.reading(self.member, [name for name, _ in listing])
        rooms = tuple(
            RoomInfo(name, count, *reading.get(name, (None, None))) for name, count in listing
        )
        self.send(RoomList(rooms=rooms, more=more, re=request.id))


_Handler = Callable[[JsonSession, Any], Awaitable[None]]

# One table per state, not an if-chain: the frame's type picks its handler.
_BEFORE_WELCOME: dict[type, _Handler] = {
    Hello: JsonSession._hello,
    Ping: JsonSession._ping,
    Pong: JsonSession._pong,
    Quit: JsonSession._quit,
}
_HANDLERS: dict[type, _Handler] = {
    Hello: JsonSession._again,
    Ping: JsonSession._ping,
    Pong: JsonSession._pong,
    Quit: JsonSession._quit,
    Join: JsonSession._join,
    Part: JsonSession._part,
    Say: JsonSession._say,
    Edit: JsonSession._edit,
    Delete: JsonSession._delete,
    HistoryRequest: JsonSession._history,
    Search: JsonSession._search,
    Who: JsonSession._who,
    RoomsRequest: JsonSession._rooms,
}
_HANDLERS.update(json_rooms.HANDLERS)  # section 11: topic, set, invite, kick, ban...
_HANDLERS.update(json_markers.HANDLERS)  # section 10: mark, directs


def _room_view(result: JoinResult) -> dict[str, Any]:
    """`joined`'s section 11 fields: topic, owner, ops, private."""
    view = result.view
    if view is None:
        return {}
    return {"topic": view.topic, "owner": view.owner, "ops": view.ops, "private": view.private}
