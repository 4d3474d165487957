"""What the server tests share: an in-process server, and one Session over memory streams."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing
from chat_client import ChatClient

from trio_chat.accounts import PasswordHasher
from trio_chat.config import Config
from trio_chat.core.chat import Chat
from trio_chat.doors.json_lines import JsonSession
from trio_chat.hub import Hub
from trio_chat.store import Store


@dataclass
class RunningServer:
    port: int
    config: Config
    shutdown: trio.Event
    irc_port: int | None = None


StartServer = Callable[..., Coroutine[Any, Any, RunningServer]]


FOREVER = 10_000.0  # a virtual-time bound for reads that must not hang a broken test


@dataclass
class Harness:
    """A Session on the server side of a stream pair, and a test client on the other side."""

    client: ChatClient
    raw: trio.StapledStream[Any, Any]  # the client's end of the stream pair
    session: JsonSession
    hub: Hub
    started: float
    done: trio.Event = field(default_factory=trio.Event)
    ended_at: float | None = None

    async def run_session(self) -> None:
        await self.session.run()  # an exception here fails the test through the nursery
        self.ended_at = trio.current_time()
        self.done.set()

    def elapsed(self) -> float:
        return trio.current_time() - self.started


@asynccontextmanager
async def open_session(
    config: Config, *, lockstep: bool = False, **overrides: object
) -> AsyncIterator[Harness]:
    """Run the store writer, the hub and one Session; yield the client's side of it."""
    config = dataclasses.replace(config, **overrides)  # type: ignore[arg-type]
    store = Store.open(config.db, max_batch=config.max_batch)
    try:
        hub = Hub(known_rooms=store.rooms, last_id=store.last_id, max_batch=config.max_batch)
        chat = Chat(config, hub, store, PasswordHasher(n=2**10))
        pair = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
        client_side, server_side = pair()
        session = JsonSession(server_side, "peer", chat)
        harness = Harness(ChatClient(client_side), client_side, session, hub, trio.current_time())
        harness.client.autopong = False
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run, hub.publish, hub.fail)
            await nursery.start(hub.run)
            nursery.start_soon(harness.run_session)
            yield harness
            nursery.cancel_scope.cancel()
    finally:
        store.close()
