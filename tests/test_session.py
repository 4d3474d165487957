"""One Session over in-memory streams, with trio's virtual clock for every timing.

The rules of PROTOCOL.md sections 2 and 5-6 that one connection shows on its own:
the handshake and idle timeouts, errors in a row, the slow-consumer bound, the
send timeout, and a clean close on EOF. No store reads or commits happen here
(guests only), so the autojump clock never jumps past a worker thread.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from chat_client import ChatClient
from harness import FOREVER, open_session

from trio_chat.config import Config
from trio_chat.doors.base import LAST_WORDS, MAX_ERRORS
from trio_chat.outbox import PATIENCE

pytestmark = pytest.mark.trio

EPS = 1e-6


async def welcome(client: ChatClient, name: str = "Guest") -> None:
    await client.send(type="hello", name=name)
    frame = await client.recv()
    assert frame["type"] == "welcome", frame


async def nothing_arrives(client: ChatClient, seconds: float) -> None:
    """Assert that no frame comes for `seconds` of virtual time."""
    with trio.move_on_after(seconds) as waiting:
        frame = await client.recv(FOREVER)
        pytest.fail(f"expected silence, got {frame}")
    assert waiting.cancelled_caught


# ------------------------------------------------------------------ handshake timeout


async def test_no_hello_in_time_gets_bye_timeout_and_close(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config) as h:
        bye = await h.client.recv(FOREVER)
        assert bye["type"] == "bye" and bye["reason"] == "timeout"
        assert h.elapsed() == pytest.approx(config.handshake_timeout, abs=EPS)
        assert await h.client.closed(FOREVER)
        await h.done.wait()
        assert h.ended_at is not None
        assert h.ended_at - h.started == pytest.approx(config.handshake_timeout, abs=EPS)


async def test_pings_do_not_extend_the_handshake_deadline(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config, handshake_timeout=10.0) as h:
        for at in (5.0, 9.0):
            await trio.sleep_until(h.started + at)
            await h.client.send(type="ping", id=str(at))
            assert await h.client.recv() == {"type": "pong", "re": str(at)}
        bye = await h.client.recv(FOREVER)
        assert bye["type"] == "bye" and bye["reason"] == "timeout"
        assert h.elapsed() == pytest.approx(10.0, abs=EPS)
        assert await h.client.closed(FOREVER)


async def test_a_hello_in_time_gets_no_bye(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config, handshake_timeout=10.0, idle_timeout=60.0) as h:
        await trio.sleep_until(h.started + 9.9)
        await welcome(h.client)
        # well past the handshake deadline, and just short of the idle ping: silence
        await nothing_arrives(h.client, 59.9)
        assert not h.done.is_set()
        assert await h.client.recv(FOREVER) == {"type": "ping"}
        assert h.elapsed() == pytest.approx(9.9 + 60.0, abs=EPS)


# ------------------------------------------------------------------ idle timeout


async def test_silent_client_gets_ping_then_bye_after_another_half(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config, idle_timeout=60.0) as h:
        await welcome(h.client)
        t0 = trio.current_time()
        assert await h.client.recv(FOREVER) == {"type": "ping"}
        assert trio.current_time() - t0 == pytest.approx(60.0, abs=EPS)
        bye = await h.client.recv(FOREVER)
        assert bye["type"] == "bye" and bye["reason"] == "timeout"
        assert trio.current_time() - t0 == pytest.approx(90.0, abs=EPS)
        assert await h.client.closed(FOREVER)
        await h.done.wait()
        assert not h.hub.users  # the timed-out member left the hub


async def test_pong_resets_the_idle_timer(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config, idle_timeout=60.0) as h:
        await welcome(h.client)
        t0 = trio.current_time()
        assert await h.client.recv(FOREVER) == {"type": "ping"}  # at 60
        await trio.sleep_until(t0 + 80.0)
        await h.client.send(type="pong")
        # no bye at 90: the next ping is due 60 s after the pong
        await nothing_arrives(h.client, 60.0 - EPS * 10)
        assert await h.client.recv(FOREVER) == {"type": "ping"}
        assert trio.current_time() - t0 == pytest.approx(140.0, abs=EPS)
        bye = await h.client.recv(FOREVER)
        assert bye["reason"] == "timeout"
        assert trio.current_time() - t0 == pytest.approx(170.0, abs=EPS)


async def test_any_frame_counts_as_a_sign_of_life(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config, idle_timeout=60.0) as h:
        await welcome(h.client)
        t0 = trio.current_time()
        await trio.sleep_until(t0 + 50.0)
        await h.client.send(type="rooms", id="r")  # not a pong, still a frame
        assert (await h.client.recv())["type"] == "rooms"
        assert await h.client.recv(FOREVER) == {"type": "ping"}
        assert trio.current_time() - t0 == pytest.approx(110.0, abs=EPS)
        await trio.sleep_until(t0 + 130.0)
        await h.client.send(type="ping", id="p")  # answers the server's ping with a ping
        assert await h.client.recv() == {"type": "pong", "re": "p"}
        assert await h.client.recv(FOREVER) == {"type": "ping"}
        assert trio.current_time() - t0 == pytest.approx(190.0, abs=EPS)
        assert (await h.client.recv(FOREVER))["reason"] == "timeout"
        assert trio.current_time() - t0 == pytest.approx(220.0, abs=EPS)


# ------------------------------------------------------------------ errors in a row

BAD_FRAMES = (
    b"not json",
    b'{"type":"nope"}',
    b"[]",
    b'{"type":"join","room":""}',
    b'{"type":"say","room":"lobby","text":"not a member"}',  # a dispatch-time error
    b'{"type":"ping","id":true}',
    b"x" * 70000,  # frame_too_large
)


def bad_frames(count: int) -> bytes:
    return b"".join(BAD_FRAMES[i % len(BAD_FRAMES)] + b"\n" for i in range(count))


async def test_errors_in_a_row_end_with_bye_too_many_errors(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    assert MAX_ERRORS == 20  # PROTOCOL.md section 5
    async with open_session(config) as h:
        c = h.client
        await welcome(c)
        # 19 errors and a good frame, twice: the good frame resets the count
        await c.send_raw(bad_frames(19) + b'{"type":"ping","id":1}\n')
        await c.send_raw(bad_frames(19) + b'{"type":"ping","id":2}\n')
        for n in (1, 2):
            codes = [(await c.recv())["code"] for _ in range(19)]
            assert "frame_too_large" in codes and "bad_frame" in codes
            assert "not_in_room" in codes and "unknown_type" in codes
            assert await c.recv() == {"type": "pong", "re": n}
        assert not h.done.is_set()
        await c.send_raw(bad_frames(20) + b'{"type":"ping","id":3}\n')
        for _ in range(20):
            assert (await c.recv())["type"] == "error"
        bye = await c.recv()
        assert bye["type"] == "bye" and bye["reason"] == "too_many_errors"
        assert await c.closed()  # the ping after the 20th error is not answered
        assert not any(f["type"] == "pong" and f.get("re") == 3 for f in c.seen)
        await h.done.wait()
        assert not h.hub.users


async def test_errors_before_hello_count_too(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config) as h:
        await h.client.send_raw(b'{"type":"rooms"}\n' * 20)
        for _ in range(20):
            assert (await h.client.recv())["code"] == "handshake_required"
        assert (await h.client.recv())["reason"] == "too_many_errors"
        assert await h.client.closed()


# ------------------------------------------------------------------ slow consumers, stalls


async def test_a_client_that_never_reads_gets_bye_slow_consumer(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    limit = 5
    async with open_session(config, lockstep=True, queue_limit=limit, idle_timeout=FOREVER) as h:
        c = h.client
        await welcome(c)
        # lockstep: the first pong's send_all waits for a reader, the rest queue up behind it
        for i in range(limit + 1):  # one more than the bound: tolerated while it may drain
            await c.send(type="ping", id=i)
        await trio.testing.wait_all_tasks_blocked()
        assert not h.session.outbox.closed and not h.done.is_set()
        await trio.sleep(PATIENCE)  # over the bound, and nothing sent for that long
        await c.send(type="ping", id=limit + 1)
        await trio.testing.wait_all_tasks_blocked()
        assert h.session.outbox.closed
        # the client reads now, within the last words' grace: queued pongs, then the bye
        frames = [await c.recv() for _ in range(limit + 2)]
        assert frames[-1]["type"] == "bye" and frames[-1]["reason"] == "slow_consumer"
        assert frames[:-1] == [{"type": "pong", "re": i} for i in range(limit + 1)]
        assert await c.closed()
        await h.done.wait()
        assert not h.hub.users


async def test_a_slow_consumer_that_never_reads_is_closed_soon(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    limit = 5
    async with open_session(
        config, lockstep=True, queue_limit=limit, idle_timeout=FOREVER, send_timeout=30.0
    ) as h:
        c = h.client
        await welcome(c)
        for i in range(limit + 1):
            await c.send(type="ping", id=i)
        await trio.sleep(PATIENCE)  # over the bound, and nothing sent for that long
        await c.send(type="ping", id=limit + 1)
        t = trio.current_time()
        await h.done.wait()  # virtual time: the clock jumps to the writer's deadline
        assert h.ended_at is not None
        # closed after the short grace for its last words, not after the send timeout
        assert h.ended_at - t <= LAST_WORDS + EPS
        assert not h.hub.users
        assert await c.closed()


async def test_the_send_timeout_closes_a_stalled_connection(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config, lockstep=True, send_timeout=5.0, idle_timeout=FOREVER) as h:
        c = h.client
        await welcome(c)
        await c.send(type="ping", id="stuck")  # its pong is never read
        t = trio.current_time()
        with trio.move_on_after(5.0 - 0.01):
            await h.done.wait()
        assert not h.done.is_set()  # still waiting just before the send timeout
        await h.done.wait()
        assert h.ended_at is not None
        assert h.ended_at - t == pytest.approx(5.0, abs=EPS)
        assert not h.hub.users
        assert await c.closed()


# ------------------------------------------------------------------ end of stream


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b'{"type":"ping","id":',  # half a frame
        b'{"type":"hello","name":"Half"}\n{"type":"say","room":"lob',  # welcomed, then half
    ],
    ids=["nothing", "half_frame", "hello_then_half_frame"],
)
async def test_eof_closes_the_connection_cleanly(
    config: Config, autojump_clock: trio.testing.MockClock, payload: bytes
) -> None:
    async with open_session(config) as h:
        if payload:
            await h.client.send_raw(payload)
        await trio.testing.wait_all_tasks_blocked()
        await h.raw.send_eof()
        t = trio.current_time()
        assert await h.client.closed(FOREVER)
        await h.done.wait()
        assert h.ended_at == pytest.approx(t, abs=EPS)  # at once, not at a timeout
        assert not h.hub.users
        kinds = [f["type"] for f in h.client.seen]
        assert "bye" not in kinds and "pong" not in kinds
        if b"hello" in payload:
            assert kinds[0] == "welcome"


async def test_eof_after_welcome_leaves_the_hub(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config) as h:
        await welcome(h.client, "Leaver")
        assert list(h.hub.users) == ["leaver"]
        await h.raw.send_eof()
        assert await h.client.closed()
        await h.done.wait()
        assert not h.hub.users
