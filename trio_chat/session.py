"""One connection: the handshake, the reader loop that answers frames, the writer task.

The reader handles one frame at a time, in order; a `say` is handed to the
store and the reader moves on (the answer comes with the commit's fan-out).
The writer sends whatever the outbox holds in one `send_all`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import trio

from . import __version__
from .accounts import PasswordHasher
from .config import Config
from .flood import TokenBucket
from .hub import Hub, Member, with_re
from .outbox import Outbox
from .protocol import (
    NEED_DATA,
    Bye,
    ClientFrame,
    Connection,
    Frame,
    Hello,
    HistoryPage,
    HistoryRequest,
    Join,
    Joined,
    LeaveReason,
    Left,
    Members,
    Name,
    Part,
    Ping,
    Pong,
    ProtocolError,
    Quit,
    RequestId,
    Role,
    RoomInfo,
    RoomList,
    RoomsRequest,
    Say,
    Welcome,
    Who,
    encode,
)
from .store import Account, Draft, Store, direct_conv, room_conv

log = logging.getLogger(__name__)

RECEIVE_SIZE = 65536
MAX_ERRORS = 20  # errors in a row before bye too_many_errors
MAX_HELLOS = 5  # failed hellos before the connection is closed (password guessing)
LAST_WORDS = 1.0  # seconds a slow consumer's last send and its bye may take
SERVER = f"trio-chat/{__version__}"


@dataclass(frozen=True, slots=True, eq=False)
class Services:
    """What every session shares: the settings, the hub, the store, the password hasher."""

    config: Config
    hub: Hub
    store: Store
    hasher: PasswordHasher


class Session:
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
        "account",
        "bucket",
        "config",
        "conn",
        "errors",
        "hello_tries",
        "hub",
        "leave_reason",
        "member",
        "outbox",
        "peer",
        "services",
        "store",
        "stream",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        peer: str,
        services: Services,
        *,
        handshake_deadline: float | None = None,
    ) -> None:
        self.stream = stream
        self.peer = peer
        self.services = services
        self.config = services.config
        self.hub = services.hub
        self.store = services.store
        self.conn = Connection(Role.SERVER)
        self.outbox = Outbox(self.config.queue_limit, self._direct_writer(stream))
        self.member: Member | None = None
        self.account: Account | None = None
        self.errors = 0  # in a row
        self.hello_tries = 0
        self.leave_reason: LeaveReason | None = "gone"
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
        now = trio.current_time()
        if handshake_deadline is None:
            handshake_deadline = now + self.config.handshake_timeout
        self._handshake_deadline = handshake_deadline  # for the hello (and TLS before it)
        self._last_heard = now
        self._pinged = False

    def _direct_writer(self, stream: trio.abc.Stream) -> Callable[[bytes], int] | None:
        """A non-blocking write to a plain TCP socket, for the outbox's fast path.

        A failed write counts as nothing written: the writer task then meets
        the error in its own send and ends the connection as usual.
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

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Serve until the peer goes or the server closes it; errors stay in this connection."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop)
                with self._reading:
                    await self._read_loop()
                if not self._stopping:
                    self.close()  # else the server closes it once the last commit is out
        finally:
            self.close()
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.stream)

    def close(self, bye: Bye | None = None, leave: LeaveReason | None = None) -> None:
        """End the connection: leave the hub, queue `bye` last, stop reading.

        Safe to call more than once and from other tasks; the first call decides.
        The writer sends what is queued, then the stream closes.
        """
        if self._closed:
            return
        self._closed = True
        if bye is not None:
            self.leave_reason = leave
        if self.member is not None:
            self.hub.disconnect(self.member, self.leave_reason)
        self.outbox.close(None if bye is None else encode(bye))
        self._reading.cancel()

    def stop_reading(self) -> None:
        """Take no more frames (server shutdown); what was accepted still gets its answer."""
        self._stopping = True
        self._reading.cancel()

    def overflow(self) -> None:
        """The outbox is full: slow consumer. Runs mid fan-out, so the hub is left later."""
        log.info("%s: slow consumer, closing", self.peer)
        self.outbox.close(encode(Bye("slow_consumer", "you read too slowly; reconnect")))
        self._hurry = True
        if self._sending is not None:  # whatever is being sent, and the bye, get LAST_WORDS
            self._sending.deadline = min(self._sending.deadline, trio.current_time() + LAST_WORDS)
        self._reading.cancel()

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
                    timer.deadline = math.inf  # handling frames may wait: not idle time
                    if not data:
                        return
                    self._last_heard = trio.current_time()
                    self._pinged = False
                    await self._handle(data)
            if not self._timed_out():
                return

    def _deadline(self) -> float:
        """When the peer has been silent too long: no hello yet, no frame, or no pong."""
        if self.member is None:
            return self._handshake_deadline
        idle = self.config.idle_timeout
        if self._pinged:
            return self._last_heard + idle * 1.5
        return self._last_heard + idle

    def _timed_out(self) -> bool:
        """The peer was silent past its deadline: ping it (True), or say bye (False)."""
        if self.member is None:
            self.close(Bye("timeout", "no hello in time"), "timeout")
            return False
        if self._pinged:
            self.close(Bye("timeout", "no answer to ping"), "timeout")
            return False
        self._pinged = True
        self._send(Ping())
        return True

    async def _handle(self, data: bytes | bytearray) -> None:
        """Answer every complete frame in `data`, in order."""
        conn = self.conn
        conn.receive_data(data)
        while True:
            try:
                frame = conn.next_event()
            except ProtocolError as exc:
                if self.bucket is not None:
                    await self.bucket.take()
                self._fault(exc)
                continue
            if frame is NEED_DATA:
                return
            if self.bucket is not None:
                await self.bucket.take()
            try:
                await self._dispatch(frame)
            except ProtocolError as exc:
                self._fault(exc)
            else:
                self.errors = 0

    def _fault(self, exc: ProtocolError) -> None:
        self.errors += 1
        self._send(exc.frame())
        if self.errors >= MAX_ERRORS:
            self.close(Bye("too_many_errors", f"{MAX_ERRORS} errors in a row"), "gone")

    def _send(self, frame: Frame) -> None:
        self._send_bytes(encode(frame))

    def _send_bytes(self, data: bytes) -> None:
        if not self.outbox.put(data):
            self.overflow()

    # ------------------------------------------------------------------ frames

    async def _dispatch(self, frame: ClientFrame) -> None:
        if isinstance(frame, Ping):
            self._send(Pong(re=frame.id))
        elif isinstance(frame, Pong):
            pass
        elif isinstance(frame, Quit):
            self.close(Bye("quit", "goodbye"), "quit")
        elif self.member is None:
            if not isinstance(frame, Hello):
                raise ProtocolError("handshake_required", "say hello first", frame.id)
            await self._hello(frame)
        elif isinstance(frame, Say):
            await self._say(frame)
        elif isinstance(frame, Join):
            await self._join(frame)
        elif isinstance(frame, Part):
            self._part(frame)
        elif isinstance(frame, HistoryRequest):
            await self._history(frame)
        elif isinstance(frame, Who):
            room, names = self.hub.members(frame.room)
            self._send(Members(room=room, members=tuple(names), re=frame.id))
        elif isinstance(frame, RoomsRequest):
            rooms = tuple(RoomInfo(name, count) for name, count in self.hub.room_list())
            self._send(RoomList(rooms=rooms, re=frame.id))
        else:  # Hello
            raise ProtocolError("bad_state", "already welcomed", frame.id)

    async def _hello(self, hello: Hello) -> None:
        self.hello_tries += 1
        try:
            await self._welcome(hello)
        except ProtocolError as exc:
            if self.hello_tries < MAX_HELLOS:
                raise
            self._send(exc.frame())
            self.close(Bye("too_many_errors", f"{MAX_HELLOS} failed hellos"), "gone")

    async def _welcome(self, hello: Hello) -> None:
        name, rid = hello.name, hello.id
        account = self.store.accounts.get(name.key)
        if account is not None:
            if hello.password is None or not await self.services.hasher.verify(
                hello.password, account.hash
            ):
                raise ProtocolError("auth_failed", "wrong or missing password for this name", rid)
            name = Name(account.name, account.key)
        elif hello.password is not None:
            account = await self._create_account(name, hello.password, rid)
        else:
            self._check_free(name, rid)
        if self.outbox.closed:
            return  # closed (a timeout, say) while the password was checked
        self.account = account
        self.member = Member(name, self.outbox, self, account=account is not None)
        previous = self.hub.claim(self.member)
        if previous is not None:
            previous.owner.close(Bye("replaced", "you logged in from somewhere else"), "replaced")
        log.info("%s: welcome %s%s", self.peer, name.spelling, " (account)" if account else "")
        self._send(Welcome(name=name.spelling, account=account is not None, server=SERVER, re=rid))

    async def _create_account(self, name: Name, password: str, rid: RequestId | None) -> Account:
        hub = self.hub
        self._check_free(name, rid)
        hub.creating.add(name.key)
        try:
            digest = await self.services.hasher.hash(password)
            account = Account(name.key, name.spelling, digest, self.store.last_id + 1)
            if not await self.store.create_account(account):
                raise ProtocolError("auth_failed", "that name has an account", rid)
        finally:
            hub.creating.discard(name.key)
        hub.add_account(name)
        return account

    def _check_free(self, name: Name, rid: RequestId | None) -> None:
        """A name without an account may be taken unless it, or a look-alike, is in use."""
        hub = self.hub
        if hub.online(name) is not None or name.key in hub.creating:
            raise ProtocolError("name_taken", "that name is online", rid)
        if hub.looks_taken(name):
            raise ProtocolError("name_taken", "that name looks like a name in use", rid)

    async def _join(self, join: Join) -> None:
        assert self.member is not None
        room, names, boundary = self.hub.join(self.member, join.room)
        try:
            page = await self.store.page(
                room_conv(room.key), after=join.since or 0, upto=boundary, limit=join.limit
            )
            self._send(
                Joined(
                    room=room.name.spelling,
                    members=tuple(names),
                    history=tuple(page.messages),
                    more=page.more,
                    re=join.id,
                )
            )
        finally:
            self.hub.release(self.member, room)

    def _part(self, part: Part) -> None:
        assert self.member is not None
        room = self.hub.part(self.member, part.room.key)
        if room is None:
            raise ProtocolError("not_in_room", f"you are not in {part.room.spelling}", part.id)
        self._send(Left(room=room.name.spelling, re=part.id))

    async def _say(self, say: Say) -> None:
        member = self.member
        assert member is not None
        if say.room is not None:
            room = member.rooms.get(say.room.key)
            if room is None:
                if await self._resent(say):
                    return
                raise ProtocolError("not_in_room", f"join {say.room.spelling} first", say.id)
            draft = Draft(
                member.name, say.text, room=room.name, nonce=say.nonce, re=say.id, origin=member
            )
        else:
            assert say.to is not None
            recipient = self.hub.online(say.to)
            if recipient is None:
                if await self._resent(say):
                    return
                raise ProtocolError("no_such_user", f"{say.to.spelling} is not online", say.id)
            draft = Draft(
                member.name, say.text, to=recipient.name, nonce=say.nonce, re=say.id, origin=member
            )
        await self.store.submit(draft)

    async def _resent(self, say: Say) -> bool:
        """Answer a `say` sent again after a reconnect with its stored message, if there is one.

        Checked only where the `say` would fail: the room was left or the
        recipient went offline since the first try.
        """
        assert self.member is not None
        if say.nonce is None:
            return False
        earlier = await self.store.find_nonce(self.member.name.key, say.nonce)
        if earlier is None:
            return False
        self._send_bytes(with_re(encode(earlier), say.id))
        return True

    async def _history(self, request: HistoryRequest) -> None:
        member = self.member
        assert member is not None
        upto = self.hub.last_id
        if request.before is not None:
            upto = min(upto, request.before - 1)
        if request.room is not None:
            room = member.rooms.get(request.room.key)
            if room is None:
                raise ProtocolError(
                    "not_in_room", f"join {request.room.spelling} first", request.id
                )
            page = await self.store.page(room_conv(room.key), upto=upto, limit=request.limit)
            self._send(
                HistoryPage(
                    messages=tuple(page.messages),
                    more=page.more,
                    room=room.name.spelling,
                    re=request.id,
                )
            )
            return
        assert request.with_ is not None
        if self.account is None:
            raise ProtocolError(
                "auth_required", "direct-message history needs an account", request.id
            )
        other = self.hub.online(request.with_)
        spelling = other.name.spelling if other else request.with_.spelling
        page = await self.store.page(
            direct_conv(member.name.key, request.with_.key),
            after=self.account.first_id - 1,
            upto=upto,
            limit=request.limit,
        )
        self._send(
            HistoryPage(
                messages=tuple(page.messages), more=page.more, with_=spelling, re=request.id
            )
        )
