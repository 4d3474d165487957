"""The IRC door (PROTOCOL.md section 12) over memory streams: commands in, numerics out.

A real Store on a tmp file, a Hub and a Chat, as tests/harness.py wires the JSON door;
several IrcSessions may share them. Timeout tests use the autojump clock and do no
store I/O (a worker thread would let the clock jump past it); the others run on the
real clock, each wait bounded.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
import trio
import trio.testing

from trio_chat.accounts import PasswordHasher
from trio_chat.config import Config
from trio_chat.core.chat import Chat
from trio_chat.doors.base import MAX_ERRORS
from trio_chat.doors.irc import IrcSession, IrcWire, wire_for
from trio_chat.hub import Hub
from trio_chat.protocol import (
    Bye,
    DeleteEntry,
    EditEntry,
    LeaveReason,
    Message,
    Presence,
    TopicEntry,
)
from trio_chat.store import Store

pytestmark = pytest.mark.trio

TIMEOUT = 5.0
FOREVER = 10_000.0  # a virtual-time bound


class IrcClosed(Exception):
    """The server closed the connection."""


class IrcClient:
    """A bare IRC client over a trio stream: send lines, read lines, wait for a pattern."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = b""
        self.seen: list[str] = []

    @classmethod
    async def connect(cls, port: int) -> IrcClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send(self, line: str) -> None:
        await self.send_raw(line.encode() + b"\r\n")

    async def recv(self, timeout: float = TIMEOUT) -> str:
        with trio.fail_after(timeout):
            while b"\n" not in self.buf:
                try:
                    chunk = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    raise IrcClosed("reset") from None
                if not chunk:
                    raise IrcClosed("closed")
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        assert raw.endswith(b"\r"), raw
        line = raw[:-1].decode()
        self.seen.append(line)
        return line

    async def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """Skip lines until one matches `pattern`; that line."""
        with trio.fail_after(timeout):
            while True:
                line = await self.recv(timeout)
                if re.search(pattern, line):
                    return line

    async def until(self, pattern: str, timeout: float = TIMEOUT) -> list[str]:
        """Every line up to and including the first that matches `pattern`."""
        lines: list[str] = []
        with trio.fail_after(timeout):
            while True:
                lines.append(await self.recv(timeout))
                if re.search(pattern, lines[-1]):
                    return lines

    async def closed(self, timeout: float = TIMEOUT) -> bool:
        try:
            while True:
                await self.recv(timeout)
        except IrcClosed:
            return True

    async def register(self, nick: str, *caps: str) -> list[str]:
        """NICK and USER (with CAP REQ and END when `caps`); the lines up to the end of MOTD."""
        if caps:
            await self.send("CAP LS 302")
            await self.expect(r" CAP \* LS ")
            await self.send("CAP REQ :" + " ".join(caps))
            await self.expect(r" CAP \* ACK ")
        await self.send(f"NICK {nick}")
        await self.send(f"USER {nick} 0 * :{nick}")
        if caps:
            await self.send("CAP END")
        return await self.until(r" (376|422) ")

    async def join(self, chan: str) -> list[str]:
        await self.send(f"JOIN {chan}")
        return await self.until(rf"(?i) 366 \S+ {re.escape(chan)} ")


@dataclass
class Door:
    """A store, hub and chat, and a way to open IRC sessions on them."""

    chat: Chat
    hub: Hub
    nursery: trio.Nursery
    sessions: list[IrcSession] = dataclasses.field(default_factory=list)

    def open(self, *, lockstep: bool = False) -> IrcClient:
        pair = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
        client_side, server_side = pair()
        session = IrcSession(server_side, f"10.0.0.{len(self.sessions) + 1}:5000", self.chat)
        self.sessions.append(session)
        self.nursery.start_soon(session.run)
        return IrcClient(client_side)


@asynccontextmanager
async def open_door(config: Config, **overrides: Any) -> AsyncIterator[Door]:
    config = dataclasses.replace(config, **overrides)
    store = Store.open(config.db, max_batch=config.max_batch)
    try:
        hub = Hub(known_rooms=store.rooms, last_id=store.last_id, max_batch=config.max_batch)
        chat = Chat(config, hub, store, PasswordHasher(n=2**10))
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run, hub.publish, hub.fail)
            await nursery.start(hub.run)
            yield Door(chat, hub, nursery)
            nursery.cancel_scope.cancel()
    finally:
        store.close()


# ------------------------------------------------------------------ the wire, alone


def message(text: str, **fields: Any) -> Message:
    base: dict[str, Any] = {
        "id": 7,
        "sender": "Souvik",
        "text": text,
        "ts": "2026-11-24T22:00:00.123Z",
        "room": "lobby",
    }
    base.update(fields)
    return Message(**base)


async def test_wires_are_shared_per_variant() -> None:
    a = wire_for(msgid=True, time=True, echo=False, server_name="trio-chat")
    b = wire_for(msgid=True, time=True, echo=False, server_name="trio-chat")
    c = wire_for(msgid=False, time=True, echo=False, server_name="trio-chat")
    assert a is b and a is not c


async def test_a_multiline_message_is_one_privmsg_per_line_msgid_on_the_first() -> None:
    wire = wire_for(msgid=True, time=True, echo=False, server_name="trio-chat")
    lines = wire.encode(message("one\ntwo\n\nthree")).decode().split("\r\n")
    assert lines[-1] == ""
    assert lines[:-1] == [
        "@msgid=7;time=2026-11-24T22:00:00.123Z :Souvik!Souvik@trio-chat PRIVMSG #lobby :one",
        "@time=2026-11-24T22:00:00.123Z :Souvik!Souvik@trio-chat PRIVMSG #lobby :two",
        "@time=2026-11-24T22:00:00.123Z :Souvik!Souvik@trio-chat PRIVMSG #lobby :three",
    ]


async def test_a_long_line_is_split_within_512_bytes() -> None:
    wire = wire_for(msgid=False, time=False, echo=False, server_name="trio-chat")
    text = "é" * 1500
    lines = wire.encode(message(text)).split(b"\r\n")[:-1]
    assert len(lines) > 1
    assert all(len(line) + 2 <= 512 for line in lines)
    assert "".join(line.decode().split(" :", 1)[1] for line in lines) == text


async def test_direct_messages_name_the_recipient_and_non_ascii_users_get_an_ascii_user() -> None:
    wire = wire_for(msgid=False, time=False, echo=False, server_name="trio-chat")
    data = wire.encode(message("hi", sender="Ѕouvik", room=None, to="Ritam"))
    assert data == ":Ѕouvik!ouvik@trio-chat PRIVMSG Ritam :hi\r\n".encode()
    data = wire.encode(message("hi", sender="Ѕ", room=None, to="Ritam"))
    assert data.startswith(":Ѕ!u@trio-chat ".encode())


async def test_an_action_goes_out_as_ctcp_action() -> None:
    wire = wire_for(msgid=False, time=False, echo=False, server_name="trio-chat")
    data = wire.encode(replace(message("waves"), action=True))
    assert data == b":Souvik!Souvik@trio-chat PRIVMSG #lobby :\x01ACTION waves\x01\r\n"
    # a text that merely looks like an emote is a message like any other
    data = wire.encode(message("* Souvik waves"))
    assert data == b":Souvik!Souvik@trio-chat PRIVMSG #lobby :* Souvik waves\r\n"


async def test_edits_deletions_and_topics_on_irc() -> None:
    """An edit is a NOTICE quoting it, a deletion a REDACT (only with the cap), a topic TOPIC."""
    plain = wire_for(msgid=True, time=False, echo=False, server_name="srv")
    redacting = wire_for(msgid=True, time=False, echo=False, server_name="srv", redact=True)
    edit = EditEntry(9, 5, "Souvik", "fixed", "ts", room="lobby")
    assert plain.encode(edit) == b"@msgid=9 :Souvik!Souvik@srv NOTICE #lobby :edited: fixed\r\n"
    gone = DeleteEntry(10, 5, "Souvik", "ts", room="lobby")
    assert plain.encode(gone) == b""
    assert redacting.encode(gone) == b"@msgid=10 :Souvik!Souvik@srv REDACT #lobby 5\r\n"
    assert plain.encode(replace(edit, deleted=True, text="")) == b""
    topic = TopicEntry(11, "lobby", "plans for today", "Ritam", "ts")
    assert plain.encode(topic) == b"@msgid=11 :Ritam!Ritam@srv TOPIC #lobby :plans for today\r\n"


async def test_presence_is_join_part_quit() -> None:
    wire: IrcWire = wire_for(msgid=False, time=True, echo=False, server_name="srv")
    ts = "2026-11-24T22:00:00.123Z"
    joined = Presence(room="lobby", name="Ritam", state="joined", ts=ts)
    assert wire.encode(joined) == f"@time={ts} :Ritam!Ritam@srv JOIN #lobby\r\n".encode()
    reasons: dict[LeaveReason, str] = {
        "part": "PART #lobby",
        "quit": "QUIT :Quit",
        "timeout": "QUIT :Ping timeout",
        "gone": "QUIT :Connection closed",
        "replaced": "QUIT :Logged in from elsewhere",
    }
    for reason, rest in reasons.items():
        item = Presence(room="lobby", name="Ritam", state="left", ts=ts, reason=reason)
        assert wire.encode(item) == f"@time={ts} :Ritam!Ritam@srv {rest}\r\n".encode()


async def test_own_copy_follows_echo_message_and_labels() -> None:
    plain = wire_for(msgid=False, time=False, echo=False, server_name="srv")
    echo = wire_for(msgid=True, time=False, echo=True, server_name="srv")
    m = message("hi")
    assert plain.own(m, None) == b""
    assert plain.own(m, "L1") == b"@label=L1 :srv ACK\r\n"
    assert echo.own(m, None) is None
    assert echo.own(m, "L1") == b"@label=L1;msgid=7 :Souvik!Souvik@srv PRIVMSG #lobby :hi\r\n"


# ------------------------------------------------------------------ registration


async def test_registration_greets_with_001_to_005_lusers_and_motd(config: Config) -> None:
    async with open_door(config) as door:
        irc = door.open()
        lines = await irc.register("Ritam")
        codes = [line.split()[1] for line in lines]
        for code in ("001", "002", "003", "004", "005", "251", "254", "255", "375", "376"):
            assert code in codes
        assert lines[0] == ":trio-chat 001 Ritam :Welcome to the trio-chat IRC network, Ritam"
        isupport = " ".join(line for line in lines if " 005 " in line)
        for token in ("CASEMAPPING=rfc8265", "CHANTYPES=#", "NICKLEN=32", "UTF8ONLY"):
            assert token in isupport


async def test_cap_ls_advertises_only_what_is_implemented(config: Config) -> None:
    async with open_door(config) as door:
        irc = door.open()
        await irc.send("CAP LS 302")
        line = await irc.expect(" CAP ")
        caps = line.split(" :", 1)[1].split()
        assert "sasl=PLAIN" in caps and "draft/chathistory" in caps
        assert "draft/read-marker" in caps and "draft/message-redaction" in caps
        await irc.send("CAP REQ :batch nonsense")
        assert (await irc.expect(" CAP ")).endswith("NAK :batch nonsense")
        await irc.send("CAP LIST")
        assert (await irc.expect(" CAP ")).endswith("LIST :")
        await irc.send("CAP FOO")
        await irc.expect(r" 410 \* FOO ")
        await irc.send("NICK Ritam")
        await irc.send("USER r 0 * :r")
        await irc.send("PING :x")  # no 001 before CAP END
        assert await irc.until(" PONG ") == [":trio-chat PONG trio-chat :x"]
        await irc.send("CAP END")
        await irc.expect(" 001 Ritam ")


async def test_bad_and_taken_nicks(config: Config) -> None:
    async with open_door(config) as door:
        first = door.open()
        await first.register("Ritam")
        irc = door.open()
        await irc.send("NICK #bad")
        await irc.expect(r" 432 \* #bad ")
        await irc.send("NICK ritam")
        await irc.expect(r" 433 \* ritam ")
        await irc.send("NICK Ritam2")
        await irc.send("USER r 0 * :r")
        await irc.expect(" 001 Ritam2 ")


async def test_commands_before_registration_get_451(config: Config) -> None:
    async with open_door(config) as door:
        irc = door.open()
        await irc.send("JOIN #lobby")
        await irc.expect(r" 451 \* ")


async def test_sasl_plain_and_a_nick_with_an_account(config: Config) -> None:
    async with open_door(config) as door:
        from base64 import b64encode

        from trio_chat.core.rules import parse_name

        # an account made through the core, as the JSON door would
        owner = door.open()
        await owner.register("Keeper")
        await door.chat._create_account(
            parse_name("Souvik", "name", "name_invalid"), "secret-pw1", "x"
        )

        guest = door.open()
        await guest.send("NICK Souvik")
        await guest.send("USER s 0 * :s")
        await guest.expect(r" 433 \* Souvik ")

        wrong = door.open()
        await wrong.send("CAP REQ :sasl")
        await wrong.send("AUTHENTICATE PLAIN")
        await wrong.expect("^AUTHENTICATE \\+$")
        await wrong.send("AUTHENTICATE " + b64encode(b"\0Souvik\0wrong-pass").decode())
        await wrong.expect(r" 904 ")

        irc = door.open()
        await irc.send("CAP LS 302")
        await irc.send("NICK Souvik")
        await irc.send("USER s 0 * :s")
        await irc.send("CAP REQ :sasl")
        await irc.expect(" ACK ")
        await irc.send("AUTHENTICATE PLAIN")
        await irc.expect("^AUTHENTICATE \\+$")
        await irc.send("AUTHENTICATE " + b64encode(b"\0souvik\0secret-pw1").decode())
        await irc.expect(r" 900 \S+ Souvik!\S+ Souvik ")
        await irc.expect(r" 903 ")
        await irc.send("CAP END")
        await irc.expect(" 001 Souvik ")


# ------------------------------------------------------------------ rooms and messages


async def test_join_privmsg_part_quit_between_two_irc_users(config: Config) -> None:
    async with open_door(config) as door:
        ritam, souvik = door.open(), door.open()
        await ritam.register("Ritam")
        await souvik.register("Souvik")
        lines = await ritam.join("#lobby")
        assert lines[0] == ":Ritam!Ritam@trio-chat JOIN #lobby"
        assert ":trio-chat 353 Ritam = #lobby :@Ritam" in lines  # first in: an op (section 11)
        lines = await souvik.join("#Lobby")
        assert lines[0] == ":Souvik!Souvik@trio-chat JOIN #lobby"
        assert ":trio-chat 353 Souvik = #lobby :@Ritam Souvik" in lines
        await ritam.expect("^:Souvik!Souvik@trio-chat JOIN #lobby$")

        await souvik.send("PRIVMSG #lobby :hello there")
        await ritam.expect("^:Souvik!Souvik@trio-chat PRIVMSG #lobby :hello there$")
        await souvik.send("PRIVMSG Ritam :\x02psst\x02")
        await ritam.expect("^:Souvik!Souvik@trio-chat PRIVMSG Ritam :psst$")
        await souvik.send("PRIVMSG #lobby :\x01ACTION waves\x01")
        await ritam.expect("^:Souvik!Souvik@trio-chat PRIVMSG #lobby :\x01ACTION waves\x01$")
        await souvik.send("PRIVMSG #lobby :\x01VERSION\x01")  # not relayed
        await souvik.send("PART #lobby :bye now")
        assert await souvik.expect(" PART ") == ":Souvik!Souvik@trio-chat PART #lobby :bye now"
        # nothing of the sender's came back to it: no echo-message
        assert [line for line in souvik.seen if " PRIVMSG " in line] == []
        assert await ritam.recv() == ":Souvik!Souvik@trio-chat PART #lobby"
        lines = await souvik.join("#lobby")  # and the replay comes after NAMES
        assert await souvik.recv() == ":Souvik!Souvik@trio-chat PRIVMSG #lobby :hello there"
        await ritam.expect(" JOIN #lobby$")
        await souvik.send("QUIT :gone fishing")
        assert await souvik.expect("^ERROR ") == "ERROR :Quit: gone fishing"
        assert await souvik.closed()
        assert await ritam.recv() == ":Souvik!Souvik@trio-chat QUIT :Quit: gone fishing"


async def test_replay_on_join_with_batch_and_server_time(config: Config) -> None:
    async with open_door(config, irc_replay=2) as door:
        ritam = door.open()
        await ritam.register("Ritam", "echo-message")
        await ritam.join("#lobby")
        for i in range(3):
            await ritam.send(f"PRIVMSG #lobby :earlier {i}")
            await ritam.expect(f"PRIVMSG #lobby :earlier {i}$")
        plain = door.open()
        await plain.register("Plain")
        lines = await plain.join("#lobby")
        lines += [await plain.recv(), await plain.recv()]
        assert lines[-2:] == [
            ":Ritam!Ritam@trio-chat PRIVMSG #lobby :earlier 1",
            ":Ritam!Ritam@trio-chat PRIVMSG #lobby :earlier 2",
        ]
        tagged = door.open()
        await tagged.register("Tagged", "batch", "server-time", "message-tags")
        await tagged.join("#lobby")
        start = await tagged.recv()
        assert re.fullmatch(r":trio-chat BATCH \+(\S+) chathistory #lobby", start)
        ref = start.split()[2][1:]
        one, two, end = await tagged.recv(), await tagged.recv(), await tagged.recv()
        assert re.fullmatch(
            rf"@batch={ref};msgid=\d+;time=\S+ :Ritam\S+ PRIVMSG #lobby :earlier 1", one
        )
        assert two.endswith(":earlier 2")
        assert end == f":trio-chat BATCH -{ref}"
        history = door.open()
        await history.register("Hist", "draft/chathistory")
        await history.join("#lobby")
        await history.send("PING :after")
        assert await history.recv() == ":trio-chat PONG trio-chat :after"  # no replay


async def test_chathistory_latest_and_before(config: Config) -> None:
    async with open_door(config) as door:
        irc = door.open()
        await irc.register("Ritam", "draft/chathistory", "batch", "message-tags", "echo-message")
        await irc.join("#lobby")
        ids = []
        for i in range(5):
            await irc.send(f"PRIVMSG #lobby :m{i}")
            line = await irc.expect(f":m{i}$")
            ids.append(int(re.search(r"msgid=(\d+)", line)[1]))  # type: ignore[index]
        await irc.send("CHATHISTORY LATEST #lobby * 2")
        lines = await irc.until(r"BATCH -")
        assert [line.rsplit(":", 1)[1] for line in lines if "PRIVMSG" in line] == ["m3", "m4"]
        await irc.send(f"CHATHISTORY BEFORE #lobby msgid={ids[3]} 10")
        lines = await irc.until(r"BATCH -")
        assert [line.rsplit(":", 1)[1] for line in lines if "PRIVMSG" in line] == [
            "m0",
            "m1",
            "m2",
        ]
        await irc.send("CHATHISTORY AFTER #lobby msgid=zero 10")
        await irc.expect("^:trio-chat FAIL CHATHISTORY INVALID_PARAMS ")
        await irc.send("CHATHISTORY LATEST #elsewhere * 10")
        await irc.expect("^:trio-chat FAIL CHATHISTORY INVALID_TARGET ")


async def test_labeled_responses(config: Config) -> None:
    async with open_door(config) as door:
        irc = door.open()
        await irc.register("Ritam", "labeled-response", "batch", "echo-message")
        await irc.send("@label=p1 PING :x")
        assert await irc.recv() == "@label=p1 :trio-chat PONG trio-chat :x"
        await irc.send("@label=j1 JOIN #lobby")
        start = await irc.recv()
        assert re.fullmatch(r"@label=j1 :trio-chat BATCH \+\S+ labeled-response", start)
        lines = await irc.until("BATCH -")
        assert lines[0].endswith("JOIN #lobby")
        await irc.send("@label=m1 PRIVMSG #lobby :hi")
        assert await irc.recv() == "@label=m1 :Ritam!Ritam@trio-chat PRIVMSG #lobby :hi"
        await irc.send("@label=a1 PONG :x")
        assert await irc.recv() == "@label=a1 :trio-chat ACK"


async def test_other_commands(config: Config) -> None:
    async with open_door(config) as door:
        irc, other = door.open(), door.open()
        await irc.register("Ritam")
        await other.register("Souvik")
        await irc.join("#lobby")
        await other.join("#lobby")
        await irc.send("WHO #lobby")
        lines = await irc.until(" 315 ")
        assert sum(" 352 " in line for line in lines) == 2
        await irc.send("TOPIC #lobby")
        await irc.expect(" 331 Ritam #lobby ")
        await irc.send("TOPIC #lobby :new topic")  # a room without owner: any member may
        await irc.expect("^:Ritam!Ritam@trio-chat TOPIC #lobby :new topic$")
        await irc.send("MODE #lobby")
        await irc.expect(" 324 Ritam #lobby :\\+$")
        await irc.send("MODE Ritam")
        await irc.expect(" 221 Ritam :\\+$")
        await other.send("KICK #lobby Ritam")  # Ritam came first: an op (section 11)
        await other.expect(" 482 Souvik #lobby ")
        await irc.send("LIST")
        assert ":trio-chat 322 Ritam #lobby 2 :new topic" in await irc.until(" 323 ")
        await irc.send("NAMES #lobby")
        await irc.expect(" 353 Ritam = #lobby :@Ritam Souvik$")
        await other.send("AWAY :lunch")
        await other.expect(" 306 ")
        await irc.send("PRIVMSG Souvik :there?")
        await irc.expect(" 301 Ritam Souvik :lunch$")
        await irc.send("PRIVMSG Nobody :there?")
        await irc.expect(" 401 Ritam Nobody ")
        await irc.send("PRIVMSG #elsewhere :there?")
        await irc.expect(" 404 Ritam #elsewhere ")
        await irc.send("PRIVMSG #lobby :")
        await irc.expect(" 412 ")
        await irc.send("JOIN lobby,#bad!room")
        await irc.expect(" 403 Ritam lobby ")
        await irc.expect(" 479 Ritam #bad!room ")
        await irc.send("WHOIS Souvik")
        await irc.expect(" 311 Ritam Souvik Souvik trio-chat \\* :Souvik$")
        await irc.expect(" 318 Ritam Souvik ")
        await irc.send("ISON Souvik Nobody")
        await irc.expect(" 303 Ritam :Souvik$")
        await irc.send("@+typing=active TAGMSG #lobby")
        await irc.send("JOIN 0")
        await irc.expect("PART #lobby :Left all channels")


# ------------------------------------------------------------------ bad input


async def test_bad_lines_get_an_answer_and_the_connection_carries_on(config: Config) -> None:
    async with open_door(config) as door:
        irc = door.open()
        await irc.register("Ritam")
        await irc.send("PRIVMSG #lobby :" + "x" * 600)
        await irc.expect(" 417 Ritam ")
        await irc.send_raw(b"PRIVMSG #lobby :\xff\xfe\r\n")
        await irc.expect("FAIL PRIVMSG INVALID_UTF8 ")
        await irc.send("FROB")
        await irc.expect(" 421 Ritam FROB ")
        await irc.send("JOIN")
        await irc.expect(" 461 Ritam JOIN ")
        await irc.send("@" * 10000)
        await irc.expect(" 417 Ritam ")
        await irc.send("PING :still")
        await irc.expect("PONG trio-chat :still$")


async def test_too_many_errors_in_a_row_close(config: Config) -> None:
    async with open_door(config) as door:
        irc = door.open()
        await irc.register("Ritam")
        await irc.send_raw(b"FROB\r\n" * MAX_ERRORS)
        assert await irc.expect("^ERROR ") == "ERROR :too many errors"
        assert await irc.closed()


async def test_registration_timeout(config: Config, autojump_clock: trio.testing.MockClock) -> None:
    async with open_door(config, handshake_timeout=10.0) as door:
        irc = door.open()
        await irc.send("NICK Ritam")
        assert await irc.recv(FOREVER) == "ERROR :Registration timed out"
        assert await irc.closed(FOREVER)


async def test_ping_then_ping_timeout(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_door(config, idle_timeout=60.0) as door:
        irc = door.open()
        await irc.register("Ritam")
        assert await irc.recv(FOREVER) == "PING :trio-chat"
        assert await irc.recv(FOREVER) == "ERROR :Ping timeout"
        assert await irc.closed(FOREVER)


async def test_slow_consumer_and_other_byes_in_irc_words(config: Config) -> None:
    async with open_door(config) as door:
        door.open()
        session = door.sessions[0]
        assert session.encode_bye(Bye("slow_consumer", "x")) == b"ERROR :slow consumer\r\n"
        assert session.encode_bye(Bye("shutdown", "going down")) == b"ERROR :going down\r\n"
        assert session.encode_ping() == b"PING :trio-chat\r\n"


async def test_a_reader_that_stalls_is_a_slow_consumer(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    limit = 5
    async with open_door(config, queue_limit=limit, idle_timeout=FOREVER) as door:
        irc = door.open(lockstep=True)
        await irc.register("Stalled")
        session = door.sessions[0]
        with trio.fail_after(FOREVER):
            while not session.outbox.closed:  # lockstep: nothing moves while it does not read
                await irc.send("PING :x")
                await trio.sleep(0.25)
        lines = await irc.until("^ERROR ", FOREVER)
        assert lines[-1] == "ERROR :slow consumer"
        assert all(line == ":trio-chat PONG trio-chat :x" for line in lines[:-1])
        assert await irc.closed(FOREVER)
        assert not door.hub.users
