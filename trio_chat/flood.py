"""Flood control: a token bucket per connection that delays reading, and drops nothing."""

from __future__ import annotations

import trio


class TokenBucket:
    """`burst` frames at once, then `rate` frames per second; `take` waits for a token."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, burst: int, rate: float) -> None:
        self.burst = max(1, burst)
        self.rate = rate
        self._tokens = float(self.burst)
        self._last = trio.current_time()

    def _refill(self) -> None:
        now = trio.current_time()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    async def take(self) -> None:
        """Wait until the connection may send another frame, then spend one token."""
        self._refill()
        if self._tokens < 1:
            await trio.sleep((1 - self._tokens) / self.rate)
            self._refill()
        self._tokens -= 1
