"""The client's connection layer against a scripted fake server: login, resume, resend."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from client_fakes import FakePeer, FakeServer, message, stop_task, welcome
from client_fakes import fake_server as fake_server

from textual_client import connection as c
from trio_chat import protocol as p

pytestmark = pytest.mark.asyncio


class Recorder:
    """A listener that keeps every event and lets a test wait for one of a kind."""

    def __init__(self) -> None:
        self.events: list[c.ClientEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: c.ClientEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, kind: type, count: int = 1, wait: float = 5.0) -> list[c.ClientEvent]:
        async with asyncio.timeout(wait):
            while True:
                found = [e for e in self.events if isinstance(e, kind)]
                if len(found) >= count:
                    return found
                self._changed.clear()
                await self._changed.wait()

    def messages(self) -> list[p.Message]:
        """Every chat message shown, in order: history, live and confirmed own ones."""
        out: list[p.Message] = []
        for e in self.events:
            if isinstance(e, p.Joined):
                out.extend(m for m in e.history if isinstance(m, p.Message))
            elif isinstance(e, p.Message):
                out.append(e)
            elif isinstance(e, c.Sent) and e.new:
                out.append(e.message)
        return out


def make_client(server: FakeServer, rec: Recorder, **kw: float) -> c.ChatClient:
    opts: dict[str, float] = {"backoff_min": 0.01, "backoff_max": 0.05} | kw
    return c.ChatClient("127.0.0.1", server.port, rec, rng=random.Random(4), **opts)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def rec() -> AsyncIterator[Recorder]:
    yield Recorder()


async def login(client: c.ChatClient, server: FakeServer, name: str = "ann") -> FakePeer:
    task = asyncio.ensure_future(client.login(name))
    peer = await server.accept()
    hello = await peer.expect(p.Hello)
    assert isinstance(hello, p.Hello) and hello.name.spelling == name and hello.password is None
    peer.send(welcome(name))
    await asyncio.wait_for(task, 5)
    return peer


async def test_login_then_join_and_chat(fake_server: FakeServer, rec: Recorder) -> None:
    client = make_client(fake_server, rec)
    client.rooms["lobby"] = "lobby"
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    join = await peer.expect(p.Join)
    assert isinstance(join, p.Join) and join.room.spelling == "lobby" and join.since is None
    peer.send(p.Joined("lobby", ("ann", "bob"), (message(1, "bob", "hi"),), more=False, re=join.id))
    await rec.wait_for(p.Joined)
    nonce = client.say("hello bob", room="lobby")
    say = await peer.expect(p.Say)
    assert isinstance(say, p.Say) and say.nonce == nonce and say.id == nonce
    assert say.room is not None and say.room.key == "lobby" and say.text == "hello bob"
    peer.send(message(2, "ann", "hello bob", re=nonce), message(3, "bob", "welcome!"))
    await rec.wait_for(p.Message)
    (sent,) = await rec.wait_for(c.Sent)
    assert isinstance(sent, c.Sent) and sent.new and sent.nonce == nonce
    assert client.pending == {}
    assert [m.id for m in rec.messages()] == [1, 2, 3]
    assert client.last_id[("room", "lobby")] == 3
    await client.quit()
    bye = await peer.expect(p.Quit)
    assert isinstance(bye, p.Quit)
    peer.close()
    await asyncio.wait_for(runner, 5)
    assert isinstance(rec.events[-1], c.Disconnected) and rec.events[-1].retry_in is None


async def test_login_refused_then_retry_on_same_connection(
    fake_server: FakeServer, rec: Recorder
) -> None:
    client = make_client(fake_server, rec)
    task = asyncio.ensure_future(client.login("bob"))
    peer = await fake_server.accept()
    await peer.expect(p.Hello)
    peer.send(p.Error("name_taken", "bob is online"))
    with pytest.raises(c.LoginRefused) as refused:
        await asyncio.wait_for(task, 5)
    assert refused.value.code == "name_taken" and "online" in refused.value.message
    task = asyncio.ensure_future(client.login("bob2", "secret-password"))
    hello = await peer.expect(p.Hello)
    assert isinstance(hello, p.Hello) and hello.password == "secret-password"
    peer.send(welcome("bob2"))
    assert (await asyncio.wait_for(task, 5)).name == "bob2"
    assert fake_server.peers.empty()  # no second connection was opened


async def test_invalid_name_refused_without_sending(rec: Recorder) -> None:
    client = c.ChatClient("127.0.0.1", 9, rec)
    with pytest.raises(c.LoginRefused) as refused:
        await client.login("no spaces allowed")
    assert refused.value.code == "name_invalid"


async def test_unreachable_server_is_connect_failed(rec: Recorder) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = c.ChatClient("127.0.0.1", port, rec)
    with pytest.raises(c.ConnectFailed, match="connection refused"):
        await client.login("ann")


async def test_bye_before_welcome_is_explained(fake_server: FakeServer, rec: Recorder) -> None:
    client = make_client(fake_server, rec)
    task = asyncio.ensure_future(client.login("ann"))
    peer = await fake_server.accept()
    peer.send(p.Bye("server_busy", "too many connections"))
    peer.close()
    with pytest.raises(c.ConnectFailed, match="full"):
        await asyncio.wait_for(task, 5)


async def test_reconnect_resumes_and_resends_exactly_once(
    fake_server: FakeServer, rec: Recorder
) -> None:
    client = make_client(fake_server, rec)
    client.rooms["lobby"] = "lobby"
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    join = await peer.expect(p.Join)
    peer.send(p.Joined("lobby", ("ann",), (message(5, "bob", "old"),), more=True, re=join.id))
    await rec.wait_for(p.Joined)
    # Two messages typed; the server stores the first, then the connection drops.
    first = client.say("one", room="lobby")
    second = client.say("two", room="lobby")
    await peer.expect(p.Say)
    await peer.expect(p.Say)
    peer.close()
    (lost,) = await rec.wait_for(c.Disconnected)
    assert isinstance(lost, c.Disconnected) and lost.retry_in is not None

    peer = await fake_server.accept()
    await peer.expect(p.Hello)
    peer.send(welcome("ann"))
    rejoin = await peer.expect(p.Join)
    assert isinstance(rejoin, p.Join) and rejoin.since == 5 and rejoin.limit == 500
    resent = [await peer.expect(p.Say), await peer.expect(p.Say)]
    assert [s.nonce for s in resent if isinstance(s, p.Say)] == [first, second]
    # The server had stored "one" as 6 (and bob said 7): both come with the rejoin.
    peer.send(
        p.Joined(
            "lobby",
            ("ann", "bob"),
            (message(6, "ann", "one"), message(7, "bob", "missed")),
            more=False,
            re=rejoin.id,
        ),
        message(6, "ann", "one", re=first),  # the nonce's first message, again
        message(8, "ann", "two", re=second),
    )
    await rec.wait_for(c.Sent, 2)
    assert [m.id for m in rec.messages()] == [5, 6, 7, 8]
    sent = [e for e in rec.events if isinstance(e, c.Sent)]
    assert [(s.nonce, s.new) for s in sent] == [(first, False), (second, True)]
    connected = [e for e in rec.events if isinstance(e, c.Connected)]
    assert [e.resumed for e in connected] == [False, True]
    assert client.pending == {}
    await stop_task(runner)


async def test_rejoin_fills_a_gap_larger_than_one_answer(
    fake_server: FakeServer, rec: Recorder
) -> None:
    client = make_client(fake_server, rec)
    client.rooms["lobby"] = "lobby"
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    join = await peer.expect(p.Join)
    peer.send(p.Joined("lobby", ("ann",), (message(10, "bob", "seen"),), False, join.id))
    await rec.wait_for(p.Joined)
    peer.close()
    peer = await fake_server.accept()
    await peer.expect(p.Hello)
    peer.send(welcome("ann"))
    join = await peer.expect(p.Join)
    assert isinstance(join, p.Join) and join.since == 10
    # The answer holds only the newest part of what was missed (more=True).
    newest = tuple(message(i, "bob", f"m{i}") for i in (20, 21))
    peer.send(p.Joined("lobby", ("ann",), newest, True, join.id))
    page_req = await peer.expect(p.HistoryRequest)
    assert isinstance(page_req, p.HistoryRequest) and page_req.before == 20
    peer.send(message(22, "bob", "live during the gap"))
    page = tuple(message(i, "bob", f"m{i}") for i in (15, 16))
    peer.send(p.HistoryPage(page, more=True, room="lobby", re=page_req.id))
    page_req2 = await peer.expect(p.HistoryRequest)
    assert isinstance(page_req2, p.HistoryRequest) and page_req2.before == 15
    page = tuple(message(i, "bob", f"m{i}") for i in (9, 10, 12))
    peer.send(p.HistoryPage(page, more=True, room="lobby", re=page_req2.id))
    await rec.wait_for(p.Message)
    assert [m.id for m in rec.messages()] == [10, 12, 15, 16, 20, 21, 22]
    joined = [e for e in rec.events if isinstance(e, p.Joined)]
    assert isinstance(joined[-1], p.Joined) and not joined[-1].more
    assert not any(isinstance(e, p.HistoryPage) for e in rec.events)
    await stop_task(runner)


async def test_final_bye_stops_reconnecting(fake_server: FakeServer, rec: Recorder) -> None:
    client = make_client(fake_server, rec)
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    peer.send(p.Bye("replaced", "logged in elsewhere"))
    peer.close()
    await asyncio.wait_for(runner, 5)
    last = rec.events[-1]
    assert isinstance(last, c.Disconnected) and last.retry_in is None
    assert "somewhere else" in last.reason
    assert fake_server.peers.empty()


async def test_shutdown_bye_reconnects_with_reason(fake_server: FakeServer, rec: Recorder) -> None:
    client = make_client(fake_server, rec)
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    peer.send(p.Bye("shutdown", "server stopping"))
    peer.close()
    (lost,) = await rec.wait_for(c.Disconnected)
    assert isinstance(lost, c.Disconnected) and "shutting down" in lost.reason
    peer = await fake_server.accept()
    await peer.expect(p.Hello)
    await stop_task(runner)


async def test_reconnect_now_skips_the_backoff(fake_server: FakeServer, rec: Recorder) -> None:
    client = make_client(fake_server, rec, backoff_min=30.0, backoff_max=30.0)
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    peer.close()
    (lost,) = await rec.wait_for(c.Disconnected)
    assert isinstance(lost, c.Disconnected) and lost.retry_in is not None
    assert lost.retry_in >= 24
    client.reconnect_now()
    peer = await fake_server.accept(wait=2.0)
    await peer.expect(p.Hello)
    await stop_task(runner)


async def test_backoff_grows_with_jitter_within_bounds() -> None:
    client = c.ChatClient("h", 1, lambda e: None, rng=random.Random(1))
    delays = [client.backoff(n) for n in range(12)]
    assert all(1.0 <= d <= 30.0 for d in delays)
    assert delays[0] * 1.0 >= 0.8 and delays[0] <= 1.2
    assert delays[3] > delays[1] > delays[0] * 0.9
    assert delays[-1] >= 24.0
    assert len({round(client.backoff(4), 6) for _ in range(10)}) > 1  # jittered


async def test_silent_server_is_pinged_then_dropped(fake_server: FakeServer, rec: Recorder) -> None:
    client = make_client(fake_server, rec, idle_ping=0.1, ping_timeout=0.2)
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    assert isinstance(await peer.expect(p.Ping), p.Ping)
    (lost,) = await rec.wait_for(c.Disconnected)
    assert isinstance(lost, c.Disconnected) and "stopped answering" in lost.reason
    await stop_task(runner)


async def test_server_ping_is_answered_and_huge_frames_read(
    fake_server: FakeServer, rec: Recorder
) -> None:
    client = make_client(fake_server, rec)
    client.rooms["lobby"] = "lobby"
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    join = await peer.expect(p.Join)
    peer.send(p.Ping())
    assert isinstance(await peer.expect(p.Pong), p.Pong)
    history = tuple(message(i, "bob", "x" * 3999) for i in range(1, 501))
    peer.send(p.Joined("lobby", ("ann",), history, more=False, re=join.id))
    (joined,) = await rec.wait_for(p.Joined)
    assert isinstance(joined, p.Joined) and len(joined.history) == 500
    await stop_task(runner)


async def test_refused_say_and_join_are_reported(fake_server: FakeServer, rec: Recorder) -> None:
    client = make_client(fake_server, rec)
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    nonce = client.say("psst", to="carol")
    await peer.expect(p.Say)
    peer.send(p.Error("no_such_user", "carol is not online", re=nonce))
    (failed,) = await rec.wait_for(c.SayFailed)
    assert isinstance(failed, c.SayFailed) and failed.nonce == nonce
    assert client.pending == {}
    client.join("new-room")
    join = await peer.expect(p.Join)
    assert isinstance(join, p.Join) and join.id is not None
    peer.send(p.Error("room_invalid", "bad", re=join.id))
    (req,) = await rec.wait_for(c.RequestFailed)
    assert isinstance(req, c.RequestFailed) and isinstance(req.request, p.Join)
    assert "new-room" not in client.rooms
    await stop_task(runner)


async def test_bad_frames_are_skipped(fake_server: FakeServer, rec: Recorder) -> None:
    client = make_client(fake_server, rec)
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    peer.writer.write(b'not json\n{"type":"martian"}\n')
    peer.send(message(1, "bob", "still here"))
    await rec.wait_for(p.Message)
    assert len([e for e in rec.events if isinstance(e, c.BadFrame)]) == 2
    await stop_task(runner)


async def test_say_while_disconnected_is_sent_after_reconnect(
    fake_server: FakeServer, rec: Recorder
) -> None:
    client = make_client(fake_server, rec, backoff_min=30.0, backoff_max=30.0)
    client.rooms["lobby"] = "lobby"
    peer = await login(client, fake_server)
    runner = asyncio.create_task(client.run())
    await peer.expect(p.Join)
    peer.close()
    await rec.wait_for(c.Disconnected)
    nonce = client.say("typed offline", room="lobby")
    client.reconnect_now()
    peer = await fake_server.accept()
    await peer.expect(p.Hello)
    peer.send(welcome("ann"))
    await peer.expect(p.Join)
    say = await peer.expect(p.Say)
    assert isinstance(say, p.Say) and say.nonce == nonce
    await stop_task(runner)


async def test_conversation_of_direct_messages() -> None:
    to_me = p.Message(1, "Bob", "hi", "2026-01-01T00:00:00.000Z", to="Ann")
    from_me = p.Message(2, "ann", "hi", "2026-01-01T00:00:00.000Z", to="Bob")
    assert c.conversation_of(to_me, "Ann") == ("dm", "bob")
    assert c.conversation_of(from_me, "Ann") == ("dm", "bob")


async def test_stop_task_fails_on_the_runner_exception() -> None:
    """The runner pattern of these tests: an exception inside run() fails the test."""

    async def broken() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("inside run()")

    runner = asyncio.create_task(broken())
    await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError, match="inside run"):
        await stop_task(runner)
    sleeper = asyncio.create_task(asyncio.sleep(10))
    await stop_task(sleeper)
    assert sleeper.cancelled()
