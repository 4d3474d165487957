"""A connection's bounded queue of encoded frames: fan-out puts without ever waiting.

What is unsent has two bounds. Bytes queued (not what the writer is sending): a
hard bound at every instant, so memory stays bounded whatever a client does (at
most max_bytes plus the item in flight). Frames: counted in time, for clients that
do not read; being over it is tolerated while the writer makes progress, so a
reader that keeps up survives the server's own hiccups (a commit stall's backlog
fanned out at once). The frame bound counts frames, not items, because one item
may be a whole committed batch.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

MAX_BYTES = 4 << 20  # unsent bytes: why 4 MiB, see Outbox.__init__
PATIENCE = 2.0  # seconds over the frame bound without progress: see Outbox.__init__
# A take hands out about this much (one item at least), so a writer draining a
# backlog shows progress every 64 KiB, not once when the whole backlog is out.
TAKE_BYTES = 64 << 10


class Outbox:
    """Bytes waiting for one connection's writer: `max_bytes` at most, `limit` frames in time."""

    __slots__ = (
        "_chunks",
        "_closed",
        "_counts",
        "_final",
        "_flight",
        "_since",
        "_wakeup",
        "direct",
        "frames",
        "limit",
        "max_bytes",
        "nbytes",
        "patience",
    )

    def __init__(
        self,
        limit: int,
        direct: Callable[[bytes], int] | None = None,
        *,
        max_bytes: int = MAX_BYTES,
        patience: float = PATIENCE,
    ) -> None:
        """Unsent: `max_bytes` at every instant, `limit` frames for `patience` s without progress.

        4 MiB: a stall's catch-up (2,700 frames of ~300 B: 0.8 MB) fits five times, a page
        of 500 ASCII messages (~2 MB) with room behind it; it is also Linux's default most
        for a socket's send buffer (tcp_wmem), so a client that never reads costs at most
        about twice what the kernel spends on it. 2 s: a reader that keeps up shows
        progress far more often (a take is about 64 KiB); one that stopped is cut soon.
        """
        self.limit = max(1, limit)
        self.max_bytes = max(1, max_bytes)
        self.patience = patience
        self.frames = 0  # queued or being sent
        self.nbytes = 0  # queued or being sent
        self._flight = 0  # bytes being sent
        self._chunks: list[bytes] = []
        self._counts: list[int] = []  # the frames of each chunk
        # Since when the outbox has been over the frame bound with no progress, if
        # it is; the clock is read only while over the bound.
        self._since: float | None = None
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
        """Queue `data`; False (nothing queued) when it would pass a bound: a slow consumer.

        An outbox with nothing unsent takes any single item, so a reader that
        has kept up is never blamed for one big answer. Once closed, data is
        dropped: the connection is going away.
        """
        if self._closed:
            return True
        unsent = self.frames
        if unsent:
            nbytes = self.nbytes + len(data)
            # what is in flight does not count: one big answer being sent (a page of
            # 500 long messages may pass max_bytes) must not cut the reader that asked
            if nbytes - self._flight > self.max_bytes:
                return False
            if unsent + frames > self.limit and not self._draining():
                return False
        else:
            if self.direct is not None and self._wakeup is not None:
                # The writer is parked with nothing in flight: send now, skipping its
                # wake-up (a task switch and a scheduling round per member per batch).
                sent = self.direct(data)
                if sent == len(data):
                    return True
                data = data[sent:]
            nbytes = self.nbytes + len(data)
        self._chunks.append(data)
        self._counts.append(frames)
        self.frames = unsent + frames
        self.nbytes = nbytes
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.set()
            self._wakeup = None
        return True

    def _draining(self) -> bool:
        """Over the frame bound: tolerated until `patience` passes without progress."""
        now = trio.current_time()
        since = self._since
        if since is None:  # over the bound from now on, unless the writer gets on
            self._since = since = now
        return now - since < self.patience

    def close(self, final: bytes | None = None) -> None:
        """Take nothing more; `final` (a bye) goes out after what is queued, past the bounds."""
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
        """What is queued (about TAKE_BYTES at most) as one blob and its frame count.

        The bye comes with the last of it; None once closed and drained. The
        writer calls `sent` before it takes again.
        """
        while not self._chunks:
            if self._closed:
                final, self._final = self._final, None
                return None if final is None else (final, 0)
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        chunks = self._chunks
        frames, size = self.frames, self.nbytes
        if size > TAKE_BYTES and len(chunks) > 1:  # a backlog: hand it out in parts
            taken, frames, size = self._part(chunks)
        else:
            taken = chunks
            self._chunks = []
            self._counts = []
        self._flight = size
        if self._closed and self._final is not None and not self._chunks:
            taken.append(self._final)
            self._final = None
        return (taken[0] if len(taken) == 1 else b"".join(taken)), frames

    def _part(self, chunks: list[bytes]) -> tuple[list[bytes], int, int]:
        """Remove the first chunks, about TAKE_BYTES (one at least): them, their frames, bytes."""
        n = size = 0
        for chunk in chunks:
            n += 1
            size += len(chunk)
            if size >= TAKE_BYTES:
                break
        counts = self._counts
        taken, frames = chunks[:n], sum(counts[:n])
        del chunks[:n], counts[:n]
        return taken, frames, size

    def sent(self, frames: int) -> None:
        """The writer has sent `frames` frames taken earlier: progress."""
        unsent = self.frames = self.frames - frames
        self.nbytes -= self._flight
        self._flight = 0
        # Still over the frame bound: patience counts from now.
        self._since = trio.current_time() if unsent > self.limit else None
