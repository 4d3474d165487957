"""Account passwords: salted scrypt hashes, computed in worker threads in fair turns.

scrypt comes with Python (no new dependency) and at OWASP's cost (N=2**17, r=8,
p=1) one hash takes ~0.4 s and 128 MiB, so at most `concurrency` run at once:
a burst of logins neither blocks the event loop nor exhausts memory. The slots
go round-robin across client addresses (`FairLimiter`), so one address spraying
passwords delays another address's login by about one hash, not by its queue.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from .logins import client_key

OWASP_N = 2**17


@dataclass(frozen=True)
class FairLimiterStatistics:
    """A snapshot of a `FairLimiter`, named like trio's `CapacityLimiter` statistics."""

    total_tokens: int
    borrowed_tokens: int
    tasks_waiting: int
    addresses_waiting: int


class _Waiter:
    __slots__ = ("gone", "task")

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.gone = False  # cancelled while waiting: skipped when its turn comes


class _Queue:
    """One address's waiters, first come first served; `live` counts those not gone."""

    __slots__ = ("live", "waiters")

    def __init__(self) -> None:
        self.waiters: deque[_Waiter] = deque()
        self.live = 0


class FairLimiter:
    """`total` slots handed out round-robin across `who`s, FIFO within each `who`.

    A `who` with many queued tasks gets one slot per turn, so a newcomer waits for
    at most one release per other waiting `who`. Freed slots go straight to the
    next waiter (no barging), and a cancelled waiter leaves its queue in O(1).
    """

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("a FairLimiter needs at least one slot")
        self.total = total
        self._free = total
        self._waiting = 0
        # the addresses with live waiters, in turn order: served from the front,
        # an address still waiting goes to the back
        self._ring: OrderedDict[str, _Queue] = OrderedDict()

    def statistics(self) -> FairLimiterStatistics:
        return FairLimiterStatistics(
            self.total, self.total - self._free, self._waiting, len(self._ring)
        )

    @asynccontextmanager
    async def slot(self, who: str = "") -> AsyncIterator[None]:
        """Hold one slot for the body, waiting for `who`'s turn if none is free."""
        await self.acquire(who)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, who: str = "") -> None:
        """Take a slot, waiting in `who`'s queue if none is free; a checkpoint either way."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._free:
            self._free -= 1
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        queue = self._ring.get(who)
        if queue is None:
            queue = self._ring[who] = _Queue()
        waiter = _Waiter(trio.lowlevel.current_task())
        queue.waiters.append(waiter)
        queue.live += 1
        self._waiting += 1

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            # runs at once when cancelled; once `release` rescheduled us, it never runs
            waiter.gone = True
            queue.live -= 1
            self._waiting -= 1
            if not queue.live:
                del self._ring[who]  # a queue is in the ring while it has live waiters
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def release(self) -> None:
        """Give the slot to the next address's first waiter, or free it."""
        if not self._ring:
            if self._free >= self.total:
                raise RuntimeError("FairLimiter released more often than acquired")
            self._free += 1
            return
        who, queue = self._ring.popitem(last=False)
        waiter = queue.waiters.popleft()
        while waiter.gone:
            waiter = queue.waiters.popleft()
        queue.live -= 1
        self._waiting -= 1
        if queue.live:
            self._ring[who] = queue  # its next waiter goes after the others' turns
        trio.lowlevel.reschedule(waiter.task)


class PasswordHasher:
    """Hashes and checks passwords off the event loop, in fair turns per client address."""

    def __init__(self, n: int = OWASP_N, r: int = 8, p: int = 1, concurrency: int = 2) -> None:
        self.n, self.r, self.p = n, r, p
        self.slots = FairLimiter(concurrency)
        # threads of our own, so hashing never waits for trio's shared thread limiter
        self._threads = trio.CapacityLimiter(concurrency)

    async def hash(self, password: str, *, who: str = "") -> str:
        """A new salted hash of `password`; `who` is the client's address (its turn)."""
        salt = os.urandom(16)
        digest = await self._scrypt(who, password, salt, self.n, self.r, self.p)
        return f"scrypt${self.n}${self.r}${self.p}${salt.hex()}${digest.hex()}"

    async def verify(self, password: str, encoded: str, *, who: str = "") -> bool:
        """True when `password` matches; the comparison takes the same time either way."""
        try:
            scheme, n, r, p, salt, expected = encoded.split("$")
            params = int(n), int(r), int(p)
            salt_bytes, expected_bytes = bytes.fromhex(salt), bytes.fromhex(expected)
        except ValueError:
            return False
        if scheme != "scrypt":
            return False
        digest = await self._scrypt(who, password, salt_bytes, *params)
        return hmac.compare_digest(digest, expected_bytes)

    async def _scrypt(self, who: str, password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        # a cancelled hash keeps its slot until its thread is done: the limit counts threads
        async with self.slots.slot(client_key(who)):
            return await trio.to_thread.run_sync(
                _scrypt, password, salt, n, r, p, limiter=self._threads
            )


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    memory = 128 * n * r * p
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=2 * memory + 2**20, dklen=32
    )
