"""Password hashing: salted scrypt in worker threads, slots shared fairly across addresses."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from trio_chat.accounts import FairLimiter, FairLimiterStatistics, PasswordHasher

pytestmark = pytest.mark.trio

CHEAP = 2**10  # the cost parameter N; the server uses OWASP's 2**17


async def test_hash_then_verify() -> None:
    hasher = PasswordHasher(n=CHEAP)
    encoded = await hasher.hash("correct horse")
    scheme, n, r, p, salt, digest = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(CHEAP), "8", "1")
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest)) == 32
    assert "correct horse" not in encoded
    assert await hasher.verify("correct horse", encoded)
    assert not await hasher.verify("correct horsE", encoded)


async def test_each_hash_has_its_own_salt() -> None:
    hasher = PasswordHasher(n=CHEAP)
    assert await hasher.hash("same") != await hasher.hash("same")


async def test_old_hashes_verify_with_their_own_parameters() -> None:
    encoded = await PasswordHasher(n=CHEAP).hash("kept")
    assert await PasswordHasher(n=2 * CHEAP).verify("kept", encoded)


@pytest.mark.parametrize(
    "encoded", ["", "plain", "md5$1$2$3$00$00", "scrypt$x$8$1$00$00", "scrypt$1024$8$1$zz$00"]
)
async def test_a_malformed_hash_never_verifies(encoded: str) -> None:
    assert not await PasswordHasher(n=CHEAP).verify("anything", encoded)


async def test_hashing_leaves_the_event_loop_free_and_runs_two_at_a_time() -> None:
    """While hashes run in worker threads, other tasks go on; a third waits for a slot."""
    hasher = PasswordHasher(n=2**14, concurrency=2)
    done: list[str] = []

    async def login(password: str) -> None:
        await hasher.hash(password)
        done.append(password)

    async with trio.open_nursery() as nursery:
        for password in ("one", "two", "three"):
            nursery.start_soon(login, password)
        await trio.testing.wait_all_tasks_blocked()
        assert done == []  # the hashes are running, yet this task runs
        stats = hasher.slots.statistics()
        assert stats.borrowed_tokens == 2 and stats.tasks_waiting == 1
    assert sorted(done) == ["one", "three", "two"]


async def test_hash_and_verify_take_the_clients_address() -> None:
    hasher = PasswordHasher(n=CHEAP)
    encoded = await hasher.hash("pw", who="192.0.2.1")
    assert await hasher.verify("pw", encoded, who="2001:db8::1")
    assert hasher.slots.statistics().borrowed_tokens == 0


async def test_real_hashes_from_a_sprayer_leave_a_turn_for_another_address() -> None:
    """A's ten queued checks on two slots: B's one check ends among the first five."""
    hasher = PasswordHasher(n=2**12, concurrency=2)
    encoded = await hasher.hash("right")
    finished: list[str] = []

    async def check(who: str, password: str) -> None:
        await hasher.verify(password, encoded, who=who)
        finished.append(who)

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(check, "198.51.100.7", f"guess{i}")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(check, "203.0.113.9", "right")
    assert finished.index("203.0.113.9") <= 4


# FairLimiter alone: fake jobs that sleep under the autojump clock


async def _start_times(
    limiter: FairLimiter | trio.CapacityLimiter, jobs: list[str], late: str
) -> dict[str, list[float]]:
    """Queue `jobs` (one second each, by address), then `late`: when each job started."""
    starts: dict[str, list[float]] = {}
    t0 = trio.current_time()

    async def job(who: str) -> None:
        if isinstance(limiter, FairLimiter):
            async with limiter.slot(who):
                starts.setdefault(who, []).append(trio.current_time() - t0)
                await trio.sleep(1)
        else:
            async with limiter:
                starts.setdefault(who, []).append(trio.current_time() - t0)
                await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        for who in jobs:
            nursery.start_soon(job, who)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(job, late)
    return starts


async def test_a_queue_of_30_from_one_address_delays_another_by_one_job(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two slots, 30 one-second jobs from A, then one from B: B starts after 1 s, not 15 s."""
    fair = await _start_times(FairLimiter(2), ["A"] * 30, "B")
    assert fair["B"] == [1.0]  # the first release goes to A (first in line), the second to B
    assert max(fair["A"]) == 15.0  # A's work is not slowed: the slots never idle
    plain = await _start_times(trio.CapacityLimiter(2), ["A"] * 30, "B")
    assert plain["B"] == [15.0]  # first come first served: B waits for all of A's 15 rounds


async def test_slots_go_round_robin_and_fifo_within_an_address(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = FairLimiter(1)
    order: list[str] = []

    async def job(who: str, tag: str) -> None:
        async with limiter.slot(who):
            order.append(tag)
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        for who, tag in [("A", "a1"), ("A", "a2"), ("A", "a3"), ("B", "b1"), ("B", "b2")]:
            nursery.start_soon(job, who, tag)
            await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(job, "C", "c1")
    # a1 took the free slot; then A, B, C in the order they first waited, FIFO in each
    assert order == ["a1", "a2", "b1", "c1", "a3", "b2"]


async def test_a_cancelled_waiter_leaves_its_queue_and_loses_no_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = FairLimiter(1)
    got: list[str] = []

    async def waiter(who: str, tag: str, scope: trio.CancelScope) -> None:
        with scope:
            async with limiter.slot(who):
                got.append(tag)
                await trio.sleep(1)

    scopes = {tag: trio.CancelScope() for tag in ("a1", "b1", "a2")}
    await limiter.acquire("holder")
    async with trio.open_nursery() as nursery:
        for tag, scope in scopes.items():
            nursery.start_soon(waiter, tag[0], tag, scope)
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.statistics().tasks_waiting == 3
        scopes["b1"].cancel()  # B's only waiter: B leaves the turn order
        scopes["a1"].cancel()  # A's first: a2 stays queued
        stats = limiter.statistics()
        assert (stats.tasks_waiting, stats.addresses_waiting) == (1, 1)
        limiter.release()
    assert got == ["a2"]
    assert limiter.statistics() == FairLimiterStatistics(1, 0, 0, 0)


async def test_a_waiter_cancelled_as_its_turn_comes_passes_the_slot_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Released to a waiter, then cancelled before it runs: it has the slot, and frees it."""
    limiter = FairLimiter(1)
    scope = trio.CancelScope()
    entered: list[str] = []

    async def waiter() -> None:
        with scope:
            async with limiter.slot("A"):
                entered.append("A")
                await trio.sleep(1)

    async def other() -> None:
        async with limiter.slot("B"):
            entered.append("B")

    await limiter.acquire("holder")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(other)
        await trio.testing.wait_all_tasks_blocked()
        limiter.release()  # A's turn: the slot is A's ...
        scope.cancel()  # ... and then A is cancelled: it enters, and leaves at its sleep
    assert entered == ["A", "B"]
    assert limiter.statistics().borrowed_tokens == 0


async def test_no_more_than_total_slots_ever_in_use_under_churn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Five addresses, random job lengths, a third of the waiters cancelled at random."""
    limiter = FairLimiter(3)
    rng = random.Random(8)
    inside = peak = done = 0

    async def job(who: str, length: float) -> None:
        nonlocal inside, peak, done
        async with limiter.slot(who):
            inside += 1
            peak = max(peak, inside)
            try:
                await trio.sleep(length)
            finally:
                inside -= 1
        done += 1

    async with trio.open_nursery() as nursery:
        for i in range(100):
            scope = trio.CancelScope()
            if rng.random() < 1 / 3:
                scope.deadline = trio.current_time() + rng.uniform(0, 20)

            async def bounded(who: str, length: float, scope: trio.CancelScope = scope) -> None:
                with scope:
                    await job(who, length)

            nursery.start_soon(bounded, f"10.0.0.{i % 5}", rng.uniform(0.1, 2))
    assert peak == 3
    assert 0 < done < 100
    assert limiter.statistics() == FairLimiterStatistics(3, 0, 0, 0)
    await limiter.acquire()  # every slot is back
    limiter.release()
    with pytest.raises(RuntimeError):
        limiter.release()
