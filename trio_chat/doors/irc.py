"""The IRC door (PROTOCOL.md section 12): IRC lines in, calls on the chat core, IRC lines out.

Like the JSON door it holds no chat rule: each command maps to core calls, and
answers (or the `ChatError`) are encoded as numerics, FAIL lines or ERROR.

How the chat shows on IRC:
- A room `lobby` is channel `#lobby`; a name is a nick (the same namespace, whatever the door).
- Every user, whatever its door, shows as `nick!user@<server_name>`, where `user` is the
  nick's ASCII letters and digits (at most 10) or `u` when it has none. The server's own
  prefix is `:<server_name>`.
- CASEMAPPING=rfc8265: names compare by their NFC form case-folded, which is what PRECIS
  (RFC 8265) mapping does for the characters our names allow; `ascii` would be false for
  non-ASCII nicks, `rfc1459` false for `[]\\~`, which names cannot hold anyway.
- CTCP ACTION (/me) is a message with `action` (section 12); it goes back out to IRC
  users as a CTCP ACTION. Other CTCP is not relayed; the door answers CTCP VERSION sent
  to the server itself.
- An edit reaches IRC users as a NOTICE from its author to the conversation that quotes
  it (`edited: new text`); a deletion as REDACT to clients with draft/message-redaction
  (nothing to others); a topic change as TOPIC.
- NOTICE is stored as a message too (people talk with it; dropping it would hide it from
  other doors), relayed as PRIVMSG; as RFC 2812 asks, no error is ever sent for a NOTICE.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

import trio

from .. import __version__
from ..core.chat import Chat, HistoryResult, JoinResult
from ..core.errors import ChatError
from ..core.rules import Name, check_text, name_key, parse_name
from ..hub import Item, Member
from ..irc import numerics as n
from ..irc.codec import (
    IrcMessage,
    IrcParseError,
    LineReader,
    LineTooLong,
    ParseFailure,
    format_message,
    is_command,
    parse_line,
)
from ..irc.text import (
    ACTION_OVERHEAD,
    clean_from_irc,
    ctcp_action,
    parse_ctcp,
    privmsg_budget,
    split_for_irc,
)
from ..protocol import (
    Bye,
    DeleteEntry,
    EditEntry,
    Entry,
    LeaveReason,
    Message,
    Presence,
    RequestId,
    TopicEntry,
)
from ..protocol.markers import Marked
from ..protocol.moderation import RoomEvent
from .base import MAX_ERRORS, DoorSession

# Texts go as trailing (`:text`) always, as clients expect and ergo sends them.
irc_line = functools.partial(format_message, trailing=True)

VERSION: Final = f"trio-chat-{__version__}"
CAPS: Final = (
    "server-time",
    "message-tags",
    "echo-message",
    "labeled-response",
    "batch",
    "sasl",
    "draft/chathistory",
    "draft/message-redaction",
    "draft/read-marker",
)
HISTORY_MAX: Final = 500
TARGMAX: Final = 4
MAX_SASL: Final = 4096  # base64 bytes of one AUTHENTICATE exchange
SASL_CHUNK: Final = 400
NAMES_BUDGET: Final = 400  # bytes of names in one 353 line
QUIT_TEXT: Final = {
    "quit": "Quit",
    "timeout": "Ping timeout",
    "gone": "Connection closed",
    "replaced": "Logged in from elsewhere",
}
BYE_TEXT: Final = {"slow_consumer": "slow consumer", "too_many_errors": "too many errors"}


# --------------------------------------------------------------------------- lines


@dataclass(slots=True)
class _Reply:
    """A direct reply, kept until the command ends when it must carry a label."""

    command: str
    params: tuple[str, ...]
    source: str | None
    tags: dict[str, str] = field(default_factory=dict)
    trailing: bool = True

    def to_bytes(self) -> bytes:
        params = self.params
        last = len(params) - 1 if self.trailing else len(params)
        if any(not _middle_ok(p) for p in params[:last]):
            # a reply that repeats what the client sent (a target, a reference) must
            # still be one valid line: such a parameter is shown in a form that parses
            params = tuple(p if i >= last else _as_middle(p) for i, p in enumerate(params))
        return irc_line(
            self.command,
            *params,
            source=self.source or None,  # "": no source (AUTHENTICATE +)
            tags=self.tags,
            trailing=self.trailing,
        )


def _middle_ok(param: str) -> bool:
    return bool(param) and " " not in param and not param.startswith(":")


def _as_middle(param: str) -> str:
    """A parameter the client sent, made fit to stand in the middle of a reply line."""
    param = param.replace(" ", "_")
    if param.startswith(":"):
        param = "_" + param[1:]
    return param[:64] or "*"


def fit_line(text: str, budget: int = 300) -> str:
    """The first `budget` bytes' worth of a text, at a character boundary (a topic in a
    numeric, whose line must stay within 512 bytes)."""
    pieces = split_for_irc(text.replace("\n", " "), budget)
    return pieces[0] if pieces else ""


def user_of(nick: str) -> str:
    """The ASCII user part shown for a nick: its ASCII letters and digits, or `u`."""
    user = "".join(c for c in nick if c.isascii() and c.isalnum())[:10]
    return user or "u"


def mask(nick: str, server_name: str) -> str:
    return f"{nick}!{user_of(nick)}@{server_name}"


def channel(room: str) -> str:
    return "#" + room


def message_replies(
    message: Entry,
    server_name: str,
    *,
    msgid: bool,
    time: bool,
    extra: Mapping[str, str] | None = None,
    redact: bool = False,
) -> list[_Reply]:
    """An entry as IRC lines. A message: PRIVMSG, one per line of text, long lines split
    within 512 bytes; an edit: NOTICE quoting it; a deletion: REDACT (with `redact`);
    a topic: TOPIC. A deleted message, or an erased edit, shows nothing.

    `msgid` goes on the first line only, `time` on each, `extra` (batch, label) on each.
    """
    if isinstance(message, TopicEntry):
        tags = _tags(extra, message.id if msgid else None, message.ts if time else None)
        return [
            _Reply(
                "TOPIC",
                (channel(message.room), fit_line(message.text)),
                mask(message.by, server_name),
                tags,
            )
        ]
    target = channel(message.room) if message.room is not None else str(message.to)
    if isinstance(message, DeleteEntry):
        if not redact:
            return []
        tags = _tags(extra, message.id if msgid else None, message.ts if time else None)
        source = mask(message.by, server_name)
        return [_Reply("REDACT", (target, str(message.message)), source, tags, trailing=False)]
    if message.deleted:
        return []
    source = mask(message.sender, server_name)
    command = "PRIVMSG" if isinstance(message, Message) else "NOTICE"
    budget = privmsg_budget(source, command, target)
    if isinstance(message, Message) and message.action:
        pieces = [ctcp_action(p) for p in split_for_irc(message.text, budget - ACTION_OVERHEAD)]
    elif isinstance(message, EditEntry):
        pieces = split_for_irc("edited: " + message.text, budget)
    else:
        pieces = split_for_irc(message.text, budget)
    lines = []
    for i, piece in enumerate(pieces):
        tags = _tags(extra, message.id if msgid and i == 0 else None, message.ts if time else None)
        lines.append(_Reply(command, (target, piece), source, tags))
    return lines


def _tags(extra: Mapping[str, str] | None, msgid: int | None, time: str | None) -> dict[str, str]:
    tags: dict[str, str] = dict(extra) if extra else {}
    if msgid is not None:
        tags["msgid"] = str(msgid)
    if time is not None:
        tags["time"] = time
    return tags


def message_lines(
    message: Entry,
    server_name: str,
    *,
    msgid: bool,
    time: bool,
    extra: Mapping[str, str] | None = None,
    redact: bool = False,
) -> list[bytes]:
    """The lines of `message_replies`, encoded."""
    replies = message_replies(
        message, server_name, msgid=msgid, time=time, extra=extra, redact=redact
    )
    return [reply.to_bytes() for reply in replies]


def presence_line(presence: Presence, server_name: str, *, time: bool) -> bytes:
    """JOIN, PART, QUIT or KICK for a presence item."""
    tags = {"time": presence.ts} if time else None
    source = mask(presence.name, server_name)
    room = channel(presence.room)
    if presence.state == "joined":
        return irc_line("JOIN", room, source=source, tags=tags, trailing=False)
    reason = str(presence.reason)
    if reason == "part":
        return irc_line("PART", room, source=source, tags=tags, trailing=False)
    if reason == "kicked":
        return irc_line("KICK", room, presence.name, "kicked", source=server_name, tags=tags)
    text = QUIT_TEXT.get(reason, reason)
    if reason == "quit" and presence.message:
        text = fit_line(f"Quit: {presence.message}")
    return irc_line("QUIT", text, source=source, tags=tags)


def markread_params(marked: Marked, ts: str | None) -> tuple[str, str]:
    """MARKREAD's `<target> timestamp=T`, or `*` when nothing is read (draft/read-marker)."""
    target = channel(marked.room) if marked.room is not None else str(marked.with_)
    return target, "*" if not marked.upto else "timestamp=" + (ts or _EPOCH)


def markread_line(marked: Marked, ts: str | None, server_name: str) -> bytes:
    return irc_line("MARKREAD", *markread_params(marked, ts), source=server_name, trailing=False)


class IrcWire:
    """The hub's `Wire` for IRC members: one shared instance per variant of caps.

    Only the caps that change bytes make a variant: message-tags (msgid), server-time,
    echo-message (the sender's own copy), draft/message-redaction (REDACT) and
    draft/read-marker (MARKREAD from the account's other devices).
    """

    __slots__ = ("echo", "markread", "msgid", "redact", "server_name", "time")

    def __init__(
        self,
        *,
        msgid: bool,
        time: bool,
        echo: bool,
        server_name: str,
        redact: bool = False,
        markread: bool = False,
    ) -> None:
        self.msgid = msgid
        self.time = time
        self.echo = echo
        self.server_name = server_name
        self.redact = redact
        self.markread = markread

    def _lines(self, entry: Entry, extra: Mapping[str, str] | None = None) -> list[bytes]:
        return message_lines(
            entry,
            self.server_name,
            msgid=self.msgid,
            time=self.time,
            extra=extra,
            redact=self.redact,
        )

    def encode(self, item: Item) -> bytes:
        if isinstance(item, Presence):
            return presence_line(item, self.server_name, time=self.time)
        return b"".join(self._lines(item))

    def own(self, message: Entry, re: RequestId | None) -> bytes | None:
        """Without echo-message nothing (or the ACK of a label); with it, the labeled copy.
        A TOPIC is echoed always, as on IRC."""
        if isinstance(message, TopicEntry) and not self.echo:
            return None
        if not self.echo:
            if re is None:
                return b""
            return irc_line("ACK", source=self.server_name, tags={"label": str(re)})
        if re is None:
            return None
        lines = self._lines(message)
        if not lines:
            return irc_line("ACK", source=self.server_name, tags={"label": str(re)})
        first = self._lines(message, {"label": str(re)})[0]
        return b"".join([first, *lines[1:]])

    def marker(self, marked: Marked, ts: str | None) -> bytes:
        """draft/read-marker: MARKREAD for a marker moved on another device (else nothing)."""
        if not self.markread:
            return b""
        return markread_line(marked, ts, self.server_name)


_WIRES: dict[tuple[bool, bool, bool, str, bool, bool], IrcWire] = {}


def wire_for(
    *,
    msgid: bool,
    time: bool,
    echo: bool,
    server_name: str,
    redact: bool = False,
    markread: bool = False,
) -> IrcWire:
    """The shared wire of a variant, so the hub encodes each item once per variant."""
    key = (msgid, time, echo, server_name, redact, markread)
    wire = _WIRES.get(key)
    if wire is None:
        wire = _WIRES[key] = IrcWire(
            msgid=msgid,
            time=time,
            echo=echo,
            server_name=server_name,
            redact=redact,
            markread=markread,
        )
    return wire


_batch_ids = itertools.count(1)


def _batch_ref() -> str:
    return f"b{next(_batch_ids)}"


# --------------------------------------------------------------------------- the session


class IrcSession(DoorSession):
    """One connection speaking IRC."""

    __slots__ = (
        "_authed",
        "_failed",
        "_held",
        "_label",
        "_label_batch",
        "_label_done",
        "_negotiating",
        "_nick",
        "_sasl_buf",
        "_sasl_mech",
        "_user",
        "away",
        "caps",
        "reader",
        "server_name",
    )
    door = "irc"

    def __init__(
        self,
        stream: trio.abc.Stream,
        peer: str,
        chat: Chat,
        *,
        handshake_deadline: float | None = None,
    ) -> None:
        super().__init__(stream, peer, chat, handshake_deadline=handshake_deadline)
        self.reader = LineReader()
        self.server_name: str = self.config.server_name
        self.caps: set[str] = set()
        self.away: str | None = None
        self._negotiating = False
        self._nick: Name | None = None
        self._user: str | None = None
        self._authed: Member | None = None  # logged in by SASL, registration not ended yet
        self._sasl_mech: str | None = None
        self._sasl_buf = b""
        self._label: str | None = None
        self._label_batch: str | None = None
        self._label_done = False
        self._held: list[_Reply] = []
        self._failed = False

    # ------------------------------------------------------------------ DoorSession

    def encode_bye(self, bye: Bye) -> bytes:
        text = BYE_TEXT.get(bye.reason, bye.message)
        if bye.reason == "quit":
            text = f"Quit: {bye.message}"
        return irc_line("ERROR", text)

    def encode_ping(self) -> bytes:
        return irc_line("PING", self.server_name)

    def timeout_message(self, bye: Bye) -> None:
        text = "Registration timed out" if self.member is None else "Ping timeout"
        self.close(Bye("timeout", text), "timeout")

    def close(
        self, bye: Bye | None = None, leave: LeaveReason | None = None, words: str | None = None
    ) -> None:
        """As the base class; a SASL login whose registration had not ended leaves too."""
        if self.member is None and self._authed is not None:
            self.member = self._authed
        super().close(bye, leave, words)

    def room_event(self, event: RoomEvent) -> None:
        """Section 11's events made by others: KICK, INVITE, MODE."""
        irc_rooms.event(self, event)

    def refuse(self, re: RequestId | None, error: ChatError) -> None:
        """A message accepted earlier could not be stored: tell the user (with its label)."""
        tags = {"label": str(re)} if re is not None and "labeled-response" in self.caps else {}
        self.send_bytes(
            irc_line(
                "NOTICE",
                self.nick,
                f"Your message was not stored: {error.message}",
                source=self.server_name,
                tags=tags,
            )
        )

    # ------------------------------------------------------------------ replies

    @property
    def nick(self) -> str:
        if self.member is not None:
            return self.member.name.spelling
        if self._authed is not None:
            return self._authed.name.spelling
        return self._nick.spelling if self._nick is not None else "*"

    def wire(self) -> IrcWire:
        caps = self.caps
        return wire_for(
            msgid="message-tags" in caps,
            time="server-time" in caps,
            echo="echo-message" in caps,
            server_name=self.server_name,
            redact="draft/message-redaction" in caps,
            markread="draft/read-marker" in caps,
        )

    def reply(
        self,
        command: str,
        *params: str,
        source: str | None = None,
        tags: dict[str, str] | None = None,
        trailing: bool = True,
    ) -> None:
        """A direct reply to the current command, from the server unless `source` says."""
        line = _Reply(
            command, params, self.server_name if source is None else source, tags or {}, trailing
        )
        if self._label is None:
            self.send_bytes(line.to_bytes())
        elif self._label_batch is not None:
            line.tags["batch"] = self._label_batch
            self.send_bytes(line.to_bytes())
        else:
            self._held.append(line)

    def numeric(self, code: str, *params: str) -> None:
        self.reply(code, self.nick, *params)

    def error(self, code: str, *params: str) -> None:
        """An error reply: counts toward the errors in a row that close the connection."""
        self._failed = True
        self.errors += 1
        self.reply(code, *params)
        if self.errors >= MAX_ERRORS:
            self.close(Bye("too_many_errors", f"{MAX_ERRORS} errors in a row"), "gone")

    def err(self, code: str, *params: str) -> None:
        self.error(code, self.nick, *params)

    def fail(self, command: str, code: str, *context: str) -> None:
        """An IRCv3 standard reply: FAIL <command> <code> [context...] :description."""
        self.error("FAIL", command, code, *context)

    def flush_label(self) -> None:
        """Send what the labeled command has so far inside its labeled-response batch.

        Needed when later output (live items of a joined room) must come after it.
        """
        if self._label is None or self._label_batch is not None:
            return
        if "batch" not in self.caps:
            for line in self._held:
                self.send_bytes(line.to_bytes())
            self._held.clear()
            self._label = None
            return
        ref = self._label_batch = _batch_ref()
        self.send_bytes(
            irc_line(
                "BATCH",
                "+" + ref,
                "labeled-response",
                source=self.server_name,
                tags={"label": self._label},
                trailing=False,
            )
        )
        for line in self._held:
            line.tags["batch"] = ref
            self.send_bytes(line.to_bytes())
        self._held.clear()

    def _end_label(self) -> None:
        label, self._label = self._label, None
        if label is None:
            return
        batch, self._label_batch = self._label_batch, None
        held, self._held = self._held, []
        if batch is not None:
            self.send_bytes(irc_line("BATCH", "-" + batch, source=self.server_name, trailing=False))
        elif len(held) == 1:
            held[0].tags["label"] = label
            self.send_bytes(held[0].to_bytes())
        elif held:
            self._label = label
            self._held = held
            self.flush_label()
            self._end_label()
        elif not self._label_done:
            self.send_bytes(irc_line("ACK", source=self.server_name, tags={"label": label}))

    # ------------------------------------------------------------------ reading

    async def handle(self, data: bytes | bytearray) -> None:
        reader = self.reader
        reader.feed(data)
        while not self.closed:
            try:
                line = reader.next_line()
            except LineTooLong:
                await self.pace()
                self.err(n.ERR_INPUTTOOLONG, "Input line was too long")
                continue
            if line is None:
                return
            await self.pace()
            try:
                message = parse_line(line)
            except IrcParseError as exc:
                self._bad_line(exc)
                continue
            await self._dispatch(message)

    def _bad_line(self, exc: IrcParseError) -> None:
        reason = exc.reason
        if reason in (ParseFailure.INPUT_TOO_LONG, ParseFailure.TAGS_TOO_LONG):
            self.err(n.ERR_INPUTTOOLONG, "Input line was too long")
        elif reason is ParseFailure.INVALID_UTF8:
            self.fail(exc.command or "*", "INVALID_UTF8", "Message rejected: invalid UTF-8")
        elif reason is ParseFailure.BAD_COMMAND and exc.command:
            command = exc.command if is_command(exc.command) else "*"
            self.err(n.ERR_UNKNOWNCOMMAND, command, "Unknown command")
        else:
            self.fail(exc.command or "*", "INVALID_MESSAGE", f"Bad line: {exc}")

    async def _dispatch(self, message: IrcMessage) -> None:
        entry = _COMMANDS.get(message.command)
        if "labeled-response" in self.caps and (label := message.tags.get("label")):
            self._label = label[:64]
        self._label_done = False
        self._failed = False
        try:
            if entry is None:
                self.err(n.ERR_UNKNOWNCOMMAND, message.command, "Unknown command")
                return
            handler, min_params, registered = entry
            if registered and self.member is None:
                self.err(n.ERR_NOTREGISTERED, "You have not registered")
                return
            if len(message.params) < min_params:
                self.err(n.ERR_NEEDMOREPARAMS, message.command, "Not enough parameters")
                return
            try:
                await handler(self, message)
            except ChatError as exc:
                self.fail(message.command, exc.code.upper(), exc.message)
        finally:
            if not self.closed:
                self._end_label()
            else:
                self._label = None
        if not self._failed:
            self.errors = 0

    # ------------------------------------------------------------------ registration

    async def _cap(self, message: IrcMessage) -> None:
        sub = message.params[0].upper()
        if sub == "LS":
            if self.member is None:
                self._negotiating = True
            v302 = len(message.params) > 1 and message.params[1].isdigit()
            listed = " ".join("sasl=PLAIN" if c == "sasl" and v302 else c for c in CAPS)
            self.reply("CAP", self.nick, "LS", listed)
        elif sub == "LIST":
            self.reply("CAP", self.nick, "LIST", " ".join(sorted(self.caps)))
        elif sub == "REQ":
            if self.member is None:
                self._negotiating = True
            asked = message.params[1].split() if len(message.params) > 1 else []
            wanted = {a.lstrip("-") for a in asked}
            if not asked or not wanted <= set(CAPS):
                self.reply("CAP", self.nick, "NAK", " ".join(asked))
                return
            for cap in asked:
                if cap.startswith("-"):
                    self.caps.discard(cap[1:])
                else:
                    self.caps.add(cap)
            self.reply("CAP", self.nick, "ACK", " ".join(asked))
            for member in (self.member, self._authed):
                if member is not None:
                    member.wire = self.wire()
        elif sub == "END":
            if self.member is None:
                self._negotiating = False
                await self._try_register()
        else:
            self.err(n.ERR_INVALIDCAPCMD, sub, "Invalid CAP command")

    async def _pass(self, message: IrcMessage) -> None:
        pass  # accounts log in with SASL PLAIN

    async def _nick_cmd(self, message: IrcMessage) -> None:
        wanted = message.params[0]
        if self.member is not None or self._authed is not None:
            current = self.nick
            if wanted == current:
                return
            self.err(n.ERR_UNKNOWNERROR, "NICK", "Nick changes are not supported yet")
            return
        try:
            name = parse_name(wanted, "nick", "name_invalid")
        except ChatError as exc:
            self.err(n.ERR_ERRONEUSNICKNAME, wanted or "*", exc.message)
            return
        if self.chat.store.accounts.get(name.key) is None:
            try:
                self.chat.check_free(name)
            except ChatError as exc:
                self.err(n.ERR_NICKNAMEINUSE, wanted, exc.message)
                return
        self._nick = name
        await self._try_register()

    async def _user_cmd(self, message: IrcMessage) -> None:
        if self.member is not None:
            self.err(n.ERR_ALREADYREGISTERED, "You may not reregister")
            return
        self._user = user_of(message.params[0])
        await self._try_register()

    async def _login(self, name: Name, password: str | None) -> Member | None:
        """The core's login for this connection (a guest's NICK, or SASL's account)."""
        return await self.chat.login(
            name,
            password,
            owner=self,
            outbox=self.outbox,
            wire=self.wire(),
            peer=self.peer,
            host=self.host,
        )

    async def _try_register(self) -> None:
        """End registration once NICK and USER came (and CAP END, when CAP was used)."""
        if self.member is not None or self._negotiating or self._user is None:
            return
        member = self._authed
        if member is None:
            name = self._nick
            if name is None:
                return
            try:
                member = await self._login(name, None)
            except ChatError as exc:
                self._nick = None
                if exc.code == "auth_failed":
                    text = "Nickname has an account: log in with SASL PLAIN, or pick another"
                else:
                    text = exc.message
                self.err(n.ERR_NICKNAMEINUSE, name.spelling, text)
                return
            if member is None:
                return
        self._authed = None
        self.member = member
        self._welcome()

    def _welcome(self) -> None:
        me, server = self.nick, self.server_name
        network = server
        self.numeric(n.RPL_WELCOME, f"Welcome to the {network} IRC network, {me}")
        self.numeric(n.RPL_YOURHOST, f"Your host is {server}, running version {VERSION}")
        self.numeric(n.RPL_CREATED, "This server speaks trio-chat and IRC")
        self.reply(n.RPL_MYINFO, me, server, VERSION, "i", "bio", trailing=False)
        tokens = [
            "CASEMAPPING=rfc8265",
            "CHANTYPES=#",
            "NICKLEN=32",
            "CHANNELLEN=33",
            f"TARGMAX=PRIVMSG:{TARGMAX},NOTICE:{TARGMAX},JOIN:,PART:",
            f"CHATHISTORY={HISTORY_MAX}",
            "MSGREFTYPES=msgid,timestamp",
            f"NETWORK={network}",
            "PREFIX=(o)@",
            "CHANMODES=b,,,i",
            "MODES=1",
            "UTF8ONLY",
        ]
        for start in range(0, len(tokens), 12):
            self.numeric(
                n.RPL_ISUPPORT, *tokens[start : start + 12], "are supported by this server"
            )
        self._lusers()
        self._motd()

    async def _authenticate(self, message: IrcMessage) -> None:
        arg = message.params[0]
        if self.member is not None or self._authed is not None:
            self.err(n.ERR_SASLALREADY, "You have already authenticated")
            return
        if arg == "*":
            self._sasl_mech, self._sasl_buf = None, b""
            self.err(n.ERR_SASLABORTED, "SASL authentication aborted")
            return
        if self._sasl_mech is None:
            if arg.upper() != "PLAIN":
                self.numeric(n.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
                self.err(n.ERR_SASLFAIL, "SASL authentication failed")
                return
            self._sasl_mech = "PLAIN"
            self.reply("AUTHENTICATE", "+", source="", trailing=False)
            return
        if arg != "+":
            self._sasl_buf += arg.encode()
            if len(self._sasl_buf) > MAX_SASL:
                self._sasl_mech, self._sasl_buf = None, b""
                self.err(n.ERR_SASLTOOLONG, "SASL message too long")
                return
            if len(arg) == SASL_CHUNK:
                return  # more to come
        data, self._sasl_mech, self._sasl_buf = self._sasl_buf, None, b""
        await self._sasl_plain(data)

    async def _sasl_plain(self, data: bytes) -> None:
        """Check `authzid\\0authcid\\0password` and log the account in (answered 900/903)."""
        try:
            authzid, authcid, password = base64.b64decode(data, validate=True).decode().split("\0")
            name = parse_name(authcid, "account", "name_invalid")
        except (ValueError, binascii.Error, ChatError):
            self.err(n.ERR_SASLFAIL, "SASL authentication failed")
            return
        if (authzid and authzid != authcid) or self.chat.store.accounts.get(name.key) is None:
            self.err(n.ERR_SASLFAIL, "SASL authentication failed")
            return
        try:
            member = await self._login(name, password)
        except ChatError:
            self.err(n.ERR_SASLFAIL, "SASL authentication failed")
            return
        if member is None:
            return
        self._authed = member
        me = member.name.spelling
        self.numeric(
            n.RPL_LOGGEDIN, mask(me, self.server_name), me, f"You are now logged in as {me}"
        )
        self.numeric(n.RPL_SASLSUCCESS, "SASL authentication successful")

    # ------------------------------------------------------------------ simple commands

    async def _ping(self, message: IrcMessage) -> None:
        self.reply("PONG", self.server_name, message.params[0])

    async def _pong(self, message: IrcMessage) -> None:
        pass

    async def _quit(self, message: IrcMessage) -> None:
        reason = message.params[0] if message.params else "Client quit"
        words = clean_from_irc(message.params[0])[:400] if message.params else None
        self.close(Bye("quit", reason), "quit", words or None)

    async def _lusers_cmd(self, message: IrcMessage) -> None:
        self._lusers()

    def _lusers(self) -> None:
        users, rooms = len(self.hub.users), len(self.hub.rooms)
        self.numeric(n.RPL_LUSERCLIENT, f"There are {users} users and 0 invisible on 1 servers")
        self.numeric(n.RPL_LUSERCHANNELS, str(rooms), "channels formed")
        self.numeric(n.RPL_LUSERME, f"I have {users} clients and 0 servers")

    async def _motd_cmd(self, message: IrcMessage) -> None:
        self._motd()

    def _motd(self) -> None:
        self.numeric(n.RPL_MOTDSTART, f"- {self.server_name} Message of the day -")
        self.numeric(n.RPL_MOTD, "- Rooms are channels; everyone else may use another door.")
        self.numeric(n.RPL_ENDOFMOTD, "End of /MOTD command")

    async def _away(self, message: IrcMessage) -> None:
        self.away = message.params[0] if message.params and message.params[0] else None
        if self.away is None:
            self.numeric(n.RPL_UNAWAY, "You are no longer marked as being away")
        else:
            self.numeric(n.RPL_NOWAWAY, "You have been marked as being away")

    # ------------------------------------------------------------------ rooms

    def _room(self, target: str) -> Name | None:
        """The room of a channel name, or None after answering 403/479."""
        if not target.startswith("#"):
            self.err(n.ERR_NOSUCHCHANNEL, target, "No such channel")
            return None
        try:
            return parse_name(target[1:], "room", "room_invalid")
        except ChatError as exc:
            self.err("479", target, exc.message)
            return None

    async def _join(self, message: IrcMessage) -> None:
        assert self.member is not None
        if message.params[0] == "0":
            for joined in list(self.member.rooms.values()):
                self._part_room(joined.name, "Left all channels")
            return
        for target in message.params[0].split(","):
            room = self._room(target)
            if room is None or room.key in self.member.rooms:
                continue  # as on IRC, joining a channel one is in does nothing
            try:
                await self._join_room(room)
            except ChatError as exc:
                if not irc_rooms.join_refused(self, target, exc):  # 473, 474
                    raise

    async def _join_room(self, room: Name) -> None:
        member = self.member
        assert member is not None
        replay = self.config.irc_replay
        wants_replay = replay > 0 and "draft/chathistory" not in self.caps

        def answer(result: JoinResult) -> None:
            chan = channel(result.room)
            self.reply("JOIN", chan, source=mask(self.nick, self.server_name), trailing=False)
            if "draft/read-marker" in self.caps:  # before the names' end, as the spec asks
                marked = Marked(result.read or 0, room=result.room)
                self.reply("MARKREAD", *markread_params(marked, result.read_ts), trailing=False)
            irc_rooms.show_topic(self, result)  # 332, 333
            self._names(chan, result.members)
            if wants_replay and result.history:
                self._send_messages(result.history, "chathistory", chan)
            self.flush_label()  # live items for the room follow right after this

        await self.chat.join(member, room, since=None, limit=max(1, replay), answer=answer)

    def _send_messages(self, messages: Iterable[Entry], batch_type: str, target: str) -> None:
        """Messages as PRIVMSG lines (with their tags), in a batch when the client has batch."""
        caps = self.caps
        ref = _batch_ref() if "batch" in caps else None
        lines: list[_Reply] = []
        if ref is not None:
            lines.append(_Reply("BATCH", ("+" + ref, batch_type, target), self.server_name))
            lines[0].trailing = False
        extra = {"batch": ref} if ref is not None else None
        for message in messages:
            lines += message_replies(
                message,
                self.server_name,
                msgid="message-tags" in caps,
                time="server-time" in caps,
                extra=extra,
            )
        if ref is not None:
            lines.append(_Reply("BATCH", ("-" + ref,), self.server_name, trailing=False))
        for line in lines:
            self.reply(
                line.command,
                *line.params,
                source=line.source,
                tags=line.tags,
                trailing=line.trailing,
            )

    def _names(self, chan: str, names: Iterable[str]) -> None:
        ops = self.chat.moderation.operators(name_key(chan[1:]))  # owner and ops show as @
        names = ["@" + name if name_key(name) in ops else name for name in names]
        chunk: list[str] = []
        size = 0
        for name in names:
            if chunk and size + len(name.encode()) + 1 > NAMES_BUDGET:
                self.numeric(n.RPL_NAMREPLY, "=", chan, " ".join(chunk))
                chunk, size = [], 0
            chunk.append(name)
            size += len(name.encode()) + 1
        if chunk:
            self.numeric(n.RPL_NAMREPLY, "=", chan, " ".join(chunk))
        self.numeric(n.RPL_ENDOFNAMES, chan, "End of /NAMES list")

    async def _part(self, message: IrcMessage) -> None:
        reason = message.params[1] if len(message.params) > 1 else ""
        for target in message.params[0].split(","):
            room = self._room(target)
            if room is not None:
                self._part_room(room, reason)

    def _part_room(self, room: Name, reason: str) -> None:
        assert self.member is not None
        try:
            spelling = self.chat.part(self.member, room)
        except ChatError as exc:
            self.err(n.ERR_NOTONCHANNEL, channel(room.spelling), exc.message)
            return
        params = (channel(spelling), reason) if reason else (channel(spelling),)
        self.reply("PART", *params, source=mask(self.nick, self.server_name), trailing=bool(reason))

    async def _names_cmd(self, message: IrcMessage) -> None:
        if not message.params:
            self.numeric(n.RPL_ENDOFNAMES, "*", "End of /NAMES list")
            return
        for target in message.params[0].split(","):
            room = self._room(target)
            if room is not None:
                spelling, names = self.chat.who(room, self.member)
                self._names(channel(spelling), names)

    async def _who(self, message: IrcMessage) -> None:
        target = message.params[0]
        if target.startswith("#"):
            room = self._room(target)
            if room is None:
                return
            spelling, names = self.chat.who(room, self.member)
            chan = channel(spelling)
            for name in names:
                self._who_line(chan, name)
        else:
            other = self._online(target)
            if other is not None:
                self._who_line("*", other.name.spelling)
        self.numeric(n.RPL_ENDOFWHO, target, "End of WHO list")

    def _who_line(self, chan: str, name: str) -> None:
        server = self.server_name
        op = chan != "*" and name_key(name) in self.chat.moderation.operators(name_key(chan[1:]))
        flags = "H@" if op else "H"
        self.numeric(n.RPL_WHOREPLY, chan, user_of(name), server, server, name, flags, f"0 {name}")

    async def _list(self, message: IrcMessage) -> None:
        listing, _ = self.chat.rooms(member=self.member)  # no private room it may not join
        self.numeric(n.RPL_LISTSTART, "Channel", "Users  Name")
        for name, count in listing:
            topic = self.chat.moderation.view(name_key(name)).topic
            self.numeric(n.RPL_LIST, channel(name), str(count), fit_line(topic))
        self.numeric(n.RPL_LISTEND, "End of /LIST")

    async def _whois(self, message: IrcMessage) -> None:
        target = message.params[-1]
        other = self._online(target)
        if other is None:
            self.err(n.ERR_NOSUCHNICK, target, "No such nick")
        else:
            name = other.name.spelling
            self.numeric("311", name, user_of(name), self.server_name, "*", name)
            if isinstance(other.owner, IrcSession) and other.owner.away is not None:
                self.numeric(n.RPL_AWAY, name, other.owner.away)
        self.numeric("318", target, "End of /WHOIS list")

    async def _ison(self, message: IrcMessage) -> None:
        wanted = " ".join(message.params).split()
        online = [m.name.spelling for nick in wanted if (m := self._online(nick)) is not None]
        self.numeric("303", " ".join(online))

    async def _userhost(self, message: IrcMessage) -> None:
        found = []
        for nick in message.params[:5]:
            other = self._online(nick)
            if other is not None:
                name = other.name.spelling
                found.append(f"{name}=+{user_of(name)}@{self.server_name}")
        self.numeric("302", " ".join(found))

    def _online(self, nick: str) -> Member | None:
        try:
            return self.hub.online(parse_name(nick, "nick", "name_invalid"))
        except ChatError:
            return None

    async def _ignore(self, message: IrcMessage) -> None:
        """TAGMSG (typing notifications and the like): not relayed, and not an error."""

    # ------------------------------------------------------------------ messages

    async def _privmsg(self, message: IrcMessage) -> None:
        await self._send_text(message, notice=False)

    async def _notice(self, message: IrcMessage) -> None:
        await self._send_text(message, notice=True)

    async def _send_text(self, message: IrcMessage, *, notice: bool) -> None:
        """PRIVMSG or NOTICE: each target gets the text through the core (no errors for NOTICE)."""
        member = self.member
        assert member is not None
        if len(message.params) < 2 or not message.params[1]:
            if not notice:
                self.err(n.ERR_NOTEXTTOSEND, "No text to send")
            return
        targets = [t for t in message.params[0].split(",") if t]
        if not targets:
            if not notice:
                self.err(n.ERR_NORECIPIENT, f"No recipient given ({message.command})")
            return
        if len(targets) > TARGMAX:
            if not notice:
                # the first target past the limit, not the whole list: the reply fits a line
                self.err(n.ERR_TOOMANYTARGETS, targets[TARGMAX], "Too many targets")
            return
        raw = message.params[1]
        ctcp = parse_ctcp(raw)
        if ctcp is not None:
            kind, argument = ctcp
            if kind != "ACTION":
                if kind == "VERSION" and not notice and self.server_name in targets:
                    self.reply("NOTICE", self.nick, f"\x01VERSION {VERSION}\x01")
                return  # other CTCP is not relayed
            raw = argument
        action = ctcp is not None
        text = clean_from_irc(raw)
        if not text.strip():
            if not notice:
                self.err(n.ERR_NOTEXTTOSEND, "No text to send")
            return
        try:
            check_text(text)
        except ChatError as exc:
            if not notice:
                self.fail(message.command, "INVALID_TEXT", exc.message)
            return
        for target in targets:
            await self._say_to(target, text, notice=notice, action=action)

    async def _say_to(self, target: str, text: str, *, notice: bool, action: bool) -> None:
        member = self.member
        assert member is not None
        re = self._label if not self._label_done else None
        try:
            if target.startswith("#"):
                room = parse_name(target[1:], "room", "room_invalid")
                await self.chat.say(member, text, room=room, re=re, action=action)
            else:
                name = parse_name(target, "nick", "name_invalid")
                await self.chat.say(member, text, to=name, re=re, action=action)
                other = self.hub.online(name)
                away = other.owner.away if other and isinstance(other.owner, IrcSession) else None
                if not notice and other is not None and away is not None:
                    self.numeric(n.RPL_AWAY, other.name.spelling, away)
        except ChatError as exc:
            if notice:
                return
            if exc.code == "not_in_room":
                self.err(n.ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel (join it first)")
            elif exc.code in ("no_such_user", "name_invalid"):
                self.err(n.ERR_NOSUCHNICK, target, "No such nick")
            elif exc.code == "room_invalid":
                self.err(n.ERR_NOSUCHCHANNEL, target, "No such channel")
            else:
                self.fail("PRIVMSG", exc.code.upper(), exc.message)
            return
        if re is not None:
            self._label_done = True  # the answer (echo or ACK) comes with the commit

    # ------------------------------------------------------------------ CHATHISTORY

    async def _redact(self, message: IrcMessage) -> None:
        """draft/message-redaction: REDACT <target> <msgid> is the core's delete."""
        member = self.member
        assert member is not None
        target, msgid = message.params[0], message.params[1]
        if not _decimal(msgid) or not 0 < int(msgid) <= MAX_ID:
            self.fail("REDACT", "UNKNOWN_MSGID", target, msgid, "No such message")
            return
        re = self._label if not self._label_done else None
        try:
            await self.chat.delete(member, int(msgid), re=re)
        except ChatError as exc:
            if exc.code == "forbidden":
                self.fail("REDACT", "REDACT_FORBIDDEN", target, msgid, exc.message)
            else:
                self.fail("REDACT", "UNKNOWN_MSGID", target, msgid, exc.message)

    async def _markread(self, message: IrcMessage) -> None:
        """draft/read-marker: `MARKREAD <target>` gets section 10's read marker, and with
        `timestamp=T` moves it forward to the last entry at or before T."""
        member = self.member
        assert member is not None
        target = message.params[0]
        room: Name | None = None
        other: Name | None = None
        try:
            if target.startswith("#"):
                room = parse_name(target[1:], "room", "room_invalid")
            else:
                other = parse_name(target, "nick", "name_invalid")
        except ChatError:
            self.fail("MARKREAD", "INVALID_PARAMS", target, "Invalid target")
            return
        stamp = message.params[1] if len(message.params) > 1 else None
        if stamp is not None:
            kind, _, value = stamp.partition("=")
            if kind != "timestamp" or not _TIMESTAMP.fullmatch(value):
                self.fail("MARKREAD", "INVALID_PARAMS", stamp, "Invalid timestamp")
                return
        try:
            upto = 0
            if stamp is not None:  # the newest entry at T or before it
                after = await self.chat.first_id_at(_millis(stamp[10:]), inclusive=False)
                upto = min(after - 1, self.hub.last_id)
            if upto > 0:
                marked, ts = await self.chat.mark(member, upto, room=room, with_=other)
            else:
                marked, ts = await self.chat.read_marker(member, room=room, with_=other)
        except ChatError as exc:
            code = _MARKREAD_FAILS.get(exc.code, "INVALID_PARAMS")
            self.fail("MARKREAD", code, target, exc.message)
            return
        self.reply("MARKREAD", *markread_params(marked, ts), trailing=False)

    async def _chathistory(self, message: IrcMessage) -> None:
        """draft/chathistory: LATEST, BEFORE, AFTER, AROUND, BETWEEN and TARGETS, with
        `msgid=` and `timestamp=` references, mapped onto the core's history pages."""
        member = self.member
        assert member is not None
        sub = message.params[0].upper()
        args = message.params[1:]
        shape = _CHATHISTORY_ARGS.get(sub)
        if shape is None:
            self.fail("CHATHISTORY", "INVALID_PARAMS", sub, "Unknown subcommand")
            return
        if len(args) < shape:
            self.numeric(n.ERR_NEEDMOREPARAMS, "CHATHISTORY", "Not enough parameters")
            return
        try:
            limit = min(int(args[shape - 1]), HISTORY_MAX)
        except ValueError:
            limit = 0
        if limit < 1:
            self.fail("CHATHISTORY", "INVALID_PARAMS", args[shape - 1], "Bad limit")
            return
        try:
            if sub == "TARGETS":
                await self._history_targets(args[0], args[1], limit)
                return
            target = args[0]
            refs = [await self._reference(ref, sub) for ref in args[1 : shape - 1]]
            await self._history_page(member, sub, target, refs, limit)
        except _BadReference as exc:
            self.fail("CHATHISTORY", "INVALID_PARAMS", exc.ref, "Bad message reference")
        except ChatError as exc:
            if exc.code == "unavailable":
                self.fail("CHATHISTORY", "MESSAGE_ERROR", sub, exc.message)
            else:
                self.fail("CHATHISTORY", "INVALID_TARGET", sub, args[0], exc.message)

    async def _reference(self, ref: str, sub: str) -> tuple[int, int] | None:
        """A reference as (ids before it end at, ids after it start after); None for `*`.

        `msgid=N` is the entry N itself; `timestamp=T` falls between entries.
        """
        kind, _, value = ref.partition("=")
        if ref == "*" and sub == "LATEST":
            return None
        if kind == "msgid" and _decimal(value) and 0 < int(value) <= MAX_ID:
            return int(value), int(value)
        if kind == "timestamp" and _TIMESTAMP.fullmatch(value):
            first_at = await self.chat.first_id_at(value)  # the first at T or later
            return first_at, first_at - 1
        raise _BadReference(ref)

    async def _history_page(
        self, member: Member, sub: str, target: str, refs: list[tuple[int, int] | None], limit: int
    ) -> None:
        room: Name | None = None
        other: Name | None = None
        if target.startswith("#"):
            room = parse_name(target[1:], "room", "room_invalid")
        else:
            other = parse_name(target, "nick", "name_invalid")

        async def page(
            before: int | None, after: int | None, count: int, newest: bool
        ) -> HistoryResult:
            return await self.chat.history(
                member,
                room=room,
                with_=other,
                before=before,
                after=after,
                limit=count,
                newest=newest,
            )

        ref = refs[0] if refs else None
        messages: list[Entry] = []
        if sub == "LATEST":
            result = await page(None, None if ref is None else ref[1], limit, True)
            messages = list(result.messages)
        elif sub == "BEFORE":
            assert ref is not None
            result = await page(ref[0], None, limit, True)
            messages = list(result.messages)
        elif sub == "AFTER":
            assert ref is not None
            result = await page(None, ref[1], limit, False)
            messages = list(result.messages)
        elif sub == "AROUND":
            assert ref is not None
            older = await page(ref[0], None, limit // 2, True)
            result = await page(None, ref[0] - 1, limit - len(older.messages), False)
            messages = list(older.messages) + list(result.messages)
        else:  # BETWEEN: from the first reference towards the second
            start, end = refs
            assert start is not None and end is not None
            if start[0] <= end[0]:
                result = await page(end[0], start[1], limit, False)
            else:
                result = await page(start[0], end[1], limit, True)
            messages = list(result.messages)
        shown = channel(str(result.room)) if room is not None else str(result.with_)
        self._send_messages(messages, "chathistory", shown)

    async def _history_targets(self, first: str, second: str, limit: int) -> None:
        """TARGETS: the conversations with messages between two timestamps, most recent first."""
        member = self.member
        assert member is not None
        bounds = []
        for ref in (first, second):
            kind, _, value = ref.partition("=")
            if kind != "timestamp" or not _TIMESTAMP.fullmatch(value):
                raise _BadReference(ref)
            bounds.append(await self.chat.first_id_at(value))
        low, high = sorted(bounds)
        found = await self.chat.conversations(member, after=low - 1, before=high, limit=limit)
        ref_tag = _batch_ref() if "batch" in self.caps else None
        if ref_tag is not None:
            self.reply("BATCH", "+" + ref_tag, "draft/chathistory-targets", trailing=False)
        tags = {"batch": ref_tag} if ref_tag is not None else None
        for room, other, _last, ts in found:
            name = channel(room) if room is not None else str(other)
            self.reply(
                "CHATHISTORY",
                "TARGETS",
                name,
                "timestamp=" + ts,
                source=self.server_name,
                tags=tags,
                trailing=False,
            )
        if ref_tag is not None:
            self.reply("BATCH", "-" + ref_tag, trailing=False)


def _decimal(text: str) -> bool:
    """ASCII digits only (`str.isdigit` also takes `²`, which `int` refuses)."""
    return text.isascii() and text.isdigit()


class _BadReference(Exception):
    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref


# parameters after the subcommand, the limit last
_CHATHISTORY_ARGS: Final = {
    "LATEST": 3,
    "BEFORE": 3,
    "AFTER": 3,
    "AROUND": 3,
    "BETWEEN": 4,
    "TARGETS": 3,
}
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z")
MAX_ID: Final = 2**53
_EPOCH: Final = "1970-01-01T00:00:00.000Z"  # a marker whose entries are gone (pruned)
_MARKREAD_FAILS: Final = {"auth_required": "ACCOUNT_REQUIRED", "unavailable": "INTERNAL_ERROR"}


def _millis(ts: str) -> str:
    """A server-time stamp with exactly three digits of milliseconds, as the store keeps them."""
    whole, _, fraction = ts[:-1].partition(".")
    return f"{whole}.{fraction.ljust(3, '0')}Z"


from . import irc_rooms  # noqa: E402  (it uses the helpers above)

_Handler = Callable[[IrcSession, IrcMessage], Awaitable[None]]

# command -> (handler, parameters it needs, whether registration must have ended)
_COMMANDS: dict[str, tuple[_Handler, int, bool]] = {
    "CAP": (IrcSession._cap, 1, False),
    "PASS": (IrcSession._pass, 0, False),
    "NICK": (IrcSession._nick_cmd, 1, False),
    "USER": (IrcSession._user_cmd, 4, False),
    "AUTHENTICATE": (IrcSession._authenticate, 1, False),
    "PING": (IrcSession._ping, 1, False),
    "PONG": (IrcSession._pong, 0, False),
    "QUIT": (IrcSession._quit, 0, False),
    "JOIN": (IrcSession._join, 1, True),
    "PART": (IrcSession._part, 1, True),
    "PRIVMSG": (IrcSession._privmsg, 1, True),
    "NOTICE": (IrcSession._notice, 1, True),
    "NAMES": (IrcSession._names_cmd, 0, True),
    "WHO": (IrcSession._who, 1, True),
    "TOPIC": irc_rooms.COMMANDS["TOPIC"],
    "LIST": (IrcSession._list, 0, True),
    "KICK": irc_rooms.COMMANDS["KICK"],
    "INVITE": irc_rooms.COMMANDS["INVITE"],
    "MODE": irc_rooms.COMMANDS["MODE"],
    "AWAY": (IrcSession._away, 0, True),
    "MOTD": (IrcSession._motd_cmd, 0, True),
    "LUSERS": (IrcSession._lusers_cmd, 0, True),
    "CHATHISTORY": (IrcSession._chathistory, 3, True),
    "WHOIS": (IrcSession._whois, 1, True),
    "ISON": (IrcSession._ison, 1, True),
    "USERHOST": (IrcSession._userhost, 1, True),
    "TAGMSG": (IrcSession._ignore, 1, True),
    "REDACT": (IrcSession._redact, 2, True),
    "MARKREAD": (IrcSession._markread, 1, True),
}
