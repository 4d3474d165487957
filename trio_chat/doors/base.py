"""What every door's connection does alike: the writer task, the reader loop, timeouts, closing.

A door subclasses `DoorSession` with its codec: `handle` turns received bytes
into calls on the chat core, and `encode_bye`/`encode_ping` say how its wire
spells those. The reader handles one request at a time, in order; a `say` is
handed to the store and the reader moves on (its answer comes with the fan-out).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import ClassVar

import trio

from ..core.chat import Chat
from ..flood import TokenBucket
from ..hub import Member
from ..logs import CONNECTION
from ..outbox import Outbox
from ..protocol import Bye, LeaveReason

log = logging.getLogger(__name__)

RECEIVE_SIZE = 65536
MAX_ERRORS = 20  # errors in a row before bye too_many_errors
LAST_WORDS = 1.0  # seconds a slow consumer's last send and its bye may take


class DoorSession:
    """Serves one client connection from its first byte to its close."""

    # slots: ten thousand idle connections each hold one of these
    __slots__ = (
        "_closed",
        "_handshake_deadline",
        "_hurry",
        "_last_heard",
        "_pinged",
        "_reading",
        "_sending",
        "_stopping",
        "bucket",
        "chat",
        "close_reason",
        "config",
        "errors",
        "hub",
        "leave_reason",
        "member",
        "opened",
        "outbox",
        "peer",
        "stream",
    )
    door: ClassVar[str] = "?"  # the door's name in logs and metrics

    def __init__(
        self,
        stream: trio.abc.Stream,
        peer: str,
        chat: Chat,
        *,
        handshake_deadline: float | None = None,
    ) -> None:
        self.stream = stream
        self.peer = peer
        self.chat = chat
        self.config = chat.config
        self.hub = chat.hub
        self.outbox = Outbox(self.config.queue_limit, _direct_writer(stream))
        self.member: Member | None = None
        self.errors = 0  # in a row
        self.leave_reason: LeaveReason | None = "gone"
        self.close_reason: str | None = None  # for the log and metrics: the bye's, or another
        self.bucket = (
            TokenBucket(self.config.flood_burst, self.config.flood_rate)
            if self.config.flood_rate > 0
            else None
        )
        self._reading = trio.CancelScope()
        self._stopping = False
        self._closed = False
        self._sending: trio.CancelScope | None = None  # the writer's scope: its deadline
        self._hurry = False  # the peer is not reading: give the last send a short grace
        now = self.opened = trio.current_time()
        if handshake_deadline is None:
            handshake_deadline = now + self.config.handshake_timeout
        self._handshake_deadline = handshake_deadline  # for the login (and TLS before it)
        self._last_heard = now
        self._pinged = False

    # ------------------------------------------------------------------ the door's part

    async def handle(self, data: bytes | bytearray) -> None:
        """Answer every complete request in `data`, in order."""
        raise NotImplementedError

    def encode_bye(self, bye: Bye) -> bytes:
        raise NotImplementedError

    def encode_ping(self) -> bytes:
        raise NotImplementedError

    def timeout_message(self, bye: Bye) -> None:
        """Say why the connection times out (a door may add its own words); then close."""
        self.close(bye, "timeout")

    # ------------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def host(self) -> str:
        """The peer's address, without its port (asked at login only: not kept)."""
        return self.peer.rsplit(":", 1)[0].strip("[]")

    async def run(self) -> None:
        """Serve until the peer goes or the server closes it; errors stay in this connection."""
        token = CONNECTION.set(self)  # every log line from this task names the connection
        self._log_opened()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop)
                with self._reading:
                    await self._read_loop()
                if not self._stopping:
                    self.close()  # else the server closes it once the last commit is out
        except Exception:
            self.close_reason = self.close_reason or "error"
            raise
        finally:
            self.close()
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.stream)
            self.close_reason = reason = self.close_reason or "gone"
            duration = round(trio.current_time() - self.opened, 3)
            log.info(
                "%s: connection closed (%s) after %.1f s", self.peer, reason, duration,
                extra={"event": "close", "door": self.door, "reason": reason, "seconds": duration},
            )  # fmt: skip
            CONNECTION.reset(token)

    def close(
        self, bye: Bye | None = None, leave: LeaveReason | None = None, words: str | None = None
    ) -> None:
        """End the connection: leave the hub, queue `bye` last, stop reading.

        Safe to call more than once and from other tasks; the first call decides.
        The writer sends what is queued, then the stream closes. `words`: a quit's
        own reason, shown to the rooms it leaves.
        """
        if self._closed:
            return
        self._closed = True
        if bye is not None:
            self.leave_reason = leave
            self.close_reason = self.close_reason or bye.reason
        if self.member is not None:
            self.hub.disconnect(self.member, self.leave_reason, words)
        self.outbox.close(None if bye is None else self.encode_bye(bye))
        self._reading.cancel()

    def stop_reading(self) -> None:
        """Take no more requests (server shutdown); what was accepted still gets its answer."""
        self._stopping = True
        self._reading.cancel()

    def overflow(self) -> None:
        """The outbox is full: slow consumer. Runs mid fan-out, so the hub is left later."""
        log.info("%s: slow consumer, closing", self.peer)
        self.close_reason = self.close_reason or "slow_consumer"
        self.outbox.close(self.encode_bye(Bye("slow_consumer", "you read too slowly; reconnect")))
        self._hurry = True
        if self._sending is not None:  # whatever is being sent, and the bye, get LAST_WORDS
            self._sending.deadline = min(self._sending.deadline, trio.current_time() + LAST_WORDS)
        self._reading.cancel()

    def send_bytes(self, data: bytes) -> None:
        """Queue bytes for the peer; a full outbox makes it a slow consumer."""
        if not self.outbox.put(data):
            self.overflow()

    def _log_opened(self) -> None:
        """The connection's first log line, from a plain function, not from `run`: logging
        looks up its caller's frame, and a coroutine's frame object, once made, lives as
        long as the coroutine (about 450 bytes for every idle connection)."""
        log.info("%s: connection opened", self.peer, extra={"event": "open", "door": self.door})

    async def _write_loop(self) -> None:
        """Send whatever the outbox holds, one send_all at a time, each within a deadline."""
        outbox = self.outbox
        # One scope for every send: its deadline is set around each send_all
        # (cheaper than a new scope per send); when it passes, writing stops.
        with trio.CancelScope() as sending:
            self._sending = sending
            try:
                while (item := await outbox.take()) is not None:
                    data, frames = item
                    timeout = LAST_WORDS if self._hurry else self.config.send_timeout
                    sending.deadline = min(sending.deadline, trio.current_time() + timeout)
                    await self.stream.send_all(data)
                    if not self._hurry:
                        sending.deadline = math.inf
                    outbox.sent(frames)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the peer is gone; the reader sees it too
        if sending.cancelled_caught and not self._hurry:
            log.info("%s: a send stalled for %ss, closing", self.peer, self.config.send_timeout)
            self.close_reason = self.close_reason or "send_timeout"
        self.close()

    # ------------------------------------------------------------------ reading

    async def _read_loop(self) -> None:
        """Read until the peer goes; one pass per timeout (a ping, then maybe a bye)."""
        while True:
            # One scope for many receives: moving its deadline is far cheaper than
            # entering a new scope per receive (a scope is entered once, and a
            # timeout cancels it for good, hence a new one per pass).
            with trio.CancelScope() as timer:
                while True:
                    timer.deadline = self._deadline()
                    try:
                        data = await self.stream.receive_some(RECEIVE_SIZE)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        return
                    timer.deadline = math.inf  # handling requests may wait: not idle time
                    if not data:
                        return
                    self._last_heard = trio.current_time()
                    self._pinged = False
                    await self.handle(data)
                    if self._closed:
                        return  # nothing sent after the end may change shared state
            if not self._timed_out():
                return

    def _deadline(self) -> float:
        """When the peer has been silent too long: no login yet, no request, or no pong."""
        if self.member is None:
            return self._handshake_deadline
        idle = self.config.idle_timeout
        if self._pinged:
            return self._last_heard + idle * 1.5
        return self._last_heard + idle

    def _timed_out(self) -> bool:
        """The peer was silent past its deadline: ping it (True), or say bye (False)."""
        if self.member is None:
            self.timeout_message(Bye("timeout", "no hello in time"))
            return False
        if self._pinged:
            self.timeout_message(Bye("timeout", "no answer to ping"))
            return False
        self._pinged = True
        self.send_bytes(self.encode_ping())
        return True

    async def pace(self) -> None:
        """Flood control: wait for a token before the next request (nothing is dropped)."""
        if self.bucket is not None:
            await self.bucket.take()

    def fault(self, error: bytes) -> None:
        """Answer a bad request with `error`; too many in a row close the connection."""
        self.errors += 1
        self.send_bytes(error)
        if self.errors >= MAX_ERRORS:
            self.close(Bye("too_many_errors", f"{MAX_ERRORS} errors in a row"), "gone")


def _direct_writer(stream: trio.abc.Stream) -> Callable[[bytes], int] | None:
    """A non-blocking write to a plain TCP socket, for the outbox's fast path.

    A failed write counts as nothing written: the writer task then meets the
    error in its own send and ends the connection as usual.
    """
    if not isinstance(stream, trio.SocketStream):
        return None  # TLS or memory streams: always through the writer
    fd = stream.socket.fileno()

    def write(data: bytes) -> int:
        try:
            return os.write(fd, data)
        except OSError:  # would block, or the peer is gone
            return 0

    return write
