"""Hostile input at the IRC door of a live server, while a JSON and an IRC user chat.

Like tests/test_fuzz_server.py for the JSON door: a seeded corpus of hostile IRC
lines (overlong lines and tag sections, invalid UTF-8, NUL and CR inside a line,
`@` times ten thousand and deep garbage, unknown commands, every command without
its parameters, CAP and SASL abuse, CHATHISTORY with every bad reference and
limit, MODE/KICK/INVITE/TOPIC/REDACT/MARKREAD with hostile parameters, PRIVMSG
to a hundred targets, random bytes, seeded mutations of valid lines) goes to the
door over several connections, each payload followed by a sentinel PING whose
PONG ends its answers. Meanwhile two honest users, one on each door, chat in
`#lobby`: they must miss nothing and see nothing of the garbage. The server
must refuse what must be refused (a numeric, FAIL, NAK or ERROR), close only
the connections that earned it, log no crash, and welcome a newcomer afterwards.
"""

from __future__ import annotations

import logging
import random
import re
from base64 import b64encode
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import trio
from chat_client import ChatClient, login
from harness import RunningServer, StartServer
from test_irc_door import IrcClient, IrcClosed

pytestmark = pytest.mark.trio

SEED = 20261129
REGISTERED = 3  # hostile connections that register (one more never does)
RANDOM_BLOBS = 80  # random-byte payloads per hostile connection
MUTATED = 120  # mutated valid lines per registered hostile connection
CLOSERS = 24  # connections that send half a line (or register, then garbage) and close
MIN_HONEST = 25  # messages each honest user sends at least
KEEPER = "Keeper"  # an account, for SASL with wrong passwords
KEEPER_PASSWORD = "the-keeper-password"
SERVER = "trio-chat"

# A refusal: an error numeric (4xx, 5xx, SASL's 902-908), FAIL, CAP NAK or ERROR.
REFUSAL = re.compile(r"^(?:@\S+ )?(?::\S+ (?:[45]\d\d|90[2-8]|FAIL|CAP \S+ NAK)(?: |$)|ERROR )")
CAPS_HOSTILE = [
    (),
    ("message-tags", "labeled-response", "batch", "echo-message", "server-time"),
    ("draft/chathistory", "batch", "message-tags", "draft/read-marker", "draft/message-redaction"),
]


@dataclass(frozen=True)
class Hostile:
    """Whole lines (each ends with LF) and whether the server owes at least one refusal."""

    payload: bytes
    kind: str
    refuse: bool = True


def lines(*texts: str | bytes, crlf: bool = True) -> bytes:
    """IRC lines from texts (str as UTF-8), each ended by CR LF (or LF alone)."""
    end = b"\r\n" if crlf else b"\n"
    return b"".join((t.encode() if isinstance(t, str) else t) + end for t in texts)


def h(kind: str, *texts: str | bytes, refuse: bool = True) -> Hostile:
    return Hostile(lines(*texts), kind, refuse)


# ------------------------------------------------------------------ the hostile corpus

# command -> the parameters it needs (trio_chat/doors/irc.py's table), for the 461s
NEEDS = {
    "CAP": 1, "NICK": 1, "USER": 4, "AUTHENTICATE": 1, "PING": 1, "JOIN": 1, "PART": 1,
    "PRIVMSG": 1, "NOTICE": 1, "WHO": 1, "TOPIC": 1, "KICK": 2, "INVITE": 2, "MODE": 1,
    "CHATHISTORY": 3, "WHOIS": 1, "ISON": 1, "USERHOST": 1, "TAGMSG": 1, "REDACT": 2,
    "MARKREAD": 1,
}  # fmt: skip
NO_PARAMS = ["PASS", "PONG", "NAMES", "LIST", "AWAY", "MOTD", "LUSERS"]  # answered, or silent
REGISTERED_ONLY = [
    "JOIN", "PART", "PRIVMSG", "NOTICE", "NAMES", "WHO", "TOPIC", "LIST", "KICK", "INVITE",
    "MODE", "AWAY", "MOTD", "LUSERS", "CHATHISTORY", "WHOIS", "ISON", "USERHOST", "TAGMSG",
    "REDACT", "MARKREAD",
]  # fmt: skip
SUBS = ["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS"]
BAD_REFS = [
    "msgid=", "msgid=0", "msgid=-5", "msgid=abc", "msgid=1.5", "msgid=" + "9" * 30,
    "msgid=9007199254740993", "msgid=1=2", "msgid", "=", "foo=bar", "timestamp=",
    "timestamp=yesterday", "timestamp=2026-11-24", "timestamp=2026-11-24T22:00:00.1234Z",
    "timestamp=2026-11-24T22:00:00+01:00", "timestamp=2026-11-24 22:00:00Z", "%s", "\u00e9",
]  # fmt: skip
BAD_LIMITS = ["0", "-1", "-0", "abc", "1e3", "1.5", "NaN", "0x10", "\u00e9"]
GARBAGE_DEEP = [
    b"@" * 10000,
    b"[" * 10000,
    b"(" * 5000 + b")" * 5000,
    b":" * 10000,
    b"\x01" * 10000,
    b"PRIVMSG " + b"#" * 10000 + b" :x",
    b"@" + b"a=b;" * 2500 + b" PING :deep",
    b"@" + b"\\" * 9000 + b" PING :deep",
    b" " * 10000,
    b"\xff" * 10000,
]


def missing_params(registered: bool) -> Iterator[Hostile]:
    """Every command without its parameters, and with one parameter too few."""
    for command, needs in NEEDS.items():
        if not registered and command in REGISTERED_ONLY:
            continue  # before registration these are 451, below
        if registered and command == "USER":
            yield h("missing_params", "USER")  # 461 or 462: refused either way
            continue
        yield h("missing_params", command)
        if needs > 1:
            yield h("missing_params", command + " x" * (needs - 1))
    if registered:
        for command in NO_PARAMS:
            yield h("no_params", command, refuse=False)


def line_shapes() -> Iterator[Hostile]:
    """Overlong lines and tags, bad bytes, no command, unknown commands."""
    tags = "@" + ";".join(f"k{i}=v" for i in range(900))  # ~5.7 KB of tags
    yield h("overlong", "PRIVMSG #den :" + "x" * 600)
    yield h("overlong", "@label=x;" + "a" * 3000 + " PRIVMSG #den :" + "y" * 600)
    yield h("overlong", tags[:4096] + " PING :tags")  # the tags part, '@' and ' ' in, is 4097
    yield h("tags_at_limit", tags[:4095] + " PING :edge", refuse=False)  # 4096: allowed
    yield h("overlong", "@" + "t" * 8200 + " PING :huge")  # over 8191: past the reader's limit
    yield h("overlong", tags + " PING :x")
    yield h("overlong", "@" + "k=" + "v" * 4093 + " " + "PRIVMSG #den :" + "z" * 500)
    for garbage in GARBAGE_DEEP:
        yield h("deep_garbage", garbage)
    yield h("invalid_utf8", b"PRIVMSG #den :\xc3\x28")
    yield h("invalid_utf8", b"PRIVMSG #den :\xed\xa0\x80")  # an encoded surrogate
    yield h("invalid_utf8", b"\xff\xfe PING :x")
    yield h("invalid_utf8", b"@label=\xff PING :x")
    yield h("invalid_utf8", b"NICK \xc0\xaf")
    yield h("bad_character", b"PRIVMSG #den :a\x00b")
    yield h("bad_character", b"PRIVMSG #den :a\rb")
    yield h("bad_character", b"PING \x00")
    yield h("bad_character", b"\x00")
    yield h("bad_character", b"NICK a\rb")
    yield h("no_command", "@a=b")
    yield h("no_command", ":source")
    yield h("no_command", ":source    ")
    yield h("no_command", "@a=b :source")
    yield h("no_command", "   ")
    yield h("no_command", "@ ")
    for command in ["FROB", "PRIVMSGX", "12", "1234", "PR1VMSG", "\u00c9T\u00c9", "-", "*", "#x"]:
        yield h("unknown_command", f"{command} a b :c")
    yield h("unknown_command", "OPER root hunter2")
    yield h("unknown_command", "KILL Alice :bye")
    yield h("unknown_command", "SQUIT trio-chat :bye")
    yield h("unknown_command", "BATCH +x draft/multiline #lobby")
    yield h("unknown_command", "001 x :welcome")


def cap_abuse() -> Iterator[Hostile]:
    yield h("cap", "CAP FROB")
    yield h("cap", "CAP REQ")
    yield h("cap", "CAP REQ :")
    yield h("cap", "CAP REQ :nonsense")
    yield h("cap", "CAP REQ :sasl nonsense -echo-message")
    yield h("cap", "CAP REQ :" + " ".join(["x" * 40] * 10))
    yield h("cap", "CAP REQ :--sasl", refuse=False)  # ACKed as it stands (see the report)
    yield h("cap", "CAP \u00e9")
    yield h("cap", "CAP LS 999999999999999999999999999", refuse=False)
    yield h("cap", "CAP LIST", refuse=False)


def sasl_abuse(registered: bool) -> Iterator[Hostile]:
    """AUTHENTICATE every wrong way; each payload ends the exchange it starts."""
    if registered:
        yield h("sasl", "AUTHENTICATE PLAIN")  # 907
        yield h("sasl", "AUTHENTICATE " + "A" * 400)
        return
    wrong = b64encode(f"\0{KEEPER}\0wrong-password".encode()).decode()
    yield h("sasl", "AUTHENTICATE EXTERNAL")
    yield h("sasl", "AUTHENTICATE *")
    yield h("sasl", "AUTHENTICATE +")
    yield h("sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE !!!not-base64!!!")
    yield h("sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE +")
    yield h("sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE " + b64encode(b"\xff\xfe\0a\0b").decode())
    yield h("sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE " + b64encode(b"no nuls").decode())
    yield h("sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE " + b64encode(b"\0\0\0\0").decode())
    yield h("sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE " + b64encode(b"x\0y\0z").decode())
    yield h("sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE " + b64encode(b"\0bad name\0pw").decode())
    yield h(
        "sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE " + b64encode(b"\0Ghost\0password").decode()
    )
    yield h("sasl", "AUTHENTICATE PLAIN", *["AUTHENTICATE " + "A" * 400] * 11)  # over 4096
    yield h("sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE " + "QUFB" * 100, "AUTHENTICATE *")
    for _ in range(8):  # the same account, the wrong password, again and again
        yield h("sasl_wrong_password", "AUTHENTICATE PLAIN", "AUTHENTICATE " + wrong)
    yield h("sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE PLAIN", "AUTHENTICATE *")
    yield h("sasl", "CAP END", refuse=False)
    yield h("sasl", "PASS hunter2", refuse=False)
    yield h("sasl", "NICK #bad")
    yield h("sasl", "NICK " + "x" * 40)
    yield h("sasl", "NICK Alice")  # online: 433
    yield h("sasl", "USER a b c")
    for command in REGISTERED_ONLY:
        yield h("not_registered", f"{command} #lobby x y :z")


def chathistory() -> Iterator[Hostile]:
    """Every subcommand with every bad reference, every bad limit, bad targets."""
    for sub in SUBS:
        refs = 2 if sub in ("BETWEEN", "TARGETS") else 1
        target = [] if sub == "TARGETS" else ["#den"]
        good = "timestamp=2026-01-01T00:00:00.000Z" if sub == "TARGETS" else "msgid=1"
        for bad in BAD_REFS + (["*"] if sub != "LATEST" else []):
            args = [*target, *([bad] * refs), "10"]
            yield h("chathistory_ref", f"CHATHISTORY {sub} " + " ".join(args))
        for limit in BAD_LIMITS:
            yield h(
                "chathistory_limit",
                f"CHATHISTORY {sub} " + " ".join([*target, *[good] * refs, limit]),
            )
        if sub != "TARGETS":
            for chan in ["#lobby", "#", "#" + "x" * 40, "#a b", "nobody", "Alice", "*"]:
                args = [chan, *(["*"] if sub == "LATEST" else [good] * refs), "10"]
                yield h("chathistory_target", f"CHATHISTORY {sub} " + " ".join(args))
    yield h("chathistory_sub", "CHATHISTORY FROB #den * 10")
    yield h("chathistory_sub", "CHATHISTORY \u00e9 #den * 10")
    yield h("chathistory_edge", "CHATHISTORY AROUND #den msgid=1 1", refuse=False)
    yield h("chathistory_edge", "CHATHISTORY BETWEEN #den msgid=1 msgid=1 1", refuse=False)
    yield h("chathistory_edge", "CHATHISTORY LATEST #den * 500", refuse=False)


def moderation(ids: dict[str, int]) -> Iterator[Hostile]:
    """MODE, KICK, INVITE, TOPIC, REDACT, MARKREAD with hostile parameters."""
    many = ",".join(f"n{i}" for i in range(15))
    # #lobby: the hostile is no member and no op there; none of this may reach its members
    yield h("mode", "MODE #lobby +i")
    yield h("mode", "MODE #lobby +b Alice")
    yield h("mode", "MODE #lobby -b Alice")
    yield h("mode", "MODE #lobby +o Bob")
    yield h("mode", "MODE #lobby +bbb Alice Bob x")
    yield h("mode", "MODE Alice +i")
    yield h("mode", "MODE #den +z")
    yield h("mode", "MODE #den +b", refuse=False)  # the ban list of an own room: 368
    yield h("mode", "MODE #den +o")
    yield h("mode", "MODE #den +o !")
    yield h("mode", "MODE #den +o " + "x" * 40)
    yield h("mode", "MODE #den +i")  # a guest's room has no owner: refused
    yield h("mode", "MODE #den +o Ghost")
    yield h("mode", "MODE #den -o Ghost")
    yield h("mode", "MODE #den +xyz")
    yield h("mode", "MODE # +i")
    yield h("mode", "MODE #\u00e9\u0301 +i")
    yield h("mode", "MODE nobody")
    yield h("mode", "MODE #den -", refuse=False)
    yield h("kick", "KICK #lobby Alice :out")
    yield h("kick", "KICK #lobby Bob,Alice")
    yield h("kick", "KICK #den Ghost")
    yield h("kick", "KICK #den " + many)  # 15 errors in a row: under the limit
    yield h("kick", "KICK #den !!!")
    yield h("kick", "KICK #den Ghost :" + "r" * 400)
    yield h("kick", "KICK den Ghost")
    yield h("invite", "INVITE Alice #lobby")
    yield h("invite", "INVITE Ghost #den")
    yield h("invite", "INVITE #den Ghost")
    yield h("invite", "INVITE !!! #den")
    yield h("invite", "INVITE Keeper #nowhere")
    yield h("topic", "TOPIC #lobby :pwned")
    yield h("topic", "TOPIC #lobby :")
    yield h("topic", "TOPIC lobby :pwned")
    yield h("topic", "TOPIC # :x")
    yield h("topic", "TOPIC #nowhere :x")
    yield h("topic", "TOPIC #den :" + "\u0344" * 300)  # NFC doubles it: over 300
    yield h("topic", "TOPIC #den :\x03\x02\x1f", refuse=False)  # formatting only: cleared
    yield h("topic", "TOPIC #den :" + "\U0001f600" * 120, refuse=False)
    yield h("topic", "TOPIC #den", refuse=False)
    for msgid in ["0", "-1", "abc", "1.5", "9" * 30, "9007199254740993", *map(str, ids.values())]:
        yield h("redact", f"REDACT #den {msgid}")
        yield h("redact", f"REDACT #lobby {msgid} :reason")
    yield h("redact", "REDACT Alice 1")
    yield h("markread", "MARKREAD #lobby")  # a guest: ACCOUNT_REQUIRED
    yield h("markread", "MARKREAD #den timestamp=yesterday")
    yield h("markread", "MARKREAD #den msgid=1")
    yield h("markread", "MARKREAD #den timestamp=")
    yield h("markread", "MARKREAD #den timestamp=2026-01-01T00:00:00.000Z")
    yield h("markread", "MARKREAD !!!")
    yield h("markread", "MARKREAD #")


def privmsg() -> Iterator[Hostile]:
    """Messages that must go nowhere: too many targets, strangers, empty texts."""
    yield h("privmsg", "PRIVMSG " + ",".join(f"#t{i}" for i in range(100)) + " :hi")
    yield h("privmsg", "PRIVMSG " + ",".join(f"nick{i}" for i in range(100)) + " :hi")
    yield h("privmsg", "PRIVMSG " + ",".join(["#lobby"] * 100) + " :hi")
    yield h("privmsg", "PRIVMSG ,,,, :hi")
    yield h("privmsg", "PRIVMSG #lobby :sneaky")  # not a member: 404
    yield h("privmsg", "PRIVMSG #lobby,Ghost :sneaky")
    yield h("privmsg", "PRIVMSG Ghost :hello?")
    yield h("privmsg", "PRIVMSG # :x")
    yield h("privmsg", "PRIVMSG #den :")
    yield h("privmsg", "PRIVMSG #den :\x02\x03\x0f")
    yield h("privmsg", "PRIVMSG #den :\x01ACTION\x01")
    yield h("privmsg", "PRIVMSG #den :\x01PING 123\x01", refuse=False)  # CTCP: not relayed
    yield h("privmsg", f"PRIVMSG {SERVER} :\x01VERSION\x01", refuse=False)
    yield h("privmsg", "PRIVMSG #den :\x7f\x1b[2J", refuse=False)  # cleaned to "[2J"
    yield h("privmsg", "NOTICE #lobby :sneaky", refuse=False)  # never an error for NOTICE
    yield h("privmsg", "NOTICE " + ",".join(f"#t{i}" for i in range(100)) + " :hi", refuse=False)
    yield h("privmsg", "TAGMSG #lobby", refuse=False)
    yield h("privmsg", "@+typing=active TAGMSG #lobby", refuse=False)
    yield h("join", "JOIN #,#")
    yield h("join", "JOIN lobby")
    yield h("join", "JOIN #")
    yield h("join", "JOIN #a b c", refuse=False)  # joins #a: "b c" are keys
    yield h("join", "JOIN #" + "x" * 40)
    yield h("join", "JOIN #a\u200bb")
    yield h("join", "PART #lobby")
    yield h("join", "PART #nowhere,#,x")
    yield h("registered", "NICK Other")
    yield h("registered", "USER a b c d")
    yield h("registered", "WHOIS Ghost")
    yield h("registered", "WHOIS " + ",".join(f"g{i}" for i in range(50)))
    yield h("registered", "ISON " + " ".join(f"g{i}" for i in range(50)), refuse=False)
    yield h("registered", "USERHOST a b c d e f g", refuse=False)
    yield h("registered", "WHO #lobby", refuse=False)
    yield h("registered", "NAMES #lobby,#,x", refuse=True)
    yield h("labels", "@label=" + "L" * 3000 + " KICK #den Ghost")
    yield h("labels", "@label=a;label=b;label= KICK #den Ghost")
    yield h("labels", "@label=\\:\\s\\\\\\ KICK #den Ghost")
    yield h("labels", "@=;;;=;label KICK #den Ghost")
    yield h("labels", "@label=x FROB")


def half_lines() -> list[bytes]:
    """Prefixes of lines that the closers send without an LF."""
    return [b"PRIVMSG #lobby :never finished", b"@label=x;" + b"a" * 3000, b"\xff\xfe", b"NICK"]


RANDOM_TEXT = "abcXYZ#:@ ;=,*!\\\x01\x00\r\x7f\u00e9\u0301\U0001f600"


def random_blob(rng: random.Random) -> Hostile:
    """Random bytes cut into fewer than 15 lines: one refusal per line that is not blank."""
    if rng.random() < 0.5:
        data = bytearray(rng.randbytes(rng.randint(1, 3000)).replace(b"\n", b""))
    else:
        text = "".join(rng.choice(RANDOM_TEXT) for _ in range(rng.randint(1, 600)))
        data = bytearray(text.encode())
    for _ in range(rng.randint(0, 12)):
        data.insert(rng.randrange(len(data) + 1), 0x0A)
    return Hostile(bytes(data) + b"\n", "random_bytes", refuse=any(blank(data)))


def blank(data: bytes | bytearray) -> Iterator[bool]:
    """For each line of `data`: whether it holds anything once a CR before its LF is gone."""
    for line in bytes(data).split(b"\n"):
        yield bool(line[:-1] if line.endswith(b"\r") else line)


# valid lines whose every mutation stays harmless for #lobby: the sender is in no room but
# its own, and #lobby's one op is Alice
MUTATION_BASES = [
    b"PRIVMSG #lobby :hello there everyone",
    b"KICK #lobby Alice :get out",
    b"TOPIC #lobby :a new topic",
    b"MODE #lobby +b Alice",
    b"MODE #lobby +i",
    b"CHATHISTORY LATEST #lobby * 10",
    b"CHATHISTORY BEFORE #den msgid=5 10",
    b"REDACT #lobby 1",
    b"@label=abc;msgid=5 PRIVMSG #lobby :labeled",
    b"MARKREAD #lobby timestamp=2026-01-01T00:00:00.000Z",
    b"INVITE Ghost #lobby",
    b"@time=2026-01-01T00:00:00.000Z :Alice!Alice@trio-chat PRIVMSG #lobby :spoof",
]


def mutated(rng: random.Random) -> Hostile:
    data = bytearray(rng.choice(MUTATION_BASES))
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.choice([b for b in range(256) if b not in (10, 13)])
    return Hostile(bytes(data) + b"\r\n", "mutated", refuse=False)


def registered_corpus(ids: dict[str, int]) -> list[Hostile]:
    return [
        *missing_params(True),
        *line_shapes(),
        *cap_abuse(),
        *sasl_abuse(True),
        *chathistory(),
        *moderation(ids),
        *privmsg(),
    ]


def unregistered_corpus() -> list[Hostile]:
    return [*missing_params(False), *line_shapes(), *cap_abuse(), *sasl_abuse(False)]


# ------------------------------------------------------------------ the test


@dataclass
class Tally:
    payloads: int = 0
    refusals: int = 0
    silent: int = 0  # payloads that owed no refusal and got no answer line
    closes: int = 0
    kinds: set[str] = field(default_factory=set)
    unrefused: list[tuple[str, bytes, list[str]]] = field(default_factory=list)
    clients: list[IrcClient] = field(default_factory=list)


async def hostile_client(port: int, index: int, tally: Tally) -> IrcClient:
    """A hostile connection: registered as Hostile<index> in its own #den, or never (0)."""
    c = await IrcClient.connect(port)
    tally.clients.append(c)
    if index:
        await c.register(f"Hostile{index}", *CAPS_HOSTILE[index - 1])
        await c.join("#den")  # the first in: an op of #den (a guest's room has no owner)
        for n in range(3):
            await c.send(f"PRIVMSG #den :den message {n}")
    return c


async def throw(port: int, index: int, plan: list[Hostile], rng: random.Random, t: Tally) -> None:
    """Send each payload and a sentinel PING; the lines before the PONG are its answers."""
    c = await hostile_client(port, index, t)
    for n, item in enumerate(plan):
        token = f"s{index}x{n}"
        data = item.payload + f"PING {token}\r\n".encode()
        if rng.random() < 0.2:  # now and then in two pieces, cut anywhere
            cut = rng.randrange(1, len(data))
            await c.send_raw(data[:cut])
            await trio.sleep(0.001)
            await c.send_raw(data[cut:])
        else:
            await c.send_raw(data)
        answers: list[str] = []
        try:
            while not (line := await c.recv()).endswith(f" PONG {SERVER} :{token}"):
                answers.append(line)
        except IrcClosed:  # only after an ERROR line (too many errors, or QUIT)
            assert answers and answers[-1].startswith("ERROR "), (item, answers[-5:])
            t.closes += 1
            c = await hostile_client(port, index, t)
            answers = [a for a in answers if not a.startswith("ERROR ")] + ["ERROR"]
        refusals = sum(1 for a in answers if REFUSAL.match(a))
        if item.refuse and not refusals:
            t.unrefused.append((item.kind, item.payload[-300:], answers[:8]))
        if item.kind == "random_bytes" and refusals != sum(blank(item.payload[:-1])):
            t.unrefused.append((item.kind, item.payload[-300:], answers[:8]))
        for a in answers:
            assert "Alice says" not in a and "Bob says" not in a, (item, a)
        t.payloads += 1
        t.refusals += refusals
        t.silent += not answers
        t.kinds.add(item.kind)
    await c.send("QUIT :done")
    assert await c.closed()


async def closers(port: int, rng: random.Random, t: Tally) -> None:
    """Half a line then a close; registration then garbage then a close; an error flood."""
    for n in range(CLOSERS):
        c = await IrcClient.connect(port)
        if n % 2:
            await c.register(f"Closer{n}")
            await c.send_raw(rng.randbytes(rng.randint(1, 500)).replace(b"\n", b""))
        else:
            await c.send_raw(rng.choice(half_lines()))
        await trio.sleep(0.01 * rng.random())
        await c.stream.aclose()
        t.closes += 1
    for n in range(3):
        c = await IrcClient.connect(port)
        await c.register(f"Babbler{n}")
        await c.send_raw(b"FROB\r\n" * 25)
        answers = await c.until("^ERROR ")
        assert answers[-1] == "ERROR :too many errors"
        assert sum(1 for a in answers if " 421 " in a) == 20
        assert await c.closed()
        t.closes += 1


async def json_chat(client: ChatClient, stop: trio.Event, sent: list[str]) -> None:
    n = 0
    rng = random.Random(1)
    while n < MIN_HONEST or not stop.is_set():
        text = f"Alice says {n}"
        await client.send(type="say", room="lobby", text=text)
        sent.append(text)
        n += 1
        await trio.sleep(0.03 * rng.random())
    await client.send(type="say", room="lobby", text="Alice is done")
    sent.append("Alice is done")


async def irc_chat(client: IrcClient, stop: trio.Event, sent: list[str]) -> None:
    n = 0
    rng = random.Random(2)
    while n < MIN_HONEST or not stop.is_set():
        text = f"Bob says {n}"
        await client.send(f"PRIVMSG #lobby :{text}")
        sent.append(text)
        n += 1
        await trio.sleep(0.03 * rng.random())
    await client.send("PRIVMSG #lobby :Bob is done")
    sent.append("Bob is done")


async def json_listen(client: ChatClient, got: list[tuple[int, str, str]]) -> None:
    done = {"Alice is done", "Bob is done"}
    while done:
        frame = await client.recv(timeout=20)
        if frame["type"] == "ping":
            continue
        assert frame["type"] == "message" and frame["room"] == "lobby", frame  # nothing else
        got.append((frame["id"], frame["from"], frame["text"]))
        done.discard(frame["text"])


PRIVMSG_LINE = re.compile(
    r"^@msgid=(\d+) :(Alice|Bob)!\2@trio-chat PRIVMSG #lobby :((?:Alice|Bob) (?:says \d+|is done))$"
)


async def irc_listen(client: IrcClient, got: list[tuple[int, str, str]]) -> None:
    done = {"Alice is done", "Bob is done"}
    while done:
        line = await client.recv(timeout=20)
        if line.startswith("PING "):
            await client.send("PONG " + line[5:])
            continue
        found = PRIVMSG_LINE.match(line)
        assert found, line  # nothing but the two users' messages
        got.append((int(found[1]), found[2], found[3]))
        done.discard(found[3])


def oversized(clients: list[IrcClient]) -> Counter[str]:
    """The commands of the lines the server sent past IRC's limits (512 bytes without tags,
    8191 of tags), counted."""
    found: Counter[str] = Counter()
    for c in clients:
        for line in c.seen:
            tags, body = line.split(" ", 1) if line.startswith("@") else ("", line)
            if len(body.encode()) + 2 > 512 or len(tags.encode()) + 1 > 8191:
                found[body.split(" ")[1] if body.startswith(":") else body.split(" ")[0]] += 1
    return found


async def test_hostile_irc_connections_cost_only_themselves(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Every hostile IRC payload is refused or harmless; the two honest users miss nothing."""
    rng = random.Random(SEED)
    with trio.fail_after(60):
        server: RunningServer = await start_server(irc_port=0, handshake_timeout=120.0)
        assert server.irc_port is not None
        port = server.irc_port
        keeper = await login(server.port, KEEPER, password=KEEPER_PASSWORD)
        await keeper.aclose()
        alice = await login(server.port, "Alice", "lobby")
        bob = IrcClient(await trio.open_tcp_stream("127.0.0.1", port))
        await bob.register("Bob", "echo-message", "message-tags")
        await bob.join("#lobby")
        await alice.expect("presence", name="Bob", state="joined")
        # ids of #lobby that hostile references may name: a message, an edit, a deletion
        ids = {"kept": (await alice.say("lobby", "warm one"))["id"]}
        ids["deleted"] = (await alice.say("lobby", "warm two"))["id"]
        await alice.send(type="edit", message=ids["kept"], text="warm one, edited", id="e")
        ids["edit"] = (await alice.expect("edit", re="e"))["id"]
        await alice.send(type="delete", message=ids["deleted"], id="d")
        ids["delete"] = (await alice.expect("delete", re="d"))["id"]
        await bob.expect("NOTICE #lobby :edited: warm one, edited$")

        corpus = registered_corpus(ids)
        shares = [corpus[i::REGISTERED] for i in range(REGISTERED)]
        plans = [unregistered_corpus() + [random_blob(rng) for _ in range(RANDOM_BLOBS)]]
        for share in shares:
            plan = share + [random_blob(rng) for _ in range(RANDOM_BLOBS)]
            plans.append(plan + [mutated(rng) for _ in range(MUTATED)])
        for plan in plans:
            rng.shuffle(plan)

        tally = Tally()
        sent: dict[str, list[str]] = {"Alice": [], "Bob": []}
        got: dict[str, list[tuple[int, str, str]]] = {"Alice": [], "Bob": []}
        hostile_done = trio.Event()
        start = trio.current_time()
        async with trio.open_nursery() as honest:
            honest.start_soon(json_chat, alice, hostile_done, sent["Alice"])
            honest.start_soon(irc_chat, bob, hostile_done, sent["Bob"])
            honest.start_soon(json_listen, alice, got["Alice"])
            honest.start_soon(irc_listen, bob, got["Bob"])
            async with trio.open_nursery() as hostile:
                for index, plan in enumerate(plans):
                    hostile.start_soon(throw, port, index, plan, random.Random(index), tally)
                hostile.start_soon(closers, port, random.Random(99), tally)
            hostile_done.set()
        elapsed = trio.current_time() - start

        # the honest users missed nothing: both see every message of both, in one order
        for me in ("Alice", "Bob"):
            ids_seen = [i for i, _, _ in got[me]]
            assert ids_seen == sorted(set(ids_seen)), f"{me}: ids not increasing"
            for sender in ("Alice", "Bob"):
                texts = [text for _, who, text in got[me] if who == sender]
                assert texts == sent[sender], f"{me} missed messages of {sender}"
        assert got["Alice"] == got["Bob"]

        assert tally.payloads == sum(len(plan) for plan in plans)
        assert not tally.unrefused, tally.unrefused  # each one refused, as it must be
        crashes = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not crashes, crashes
        assert not oversized([bob]), "an honest user got a line past IRC's limits"
        too_long = oversized(tally.clients)

        # and newcomers are served at once, on both doors
        with trio.fail_after(5):
            fresh = await IrcClient.connect(port)
            welcome = await fresh.register("Newcomer")
            assert any(" 001 Newcomer " in line for line in welcome)
            joined = await fresh.join("#lobby")
            assert ":trio-chat 366 Newcomer #lobby :End of /NAMES list" in joined
            await fresh.send("PRIVMSG #lobby :hello after the storm")
            await alice.expect("message", text="hello after the storm")
            c = await login(server.port, "Newjson")
            await c.send(type="ping", id="last")
            assert await c.expect("pong") == {"type": "pong", "re": "last"}
        print(
            f"\n{tally.payloads} hostile IRC payloads ({len(corpus)} registered corpus items,"
            f" {len(tally.kinds)} kinds), {tally.refusals} refusals, {tally.silent} silent,"
            f" {tally.closes} closes; honest: {len(sent['Alice'])}+{len(sent['Bob'])} messages;"
            f" lines past 512 bytes: {dict(too_long)}; {elapsed:.2f} s"
        )
        assert not too_long, too_long
        for closable in (alice, c):
            await closable.aclose()
        for irc in (bob, fresh):
            await irc.stream.aclose()


# ------------------------------------------------------------------ bugs found by the fuzz


@pytest.mark.parametrize(
    "line",
    [
        "REDACT #den \u00b2",
        "REDACT #den \u2460",
        "CHATHISTORY BEFORE #den msgid=\u00b2 10",
        "CHATHISTORY BETWEEN #den msgid=1 msgid=\u2460 10",
    ],
)
async def test_a_non_decimal_digit_in_a_msgid_is_refused(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, line: str
) -> None:
    """A msgid of digits that are not decimal digits gets FAIL, and the connection stays."""
    server = await start_server(irc_port=0)
    assert server.irc_port is not None
    with trio.fail_after(10):
        c = await IrcClient.connect(server.irc_port)
        await c.register("Probe", "draft/chathistory", "draft/message-redaction")
        await c.join("#den")
        await c.send(line)
        await c.send("PING :after")
        try:
            answers = await c.until(" PONG ")
        except IrcClosed:
            pytest.fail(f"{line!r} closed the connection without an answer: {c.seen[-3:]}")
        assert any(" FAIL " in a for a in answers), answers
        crashes = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not crashes, crashes


@pytest.mark.parametrize(
    "line",
    [
        "JOIN ,#x",
        "PART :#a b",
        "KICK #den a,,b",
        "WHOIS :a b",
        "TOPIC :#a b",
        "MODE #den :+ z",
        "CAP :a b",
        "REDACT #den :1 2",
        "MARKREAD #den :timestamp=a b",
        "CHATHISTORY LATEST #den * :",
        "CHATHISTORY LATEST #den * :1 0",
    ],
)
async def test_a_parameter_that_cannot_be_repeated_is_refused(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, line: str
) -> None:
    """A parameter with a space, or an empty one, gets its numeric or FAIL; the link stays."""
    server = await start_server(irc_port=0)
    assert server.irc_port is not None
    with trio.fail_after(10):
        c = await IrcClient.connect(server.irc_port)
        await c.register("Probe", "draft/chathistory", "draft/message-redaction")
        await c.join("#den")
        await c.send(line)
        await c.send("PING :after")
        try:
            answers = await c.until(" PONG ")
        except IrcClosed:
            pytest.fail(f"{line!r} closed the connection without an answer: {c.seen[-3:]}")
        assert any(REFUSAL.match(a) for a in answers), answers
        crashes = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not crashes, crashes


async def test_a_long_topic_reaches_irc_within_512_bytes(start_server: StartServer) -> None:
    """A topic of 300 four-byte characters reaches IRC users in lines of at most 512 bytes."""
    server = await start_server(irc_port=0)
    assert server.irc_port is not None
    with trio.fail_after(10):
        souvik = await login(server.port, "Souvik", "lobby")
        ritam = IrcClient(await trio.open_tcp_stream("127.0.0.1", server.irc_port))
        await ritam.register("Ritam")
        await ritam.join("#lobby")
        await souvik.send(type="topic", room="lobby", text="\U0001f600" * 300, id="t")
        await souvik.expect("topic", re="t")
        live = await ritam.expect(" TOPIC #lobby ")
        later = IrcClient(await trio.open_tcp_stream("127.0.0.1", server.irc_port))
        await later.register("Rumi")
        shown = [line for line in await later.join("#lobby") if " 332 " in line]
        await later.send("LIST")
        listed = [line for line in await later.until(" 323 ") if " 322 " in line]
        for line in [live, *shown, *listed]:
            assert len(line.encode()) + 2 <= 512, f"{len(line.encode()) + 2} bytes: {line[:80]}"


async def test_too_many_targets_is_answered_within_512_bytes(start_server: StartServer) -> None:
    """PRIVMSG to a hundred targets gets a 407 of at most 512 bytes."""
    server = await start_server(irc_port=0)
    assert server.irc_port is not None
    with trio.fail_after(10):
        c = IrcClient(await trio.open_tcp_stream("127.0.0.1", server.irc_port))
        await c.register("Ritam")
        await c.send("PRIVMSG " + ",".join(f"#target{i}" for i in range(50)) + " :hi")
        line = await c.expect(" 407 ")
        assert len(line.encode()) + 2 <= 512, f"{len(line.encode()) + 2} bytes"
