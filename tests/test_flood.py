"""Flood control (PROTOCOL.md guarantee 5): a fast sender is read more slowly, nothing is dropped.

The bucket and one session run on trio's virtual clock; one test floods a real
server over loopback with the real clock and times a calm client's ping.
"""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from chat_client import ChatClient, login
from harness import FOREVER, StartServer, open_session

from trio_chat.config import Config
from trio_chat.flood import TokenBucket

pytestmark = pytest.mark.trio

EPS = 1e-6


# ------------------------------------------------------------------ the bucket


async def test_bucket_gives_a_burst_then_the_rate(autojump_clock: trio.testing.MockClock) -> None:
    bucket = TokenBucket(burst=5, rate=10.0)
    t0 = trio.current_time()
    for _ in range(5):
        await bucket.take()
    assert trio.current_time() == t0  # the burst costs no time
    for n in range(1, 11):
        await bucket.take()
        assert trio.current_time() - t0 == pytest.approx(n / 10.0, abs=EPS)


async def test_bucket_refills_up_to_the_burst_only(autojump_clock: trio.testing.MockClock) -> None:
    bucket = TokenBucket(burst=3, rate=2.0)
    for _ in range(3):
        await bucket.take()
    await trio.sleep(100.0)  # a long pause refills 3 tokens, not 200
    t0 = trio.current_time()
    for _ in range(3):
        await bucket.take()
    assert trio.current_time() == t0
    await bucket.take()
    assert trio.current_time() - t0 == pytest.approx(0.5, abs=EPS)


async def test_bucket_partial_refill_and_slow_rates(autojump_clock: trio.testing.MockClock) -> None:
    bucket = TokenBucket(burst=1, rate=0.5)  # one frame every 2 s
    t0 = trio.current_time()
    await bucket.take()
    await trio.sleep(1.5)  # three quarters of a token
    await bucket.take()
    assert trio.current_time() - t0 == pytest.approx(2.0, abs=EPS)
    await bucket.take()
    assert trio.current_time() - t0 == pytest.approx(4.0, abs=EPS)


# ------------------------------------------------------------------ one session


def pings(count: int) -> bytes:
    return b"".join(json.dumps({"type": "ping", "id": i}).encode() + b"\n" for i in range(count))


async def test_session_slows_a_flood_and_answers_every_frame(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config, flood_burst=5, flood_rate=10.0, idle_timeout=FOREVER) as h:
        assert h.session.bucket is not None
        t0 = trio.current_time()
        await h.client.send_raw(pings(25))  # all 25 at once
        times = []
        for i in range(25):
            assert await h.client.recv(FOREVER) == {"type": "pong", "re": i}
            times.append(trio.current_time() - t0)
        assert times[4] == pytest.approx(0.0, abs=EPS)  # the burst at once
        # then 10 frames a second: the 25th pong no earlier than 2 s after the first
        assert times[-1] >= 2.0 - EPS
        assert times[-1] == pytest.approx(2.0, abs=0.05)
        assert times == sorted(times)
        await trio.testing.wait_all_tasks_blocked()
        assert not h.done.is_set()  # a flooder is slowed, not disconnected


async def test_flood_rate_zero_means_no_bucket(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_session(config, flood_burst=5, flood_rate=0, idle_timeout=FOREVER) as h:
        assert h.session.bucket is None
        t0 = trio.current_time()
        await h.client.send_raw(pings(200))
        for i in range(200):
            assert await h.client.recv(FOREVER) == {"type": "pong", "re": i}
        assert trio.current_time() == t0  # no virtual time spent: nothing slowed


async def test_errors_are_slowed_too(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    """Bad frames cost tokens as well: garbage is no way around the bucket."""
    async with open_session(config, flood_burst=2, flood_rate=10.0, idle_timeout=FOREVER) as h:
        t0 = trio.current_time()
        await h.client.send_raw(b"garbage\n" * 12)
        for _ in range(12):
            assert (await h.client.recv(FOREVER))["code"] == "bad_frame"
        assert trio.current_time() - t0 == pytest.approx(1.0, abs=0.05)


# ------------------------------------------------------------------ a real server, real clock


async def test_a_calm_client_is_answered_quickly_while_others_flood(
    start_server: StartServer,
) -> None:
    """Default flood settings; one flooder sends thousands of frames, another 60 with ids."""
    with trio.fail_after(10):
        server = await start_server(flood_burst=20, flood_rate=10.0)
        flooder = await login(server.port, "Flooder")
        counted = await ChatClient.connect(server.port)
        calm = await login(server.port, "Calm")
        flood_sent = trio.Event()
        results: dict[str, float] = {}

        async def flood() -> None:
            # ~5000 frames; the server reads them at 10/s, the kernel buffers hold the rest
            await flooder.send_raw(b'{"type":"ping"}\n' * 5000)
            flood_sent.set()

        async def counted_flood() -> None:
            start = trio.current_time()
            await counted.send_raw(pings(60))
            for i in range(60):
                frame = await counted.expect("pong", timeout=8)
                assert frame == {"type": "pong", "re": i}
            results["counted"] = trio.current_time() - start

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            nursery.start_soon(counted_flood)
            await flood_sent.wait()
            await trio.sleep(0.3)  # let the buckets of both flooders run dry
            worst = 0.0
            for n in range(5):
                start = trio.current_time()
                await calm.send(type="ping", id=n)
                assert await calm.expect("pong", timeout=2) == {"type": "pong", "re": n}
                worst = max(worst, trio.current_time() - start)
                await trio.sleep(0.2)
            results["calm_worst"] = worst
        assert results["calm_worst"] < 0.5
        # 60 frames, a burst of 20, then 10/s: about 4 s, none dropped
        assert 3.5 <= results["counted"] < 6.0
        print(
            f"calm client's worst ping: {worst * 1000:.1f} ms; 60 pings: {results['counted']:.2f} s"
        )
        await flooder.aclose()
        await counted.aclose()
        await calm.aclose()
        server.shutdown.set()
