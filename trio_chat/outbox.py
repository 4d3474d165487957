"""A connection's bounded queue of encoded frames: fan-out puts without ever waiting.

The bound counts frames, not items, because one item may be a whole committed
batch. A writer takes everything queued at once and sends it in one `send_all`.
"""

from __future__ import annotations

from collections.abc import Callable

import trio


class Outbox:
    """Bytes waiting for one connection's writer, at most `limit` frames unsent."""

    __slots__ = ("_chunks", "_closed", "_final", "_wakeup", "direct", "frames", "limit")

    def __init__(self, limit: int, direct: Callable[[bytes], int] | None = None) -> None:
        self.limit = max(1, limit)
        self.frames = 0  # queued or being sent
        self._chunks: list[bytes] = []
        self._closed = False
        self._final: bytes | None = None
        self._wakeup: trio.Event | None = None
        # Writes what it can of some bytes at once, without waiting (a non-blocking
        # socket write); used only while the writer is idle, so the two never overlap.
        self.direct = direct

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, data: bytes, frames: int = 1) -> bool:
        """Queue `data`; False (nothing queued) when it would pass the bound.

        An item alone is always taken by an outbox with nothing unsent, so a big
        batch never counts against a reader that has kept up. Once closed, data
        is dropped: the connection is going away.
        """
        if self._closed:
            return True
        if self.frames and self.frames + frames > self.limit:
            return False
        if self.direct is not None and self._wakeup is not None and not self.frames:
            # The writer is parked with nothing in flight: send now, skipping its
            # wake-up (a task switch and a scheduling round per member per batch).
            sent = self.direct(data)
            if sent == len(data):
                return True
            data = data[sent:]
        self._chunks.append(data)
        self.frames += frames
        self._wake()
        return True

    def close(self, final: bytes | None = None) -> None:
        """Take nothing more; `final` (a bye) goes out after what is queued, past the bound."""
        if self._closed:
            return
        self._closed = True
        self._final = final
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    async def take(self) -> tuple[bytes, int] | None:
        """Everything queued as one blob and its frame count; None once closed and drained."""
        while not self._chunks:
            if self._closed:
                final, self._final = self._final, None
                return None if final is None else (final, 0)
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        chunks, self._chunks = self._chunks, []
        if self._closed and self._final is not None:
            chunks.append(self._final)
            self._final = None
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), self.frames

    def sent(self, frames: int) -> None:
        """The writer has sent `frames` frames taken earlier."""
        self.frames -= frames
