"""The JSON door's section 11 frames: each maps to one call on the core's `Moderation`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..protocol.framing import dumps
from ..protocol.moderation import (
    BansRequest,
    Moderate,
    RoomEvent,
    SetRoom,
    TopicRequest,
)

if TYPE_CHECKING:
    from .json_lines import JsonSession


def encode_event(event: RoomEvent) -> bytes:
    return dumps(event.to_wire())


async def topic(session: JsonSession, frame: TopicRequest) -> None:
    assert session.member is not None
    await session.chat.moderation.topic(session.member, frame.room, frame.text, re=frame.id)


async def set_room(session: JsonSession, frame: SetRoom) -> None:
    assert session.member is not None
    answer = await session.chat.moderation.set_room(
        session.member, frame.room, private=frame.private, owner=frame.owner, re=frame.id
    )
    session.send_bytes(encode_event(answer))


async def moderate(session: JsonSession, frame: Moderate) -> None:
    member = session.member
    assert member is not None
    moderation = session.chat.moderation
    room, name, re = frame.room, frame.name, frame.id
    answer: RoomEvent
    if frame.kind == "ban":
        answer = await moderation.ban(member, room, name, frame.reason, re=re)
    else:
        assert room is not None
        if frame.kind == "invite":
            answer = await moderation.invite(member, room, name, re=re)
        elif frame.kind == "kick":
            answer = await moderation.kick(member, room, name, frame.reason, re=re)
        elif frame.kind == "unban":
            answer = await moderation.unban(member, room, name, re=re)
        else:
            answer = await moderation.op(member, room, name, give=frame.kind == "op", re=re)
    session.send_bytes(encode_event(answer))


async def bans(session: JsonSession, frame: BansRequest) -> None:
    assert session.member is not None
    session.send_bytes(
        encode_event(session.chat.moderation.bans(session.member, frame.room, re=frame.id))
    )


HANDLERS: dict[type, Callable[[JsonSession, Any], Awaitable[None]]] = {
    TopicRequest: topic,
    SetRoom: set_room,
    Moderate: moderate,
    BansRequest: bans,
}
