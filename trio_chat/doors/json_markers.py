"""The JSON door's section 10 frames: `mark` and `directs`, each one call on the core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..protocol.framing import dumps
from ..protocol.markers import Directs, DirectsRequest, Mark

if TYPE_CHECKING:
    from .json_lines import JsonSession


async def mark(session: JsonSession, frame: Mark) -> None:
    assert session.member is not None
    marked, _ = await session.chat.mark(
        session.member, frame.upto, room=frame.room, with_=frame.with_, re=frame.id
    )
    session.send_bytes(dumps(marked.to_wire()))


async def directs(session: JsonSession, frame: DirectsRequest) -> None:
    assert session.member is not None
    found = await session.chat.directs(session.member)
    session.send_bytes(dumps(Directs(tuple(found), re=frame.id).to_wire()))


HANDLERS: dict[type, Callable[[JsonSession, Any], Awaitable[None]]] = {
    Mark: mark,
    DirectsRequest: directs,
}
