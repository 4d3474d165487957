"""The client's side of a trio-chat session over asyncio streams, with no UI in it.

`ChatClient` logs in, joins rooms, sends and receives, and keeps the session
alive: when the connection drops it reconnects with jittered backoff, logs in
again, rejoins every room with `since` = the last message id it has seen there
(filling any gap with `history` pages), and sends again every message whose
echo never came, with the same nonce, so each one is stored and shown once.
Framing and validation are `trio_chat.protocol`'s; events go to one listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final, Literal, TypeAlias

from trio_chat import protocol as p
from trio_chat.protocol import markers as mk
from trio_chat.protocol import moderation as md

CLIENT_NAME: Final = "trio-chat-textual/0.1"
READ_SIZE: Final = 65536
RESUME_LIMIT: Final = p.HISTORY_LIMIT  # messages asked for when rejoining after a loss
JOIN_LIMIT: Final = p.DEFAULT_LIMIT  # messages asked for on a first join

BYE_WORDS: Final[dict[str, str]] = {
    "quit": "you left the server",
    "shutdown": "the server is shutting down (it may be restarting)",
    "timeout": "the server timed the connection out (nothing heard from this client)",
    "replaced": "you logged in with this account from somewhere else, so this session ended",
    "slow_consumer": "this client fell too far behind reading, so the server dropped it",
    "too_many_errors": "the server closed the connection after too many bad requests",
    "server_busy": "the server is full right now",
    "banned": "you are banned from this server",
}
ERROR_WORDS: Final[dict[str, str]] = {
    "name_taken": "that name is in use",
    "name_invalid": "names are 1 to 32 letters, digits or _ - .",
    "auth_failed": "wrong or missing password for this account",
    "auth_required": "that needs an account (log in with a password)",
    "room_invalid": "rooms are 1 to 32 letters, digits or _ - .",
    "not_in_room": "you are not in that room",
    "no_such_user": "nobody of that name is online",
    "forbidden": "not allowed (only the room's ops or owner may)",
    "banned": "you are banned",
    "no_such_message": "that message is not there (any more)",
}
FINAL_BYES: Final = frozenset({"quit", "replaced", "banned"})  # no reconnect after these
FINAL_LOGIN_ERRORS: Final = frozenset({"auth_failed", "banned"})  # a reconnect stops on these
CONTEXT_LIMIT: Final = 10  # entries asked for on each side of a search hit


def explain_bye(bye: p.Bye) -> str:
    """A `bye` in words for a person, the server's own message after it."""
    words = BYE_WORDS.get(bye.reason, bye.reason)
    extra = bye.message.strip().rstrip(".")
    if not extra or extra.casefold() in words.casefold():
        return words
    return f"{words}: {extra}"


def explain_error(error: p.Error) -> str:
    """An `error` in words: the server's message, or ours when it gave none."""
    return error.message or ERROR_WORDS.get(error.code, error.code)


# ------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class Connected:
    """Logged in (again, when `resumed`); rooms are being joined."""

    welcome: p.Welcome
    resumed: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection is gone: retried after `retry_in` seconds, or never when None."""

    reason: str
    retry_in: float | None


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """A reconnect attempt (the first is 1) is starting now."""

    attempt: int


@dataclass(frozen=True, slots=True)
class Sent:
    """The echo of our own `say` (matched by its nonce); `new` is false for a repeat.

    A repeat happens when the message was stored before a connection loss and
    came back with the rejoin's history; the pending copy then just goes away.
    """

    nonce: str
    message: p.Message
    new: bool


@dataclass(frozen=True, slots=True)
class SayFailed:
    """The server refused a `say` (not in room, no such user...): it is not retried."""

    nonce: str
    say: p.Say
    error: p.Error


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """The server answered one of our requests (join, history...) with an error."""

    request: Request
    error: p.Error


@dataclass(frozen=True, slots=True)
class ContextPage:
    """A page asked for to show a search hit (`around`) in its context."""

    page: p.HistoryPage
    around: int


@dataclass(frozen=True, slots=True)
class Background:
    """The answer to a request the client made by itself (unread counts after login)."""

    frame: p.RoomList | mk.Directs


@dataclass(frozen=True, slots=True)
class BadFrame:
    """The server sent a frame this client cannot read; it was skipped."""

    error: p.ProtocolError


# Section 10 and 11 frames: parsed by trio_chat.protocol, not (yet) in its ServerFrame union.
ExtraFrame: TypeAlias = mk.Marked | mk.Directs | md.RoomEvent
ServerEvent: TypeAlias = p.ServerFrame | ExtraFrame
Request: TypeAlias = p.ClientFrame | mk.Mark | mk.DirectsRequest | md.ModerationRequest
ClientEvent: TypeAlias = (
    (ServerEvent | Connected | Disconnected | Reconnecting | Sent | SayFailed | RequestFailed)
    | BadFrame
    | ContextPage
    | Background
)
Listener: TypeAlias = Callable[[ClientEvent], None]
ConversationKey: TypeAlias = tuple[Literal["room", "dm"], str]


class ConnectFailed(Exception):
    """The server could not be reached, or closed the connection before `welcome`."""


class LoginRefused(Exception):
    """The server answered `hello` with an error: the user may try another name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Lost(Exception):
    """The connection ended (EOF, reset, or no answer to our ping)."""


@dataclass(slots=True)
class _GapFill:
    """A rejoined room whose `joined` said `more`: older pages are fetched before it is shown."""

    since: int
    joined: p.Joined
    history: list[p.Entry]
    live: list[p.Entry] = field(default_factory=list)


# ------------------------------------------------------------------------ client


def conversation_of(entry: p.Entry, me: str) -> ConversationKey:
    """Which room or direct conversation (keyed by the other person) an entry belongs to."""
    if entry.room is not None:
        return ("room", p.name_key(entry.room))
    author = entry.by if isinstance(entry, p.DeleteEntry | p.TopicEntry) else entry.sender
    other = entry.to if p.name_key(author) == p.name_key(me) else author
    return ("dm", p.name_key(other or ""))


class ChatClient:
    """One user's session with a trio-chat server; see the module docstring.

    Call `login()` until it returns, then run `run()` as a task: it reads frames,
    reconnects after losses and returns after `quit()` or a final `bye`.
    The senders (`say`, `join`...) are plain methods: they write at once when
    connected; `say` and `join` are also remembered and done after a reconnect.
    """

    def __init__(
        self,
        host: str,
        port: int,
        listener: Listener,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backoff_min: float = 1.0,
        backoff_max: float = 30.0,
        idle_ping: float = 45.0,
        ping_timeout: float = 20.0,
        connect_timeout: float = 10.0,
        rng: random.Random | None = None,
        device: str | None = None,
    ) -> None:
        """`device`: this installation's label, sent in every `hello` (section 10)."""
        self.host = host
        self.port = port
        self.listener = listener
        self.ssl_context = ssl_context
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.idle_ping = idle_ping
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.rng = rng or random.Random()
        self.device = device
        self.welcome: p.Welcome | None = None
        self.rooms: dict[str, str] = {}  # key -> spelling, in the order joined
        self.last_id: dict[ConversationKey, int] = {}
        self.pending: dict[str, p.Say] = {}  # nonce -> say, oldest first
        self.connected = False
        self._name: p.Name | None = None
        self._password: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._conn = p.Connection(p.Role.CLIENT)
        self._requests: dict[p.RequestId, Request] = {}
        self._context: dict[p.RequestId, int] = {}  # history request id -> the hit shown
        self._background: set[p.RequestId] = set()
        self._resuming: dict[str, int | None] = {}  # room key -> the since of its rejoin
        self._gaps: dict[str, _GapFill] = {}
        self._next_id = 0
        self._final: str | None = None  # set when no reconnect must follow
        self._bye: p.Bye | None = None  # the last bye of this connection
        self._kick = asyncio.Event()
        self._running = False
        self._stopped = asyncio.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def name(self) -> str:
        """Our name as the server spells it (empty before the first welcome)."""
        return self.welcome.name if self.welcome else ""

    @property
    def features(self) -> frozenset[str]:
        """The additions of sections 9 to 13 the server said it speaks (`welcome.features`)."""
        return frozenset(self.welcome.features) if self.welcome else frozenset()

    # -------------------------------------------------------------- connecting

    async def login(self, name: str, password: str | None = None) -> p.Welcome:
        """Say hello (connecting first if need be); raises LoginRefused or ConnectFailed."""
        try:
            self._name = p.parse_name(name, "name", "name_invalid")
        except p.ChatError as exc:
            raise LoginRefused(exc.code, ERROR_WORDS["name_invalid"]) from None
        self._password = password or None
        if self._writer is not None and not self._writer.is_closing():
            # The connection of a refused try: the server may have closed it since
            # (its handshake timeout), so a failure here means "open a new one".
            try:
                return await self._hello()
            except LoginRefused:
                raise
            except (ConnectFailed, _Lost, OSError, TimeoutError):
                self._close()
        await self._open()
        try:
            return await self._hello()
        except LoginRefused:
            raise
        except (_Lost, OSError) as exc:
            self._close()
            raise ConnectFailed(f"{self.address}: {describe_error(exc)}") from None

    async def _open(self) -> None:
        self._close()
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self.ssl_context,
                    server_hostname=self.host if self.ssl_context else None,
                    limit=READ_SIZE,
                ),
                self.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(
                f"cannot connect to {self.address}: {describe_error(exc)}"
            ) from None
        self._conn = p.Connection(p.Role.CLIENT)
        self._bye = None

    async def _hello(self) -> p.Welcome:
        assert self._name is not None
        # `device` goes in every hello: a server without devices ignores it (section 1).
        hello = p.Hello(self._name, self._password, client=CLIENT_NAME, device=self.device)
        self._write(hello, session=False)
        while True:
            frame = await self._read_frame(self.connect_timeout)
            if isinstance(frame, p.Welcome):
                self.welcome = frame
                return frame
            if isinstance(frame, p.Error):
                raise LoginRefused(frame.code, explain_error(frame))
            if isinstance(frame, p.Ping):
                self._write(p.Pong(), session=False)
            elif isinstance(frame, p.Bye):
                self._close()
                raise ConnectFailed(explain_bye(frame))

    async def run(self) -> None:
        """Serve the session until `quit()` or a final `bye`, reconnecting after losses."""
        if self.welcome is None:
            raise RuntimeError("login() first")
        self._running = True
        self._stopped.clear()
        try:
            resumed = False
            while True:
                self._start_session(resumed)
                reason = "the server closed the connection"
                try:
                    await self._pump()
                except (_Lost, OSError) as exc:
                    reason = describe_error(exc)
                finally:
                    self._close()
                if self._bye is not None:
                    reason = explain_bye(self._bye)
                if self._final is not None:
                    self.listener(Disconnected(self._final, None))
                    return
                if not await self._reconnect(reason):
                    return
                resumed = True
        finally:
            self._running = False
            self._stopped.set()

    async def _reconnect(self, reason: str) -> bool:
        """Try to log in again, with backoff, until it works (True) or must stop (False)."""
        attempt = 0
        while True:
            delay = self.backoff(attempt)
            self.listener(Disconnected(reason, delay))
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), delay)
            if self._final is not None:
                self.listener(Disconnected(self._final, None))
                return False
            attempt += 1
            self.listener(Reconnecting(attempt))
            try:
                await self._open()
                await self._hello()
                return True
            except LoginRefused as exc:
                self._close()
                reason = f"logging in again failed: {exc.message}"
                if exc.code in FINAL_LOGIN_ERRORS:
                    self.listener(Disconnected(reason, None))
                    return False
            except (ConnectFailed, _Lost, OSError) as exc:
                self._close()
                reason = describe_error(exc)

    def backoff(self, attempt: int) -> float:
        """Seconds before reconnect `attempt` (0 first): doubling from min to max, ±20% jitter."""
        base = min(self.backoff_max, self.backoff_min * 2.0 ** min(attempt, 30))
        jittered = base * self.rng.uniform(0.8, 1.2)
        return max(self.backoff_min, min(self.backoff_max, jittered))

    def reconnect_now(self) -> None:
        """Cut a backoff wait short (the user asked to retry)."""
        self._kick.set()

    def _start_session(self, resumed: bool) -> None:
        """After a welcome: (re)join every room, send every pending say, tell the listener."""
        assert self.welcome is not None
        self.connected = True
        self._requests.clear()
        self._context.clear()
        self._background.clear()
        self._gaps.clear()
        self._resuming.clear()
        for key, spelling in self.rooms.items():
            self._send_join(key, spelling, resume=resumed)
        for say in self.pending.values():
            self._write(say)
        if self.welcome.account and "markers" in self.features:  # unread counts (section 10)
            for frame in (p.RoomsRequest(), mk.DirectsRequest()):
                self._background.add(self._next_id + 1)
                self._request(frame)
        self.listener(Connected(self.welcome, resumed))

    def _send_join(self, key: str, spelling: str, *, resume: bool) -> None:
        since = self.last_id.get(("room", key)) if resume else None
        limit = RESUME_LIMIT if since is not None else JOIN_LIMIT
        self._resuming[key] = since
        self._request(p.Join(p.Name(spelling, key), since=since, limit=limit))

    # -------------------------------------------------------------- reading

    async def _read_frame(self, wait: float | None = None) -> ServerEvent:
        """The next frame from the server; unreadable ones are reported and skipped."""
        while True:
            try:
                event: ServerEvent | p.NeedData = self._conn.next_event()
            except p.ProtocolError as exc:
                self.listener(BadFrame(exc))
                continue
            if event is not p.NEED_DATA:
                return event
            if self._reader is None:
                raise _Lost("not connected")
            data = await asyncio.wait_for(self._reader.read(READ_SIZE), wait)
            if not data:
                raise _Lost("the server closed the connection")
            self._conn.receive_data(data)

    async def _pump(self) -> None:
        """Read and dispatch frames until the connection ends; ping a silent server."""
        pinged = False
        while True:
            try:
                frame = await self._read_frame(self.ping_timeout if pinged else self.idle_ping)
            except TimeoutError:
                if pinged:
                    raise _Lost("the server stopped answering") from None
                self._write(p.Ping(), session=False)
                pinged = True
                continue
            pinged = False
            self._dispatch(frame)

    def _dispatch(self, frame: ServerEvent) -> None:
        re = getattr(frame, "re", None)
        if isinstance(frame, p.Message | p.EditEntry | p.DeleteEntry | p.TopicEntry):
            self._on_entry(frame)
        elif isinstance(frame, p.HistoryPage) and re is not None and re in self._context:
            self.listener(ContextPage(frame, self._context.pop(re)))
        elif isinstance(frame, p.RoomList | mk.Directs) and re in self._background:
            self._background.discard(re)
            self.listener(Background(frame))
        elif isinstance(frame, p.Joined):
            self._on_joined(frame)
        elif isinstance(frame, p.HistoryPage) and self._on_gap_page(frame):
            return
        elif isinstance(frame, p.Ping):
            self._write(p.Pong(), session=False)
        elif isinstance(frame, p.Error):
            self._on_error(frame)
        elif isinstance(frame, p.Bye):
            self._bye = frame
            if frame.reason in FINAL_BYES:
                self._final = explain_bye(frame)
            self.listener(frame)
        else:
            if isinstance(frame, p.Left) or (
                isinstance(frame, md.Kicked) and p.name_key(frame.name) == p.name_key(self.name)
            ):  # out of the room: not rejoined after a reconnect
                self.rooms.pop(p.name_key(frame.room), None)
            self.listener(frame)
        if re is not None:
            self._requests.pop(re, None)

    def _on_entry(self, entry: p.Entry) -> None:
        """A live entry (message, edit, deletion, topic): each kind counts for `since`."""
        key = conversation_of(entry, self.name)
        gap = self._gaps.get(key[1]) if key[0] == "room" else None
        if gap is not None:  # shown after the gap's pages, in id order
            gap.live.append(entry)
            return
        new = entry.id > self.last_id.get(key, 0)
        if new:
            self.last_id[key] = entry.id
        if isinstance(entry, p.Message) and isinstance(entry.re, str) and entry.re in self.pending:
            del self.pending[entry.re]
            self.listener(Sent(entry.re, entry, new))
        elif new:
            self.listener(entry)

    def _on_joined(self, joined: p.Joined) -> None:
        key = p.name_key(joined.room)
        self.rooms.setdefault(key, joined.room)
        since = self._resuming.pop(key, None)
        last = self.last_id.get(("room", key), 0)
        history = [e for e in joined.history if e.id > last]
        if since is not None and joined.more and history:
            # More was missed than one answer holds: fetch older pages down to `since`.
            self._gaps[key] = _GapFill(since, joined, history)
            self._request(
                p.HistoryRequest(
                    room=p.Name(joined.room, key), before=history[0].id, limit=RESUME_LIMIT
                )
            )
            return
        self._deliver_joined(joined, history, more=joined.more and since is None)

    def _on_gap_page(self, page: p.HistoryPage) -> bool:
        """Take a page asked for to fill a rejoin's gap; False when it is not one."""
        if page.room is None or page.re not in self._requests:
            return False
        key = p.name_key(page.room)
        gap = self._gaps.get(key)
        if gap is None:
            return False
        self._requests.pop(page.re, None)
        newer = [e for e in page.messages if e.id > gap.since]
        gap.history[:0] = newer
        if page.more and len(newer) == len(page.messages) and newer:
            self._request(
                p.HistoryRequest(
                    room=p.Name(page.room, key), before=newer[0].id, limit=RESUME_LIMIT
                )
            )
            return True
        del self._gaps[key]
        self._deliver_joined(gap.joined, gap.history, more=False)
        for entry in gap.live:
            self._on_entry(entry)
        return True

    def _deliver_joined(self, joined: p.Joined, history: list[p.Entry], *, more: bool) -> None:
        key: ConversationKey = ("room", p.name_key(joined.room))
        if history:
            self.last_id[key] = max(self.last_id.get(key, 0), history[-1].id)
        self.listener(replace(joined, history=tuple(history), more=more))

    def _on_error(self, error: p.Error) -> None:
        if error.re is None:
            self.listener(error)
            return
        if isinstance(error.re, str) and error.re in self.pending:
            say = self.pending.pop(error.re)
            self.listener(SayFailed(error.re, say, error))
            return
        request = self._requests.pop(error.re, None)
        self._context.pop(error.re, None)
        self._background.discard(error.re)
        if request is None:
            self.listener(error)
            return
        if isinstance(request, p.Join):
            self.rooms.pop(request.room.key, None)
            self._resuming.pop(request.room.key, None)
        self.listener(RequestFailed(request, error))

    # -------------------------------------------------------------- writing

    def _write(self, frame: Request, *, session: bool = True) -> bool:
        """Write a frame; a `session` one only once logged in (else False, not sent)."""
        writer = self._writer
        if writer is None or writer.is_closing() or (session and not self.connected):
            return False
        writer.write(p.encode(frame))
        return True

    def _request(self, frame: Request) -> bool:
        """Send a frame with a fresh integer `id`, remembered to match its answer or error."""
        self._next_id += 1
        frame = replace(frame, id=self._next_id)
        self._requests[self._next_id] = frame
        return self._write(frame)

    def say(
        self,
        text: str,
        *,
        room: str | None = None,
        to: str | None = None,
        reply_to: int | None = None,
        action: bool = False,
    ) -> str:
        """Send a message (kept pending until its echo); returns its nonce.

        `reply_to`: the id of the message it answers; `action`: a `/me`.
        Raises ProtocolError when the text or target is invalid, before sending.
        """
        text = p.check_text(text)
        target_room = p.parse_name(room, "room", "room_invalid") if room is not None else None
        target_to = p.parse_name(to, "to", "name_invalid") if to is not None else None
        if (target_room is None) == (target_to is None):
            raise ValueError("say needs exactly one of room and to")
        nonce = str(uuid.uuid4())
        say = p.Say(
            text=text,
            room=target_room,
            to=target_to,
            nonce=nonce,
            id=nonce,
            reply_to=reply_to,
            action=action,
        )
        self.pending[nonce] = say
        self._write(say)
        return nonce

    def edit(self, message: int, text: str) -> bool:
        """Change the text of one of our messages; False when not connected.

        Raises ProtocolError when the text is invalid, before sending.
        """
        return self._request(p.Edit(message, p.check_text(text)))

    def delete(self, message: int) -> bool:
        """Take a message back (ours, or as a room's moderator); False when not connected."""
        return self._request(p.Delete(message))

    def join(self, room: str) -> p.Name:
        """Join a room now, or at the next connection; raises ProtocolError for a bad name."""
        name = p.parse_name(room, "room", "room_invalid")
        spelling = self.rooms.setdefault(name.key, name.spelling)
        self._send_join(name.key, spelling, resume=False)
        return name

    def part(self, room: str) -> bool:
        """Leave a room (and forget it for reconnects); False when not in it."""
        name = p.parse_name(room, "room", "room_invalid")
        if self.rooms.pop(name.key, None) is None:
            return False
        self.last_id.pop(("room", name.key), None)
        for nonce in [n for n, s in self.pending.items() if s.room and s.room.key == name.key]:
            del self.pending[nonce]
        self._request(p.Part(name))
        return True

    def history(
        self, *, room: str | None = None, with_: str | None = None, before: int | None = None
    ) -> bool:
        """Ask for older messages; False when not connected."""
        target_room = p.parse_name(room, "room", "room_invalid") if room is not None else None
        target_with = p.parse_name(with_, "with", "name_invalid") if with_ is not None else None
        return self._request(
            p.HistoryRequest(room=target_room, with_=target_with, before=before, limit=50)
        )

    def search(
        self,
        query: str,
        *,
        room: str | None = None,
        with_: str | None = None,
        from_: str | None = None,
        before: int | None = None,
    ) -> bool:
        """Search messages (section 9), newest first; False when not connected."""
        target_room = p.parse_name(room, "room", "room_invalid") if room is not None else None
        target_with = p.parse_name(with_, "with", "name_invalid") if with_ is not None else None
        author = p.parse_name(from_, "from", "name_invalid") if from_ is not None else None
        return self._request(
            p.Search(query, room=target_room, with_=target_with, from_=author, before=before)
        )

    def context(self, message: p.Message) -> bool:
        """Ask for the entries around a search hit (two pages: up to it, after it)."""
        room = p.parse_name(message.room, "room", "room_invalid") if message.room else None
        other = message.to if p.name_key(message.sender) == p.name_key(self.name) else None
        with_ = None if room else p.parse_name(other or message.sender, "with", "name_invalid")
        pages = (
            p.HistoryRequest(room=room, with_=with_, before=message.id + 1, limit=CONTEXT_LIMIT),
            p.HistoryRequest(room=room, with_=with_, after=message.id, limit=CONTEXT_LIMIT),
        )
        sent = True
        for page in pages:
            self._context[self._next_id + 1] = message.id
            sent = self._request(page) and sent
        return sent

    def mark(self, upto: int, *, room: str | None = None, with_: str | None = None) -> bool:
        """Move the read marker of a conversation (section 10); False when not connected."""
        if room is not None:
            return self._request(mk.Mark(upto, room=p.parse_name(room, "room", "room_invalid")))
        return self._request(mk.Mark(upto, with_=p.parse_name(with_, "with", "name_invalid")))

    def moderate(self, frame: md.ModerationRequest) -> bool:
        """Send a section 11 request (topic, set, kick...); False when not connected."""
        return self._request(frame)

    def who(self, room: str) -> bool:
        """Ask for a room's members; False when not connected."""
        return self._request(p.Who(p.parse_name(room, "room", "room_invalid")))

    def list_rooms(self) -> bool:
        """Ask for the server's rooms; False when not connected."""
        return self._request(p.RoomsRequest())

    async def quit(self, reason: str | None = None, grace: float = 1.0) -> None:
        """Leave the server politely and stop reconnecting."""
        self._final = "you left the server"
        self._kick.set()
        if self._write(p.Quit(reason), session=False) and self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.drain(), grace)
        if self._running:
            # run() reads the server's `bye` and its close, then returns.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), grace)
        self._close()

    def _close(self) -> None:
        self.connected = False
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()


def describe_error(exc: BaseException) -> str:
    """An exception as a short phrase for the status line."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
