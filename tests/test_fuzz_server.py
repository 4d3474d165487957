"""Hostile input at a live server over loopback, while two honest clients chat (guarantee 6).

A seeded generator builds the hostile frames: deep nesting, NaN/Infinity,
1e400, booleans as integers, integers past 2^53, lone surrogates, control
characters, wrong types in every field of every frame type, duplicate keys,
random bytes, byte-flipped frames, overlong lines, half a frame then a close,
a hello then garbage. Each is built so that no reading of it is a valid frame:
every one must be answered by exactly the errors its lines call for (one per
non-blank line), and the connection carries on (PROTOCOL.md sections 1 and 5).
Each hostile frame is followed by a sentinel `ping`, whose `pong` marks the end
of that frame's answers and resets the errors-in-a-row count.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from chat_client import ChatClient, Closed, login
from harness import RunningServer, StartServer

from trio_chat.protocol import MAX_FRAME

pytestmark = pytest.mark.trio

SEED = 20261124
HOSTILE_CONNECTIONS = 4  # the first never says hello
RANDOM_BLOBS = 60  # random-byte payloads per hostile connection
FLIPPED = 60  # byte-flipped frames per hostile connection
CLOSERS = 24  # connections that send half a frame, or a hello and garbage, then close
MIN_HONEST = 25  # messages each honest client sends at least


@dataclass(frozen=True)
class Hostile:
    payload: bytes  # ends with LF
    errors: int  # the error frames it must get
    kind: str


def j(value: Any) -> str:
    """Raw JSON text (lone surrogates come out as \\ud800 escapes)."""
    return json.dumps(value)


def obj(*pairs: tuple[str, str]) -> bytes:
    """A JSON object from raw value texts, so NaN, 1e400 and duplicate keys can be written."""
    return ("{" + ",".join(f"{j(k)}:{v}" for k, v in pairs) + "}").encode()


# ------------------------------------------------------------------ the hostile corpus

WRONG = ["null", "true", "false", "1.5", "-0.5", "[]", "{}", '["x"]', '{"a":1}']
STR_WRONG = [*WRONG, "0", "-1", "1e400", "NaN"]
SURROGATES = [j("\ud800"), j("a\udfffb"), j("\udc00\ud800"), j("x" * 10 + "\udbff")]
NAME_BAD = [
    *STR_WRONG,
    *SURROGATES,
    j(""),
    j("a b"),
    j("x" * 33),
    j("\u00e9" * 33),
    j("a\x00"),
    j("tab\t"),
    j("new\nline"),
    j("a/b"),
    j("smile\U0001f600"),
    j("\u202eevil"),
]
TEXT_BAD = [
    *STR_WRONG,
    *SURROGATES,
    j(""),
    j("   "),
    j("\n\t "),
    j("a\rb"),
    j("a\x00b"),
    j("bell\x07"),
    j("\x1b[2J"),
    j("del\x7f"),
    j("nel\x85"),
    j("x" * 4001),
]
INT_BAD = [
    *WRONG,
    j("1"),
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "9007199254740993",
    "-9007199254740993",
    "1" + "0" * 400,
]
ID_BAD = [
    *WRONG[:5],  # null, true, false, 1.5, -0.5
    "[]",
    "{}",
    "[1]",
    j(""),
    j("i" * 65),
    "NaN",
    "Infinity",
    "1e400",
    "9007199254740993",
    "-9007199254740993",
    "1" + "0" * 400,
    *SURROGATES,
]
PASSWORD_BAD = [*STR_WRONG, j("short"), j("p" * 257), j("\ud800" * 8), j("abcdefgh\udfff")]
NONCE_BAD = [*STR_WRONG, j(""), j("n" * 65), *SURROGATES]
FREE_TEXT_BAD = [*STR_WRONG, *SURROGATES]  # hello's client, quit's reason

# frame type -> its valid fields, and the fields to spoil one at a time
SCHEMA: dict[str, tuple[list[tuple[str, str]], dict[str, list[str]]]] = {
    "hello": (
        [("name", j("Intruder"))],
        {
            "name": NAME_BAD,
            "password": PASSWORD_BAD,
            "protocol": [*INT_BAD, "0", "2"],
            "client": FREE_TEXT_BAD,
            "id": ID_BAD,
        },
    ),
    "join": (
        [("room", j("fuzz"))],
        {
            "room": NAME_BAD,
            "since": [*INT_BAD, "-1"],
            "limit": [*INT_BAD, "0", "501"],
            "id": ID_BAD,
        },
    ),
    "part": ([("room", j("lobby"))], {"room": NAME_BAD, "id": ID_BAD}),
    "say": (
        [("room", j("lobby")), ("text", j("hi"))],
        {"room": NAME_BAD, "text": TEXT_BAD, "nonce": NONCE_BAD, "id": ID_BAD},
    ),
    "history": (
        [("room", j("lobby"))],
        {"room": NAME_BAD, "before": [*INT_BAD, "0", "-1"], "limit": [*INT_BAD, "0"], "id": ID_BAD},
    ),
    "who": ([("room", j("lobby"))], {"room": NAME_BAD, "id": ID_BAD}),
    "rooms": ([], {"id": ID_BAD}),
    "ping": ([], {"id": ID_BAD}),
    "pong": ([], {"id": ID_BAD}),
    "quit": ([], {"reason": FREE_TEXT_BAD, "id": ID_BAD}),
}


def spoiled_fields() -> Iterator[tuple[str, bytes]]:
    """Every frame type with one field at a time replaced by a wrong value."""
    for kind, (base, spoilable) in SCHEMA.items():
        for key, values in spoilable.items():
            for value in values:
                fields = [(k, v) for k, v in base if k != key] + [(key, value)]
                yield f"wrong:{kind}.{key}", obj(("type", j(kind)), *fields)
    # direct messages and direct history: the `to` and `with` names
    for value in NAME_BAD:
        yield "wrong:say.to", obj(("type", j("say")), ("to", value), ("text", j("hi")))
        yield "wrong:history.with", obj(("type", j("history")), ("with", value))


FIXED: list[tuple[str, bytes]] = [
    # not a frame at all
    *(("not_object", raw) for raw in (b"[]", b"[1]", b'"ping"', b"1", b"null", b"true", b"NaN")),
    ("not_object", b"1e400"),
    ("no_type", b"{}"),
    *(("bad_type", obj(("type", v))) for v in ("null", "1", "true", '["ping"]', "{}", "1e400")),
    *(("unknown_type", obj(("type", j(v)))) for v in ("", "nope", "pingg", "\ud800", "x" * 100)),
    # missing or conflicting fields
    ("missing", obj(("type", j("hello")))),
    ("missing", obj(("type", j("join")))),
    ("missing", obj(("type", j("part")))),
    ("missing", obj(("type", j("who")))),
    ("missing", obj(("type", j("history")))),
    ("missing", obj(("type", j("say")), ("room", j("lobby")))),
    ("missing", obj(("type", j("say")), ("text", j("x")))),
    ("both", obj(("type", j("say")), ("room", j("lobby")), ("to", j("A")), ("text", j("x")))),
    ("both", obj(("type", j("history")), ("room", j("lobby")), ("with", j("A")))),
    # honest, but not a member of lobby: never seen by its members
    ("not_in_room", obj(("type", j("say")), ("room", j("lobby")), ("text", j("sneaky")))),
    ("not_in_room", obj(("type", j("history")), ("room", j("lobby")))),
    # duplicate keys, each copy wrong on its own
    ("duplicate", b'{"type":"bogus","type":"nope"}'),
    ("duplicate", b'{"type":"join","room":"","room":" "}'),
    ("duplicate", b'{"type":"ping","id":true,"id":[]}'),
    ("duplicate", b'{"type":"say","room":"lobby","text":"a","text":"b"}'),
    # not JSON, or not UTF-8
    ("syntax", b'{"type":"ping",}'),
    ("syntax", b"{'type':'ping'}"),
    ("syntax", b'{type:"ping"}'),
    ("syntax", b'{"type":"ping"} trailing'),
    ("syntax", b'{"type":"ping"}{"type":"ping"}'),
    ("syntax", b'{"type":"ping" /* c */}'),
    ("syntax", b'{"type":"ping","id":01}'),
    ("syntax", b'{"type":"ping","id":0x10}'),
    ("utf8", b'{"type":"ping","id":"\xff"}'),
    ("utf8", b'{"type":"say","room":"lobby","text":"\xed\xa0\x80"}'),  # an encoded surrogate
    ("utf8", b'{"type":"say","room":"lobby","text":"\xc3"}'),
    ("utf8", b'{"type":"ping","id":"\xc0\xaf"}'),  # overlong encoding
    ("raw_control", b'{"type":"say","room":"lobby","text":"a\x01b"}'),
    ("raw_control", b'{"type":"ping","id":"a\tb"}'),
    ("raw_control", b'{"type":"say","room":"lobby","text":"a\x00"}'),
    # deep nesting (a RecursionError in json.loads), under and over the frame limit
    ("nesting", b"[" * 8000 + b"]" * 8000),
    ("nesting", b"[" * 16000),
    ("nesting", obj(("type", j("say")), ("room", j("lobby")), ("text", "[" * 5000 + "]" * 5000))),
    ("nesting", b'{"a":' * 2500 + b"1" + b"}" * 2500),
    ("nesting", b'{"type":"ping","id":' + b"[" * 8000 + b"]" * 8000 + b"}"),
    # overlong lines
    ("overlong", b"a" * 20000),
    ("overlong", obj(("type", j("say")), ("room", j("lobby")), ("text", j("x" * (MAX_FRAME + 1))))),
    ("overlong", b"{" + b" " * MAX_FRAME + b'"type":"ping"}'),
]


def corpus() -> list[tuple[str, bytes]]:
    return [*spoiled_fields(), *FIXED]


def count_errors(data: bytes) -> int:
    """Error frames the server owes for `data` (whole lines): one per non-blank line."""
    lines = data.split(b"\n")
    assert lines[-1] == b""
    count = 0
    for line in lines[:-1]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line and not line.isspace():
            count += 1
    return count


def random_blob(rng: random.Random) -> Hostile:
    """Random bytes, cut into a few lines (fewer than 20, so errors never reach 20 in a row)."""
    data = bytearray(rng.randbytes(rng.randint(1, 3000)).replace(b"\n", b""))
    for _ in range(rng.randint(0, 12)):
        data.insert(rng.randrange(len(data) + 1), 0x0A)
    data += b"\n"
    return Hostile(bytes(data), count_errors(bytes(data)), "random_bytes")


FLIP_BASES = [  # frames that stay wrong however their bytes change: these peers are in no room
    b'{"type":"say","room":"lobby","text":"hello there","id":"x1"}',
    b'{"type":"history","room":"lobby","limit":5}',
    b'{"type":"part","room":"lobby"}',
]


def flipped(rng: random.Random) -> Hostile:
    data = bytearray(rng.choice(FLIP_BASES))
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.choice([b for b in range(256) if b not in (10, 13)])
    return Hostile(bytes(data) + b"\n", 1, "flipped")


def hostile_plan(rng: random.Random, items: list[tuple[str, bytes]]) -> list[Hostile]:
    plan = [Hostile(payload + b"\n", 1, kind) for kind, payload in items]
    plan += [random_blob(rng) for _ in range(RANDOM_BLOBS)]
    plan += [flipped(rng) for _ in range(FLIPPED)]
    rng.shuffle(plan)
    return plan


# ------------------------------------------------------------------ the test


@dataclass
class Tally:
    frames: int = 0
    errors: int = 0
    closes: int = 0
    kinds: set[str] | None = None


async def throw(
    port: int, index: int, plan: list[Hostile], rng: random.Random, tally: Tally
) -> None:
    """Send each hostile payload and a sentinel ping; the answers before the pong are counted."""
    c = await ChatClient.connect(port)
    if index:  # the first hostile connection stays before hello the whole time
        assert (await c.hello(f"Hostile{index}"))["type"] == "welcome"
    for n, item in enumerate(plan):
        sentinel = f"s{index}-{n}"
        data = item.payload + j({"type": "ping", "id": sentinel}).encode() + b"\n"
        if rng.random() < 0.2:  # now and then in pieces, cut anywhere
            cut = rng.randrange(1, len(data))
            await c.send_raw(data[:cut])
            await trio.sleep(0.001)  # so that the server may read the first piece alone
            await c.send_raw(data[cut:])
        else:
            await c.send_raw(data)
        answers: list[dict[str, Any]] = []
        try:
            while (frame := await c.recv()) != {"type": "pong", "re": sentinel}:
                answers.append(frame)
        except Closed:
            pytest.fail(f"closed after {item.kind} {item.payload[:200]!r}; answers {answers}")
        assert all(f["type"] == "error" for f in answers), (item, answers)
        assert len(answers) == item.errors, (item.kind, item.payload[:200], answers)
        tally.frames += 1
        tally.errors += len(answers)
        assert tally.kinds is not None
        tally.kinds.add(item.kind)
    await c.aclose()


async def closers(
    port: int, rng: random.Random, items: list[tuple[str, bytes]], tally: Tally
) -> None:
    """Half a frame then a close; a hello then garbage then a close; 25 errors in a row."""
    for n in range(CLOSERS):
        c = await ChatClient.connect(port)
        if n % 2:
            assert (await c.hello(f"Closer{n}"))["type"] == "welcome"
            await c.send_raw(rng.randbytes(rng.randint(1, 500)).replace(b"\n", b""))
        else:
            _, payload = rng.choice(items)
            await c.send_raw(payload[: max(1, len(payload) // 2)])  # half a frame, no LF
        await trio.sleep(0.01 * rng.random())
        await c.aclose()
        tally.closes += 1
    for n in range(3):
        c = await login(port, f"Babbler{n}")
        await c.send_raw(b"garbage\n" * 25)
        codes = []
        while (frame := await c.recv())["type"] == "error":
            codes.append(frame["code"])
        assert codes == ["bad_frame"] * 20
        assert frame["type"] == "bye" and frame["reason"] == "too_many_errors"
        assert await c.closed()
        tally.closes += 1


async def chat(
    client: ChatClient, me: str, other: str, stop: trio.Event, rng: random.Random, sent: list[str]
) -> None:
    n = 0
    while n < MIN_HONEST or not stop.is_set():
        text = f"{me} says {n}"
        await client.send(type="say", room="lobby", text=text)
        sent.append(text)
        n += 1
        await trio.sleep(0.03 * rng.random())
    await client.send(type="say", room="lobby", text=f"{me} is done")
    sent.append(f"{me} is done")


async def listen(client: ChatClient, me: str, other: str, got: list[dict[str, Any]]) -> None:
    done = {f"{me} is done", f"{other} is done"}
    while done:
        frame = await client.recv(timeout=15)
        assert frame["type"] in ("message", "presence"), frame  # no error, no bye
        if frame["type"] == "message":
            got.append(frame)
            done.discard(frame["text"])


async def test_hostile_connections_cost_only_themselves(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(SEED)
    items = corpus()
    with trio.fail_after(30):
        server: RunningServer = await start_server()
        a = await login(server.port, "Alice", "lobby")
        b = await login(server.port, "Bob", "lobby")
        await a.expect("presence", name="Bob", state="joined")
        # the corpus is shared out among the hostile connections, each item sent once
        shares = [items[i::HOSTILE_CONNECTIONS] for i in range(HOSTILE_CONNECTIONS)]
        plans = [hostile_plan(random.Random(rng.random()), share) for share in shares]
        tally = Tally(kinds=set())
        sent: dict[str, list[str]] = {"Alice": [], "Bob": []}
        got: dict[str, list[dict[str, Any]]] = {"Alice": [], "Bob": []}
        hostile_done = trio.Event()
        start = trio.current_time()
        async with trio.open_nursery() as honest:
            honest.start_soon(
                chat, a, "Alice", "Bob", hostile_done, random.Random(1), sent["Alice"]
            )
            honest.start_soon(chat, b, "Bob", "Alice", hostile_done, random.Random(2), sent["Bob"])
            honest.start_soon(listen, a, "Alice", "Bob", got["Alice"])
            honest.start_soon(listen, b, "Bob", "Alice", got["Bob"])
            async with trio.open_nursery() as hostile:
                for index, plan in enumerate(plans):
                    hostile.start_soon(throw, server.port, index, plan, random.Random(index), tally)
                hostile.start_soon(closers, server.port, random.Random(99), items, tally)
            hostile_done.set()
        elapsed = trio.current_time() - start

        # the honest ones missed nothing: every message of both, in order, ids increasing
        for me in ("Alice", "Bob"):
            ids = [m["id"] for m in got[me]]
            assert ids == sorted(set(ids)), f"{me}: ids not increasing"
            for sender in ("Alice", "Bob"):
                texts = [m["text"] for m in got[me] if m["from"] == sender]
                assert texts == sent[sender], f"{me} missed messages of {sender}"
            assert {m["from"] for m in got[me]} == {"Alice", "Bob"}
        assert [m["id"] for m in got["Alice"]] == [m["id"] for m in got["Bob"]]

        # every hostile frame was answered; the server logged no crash
        assert tally.frames == sum(len(plan) for plan in plans)
        assert tally.errors >= tally.frames
        crashes = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not crashes, crashes

        # and a newcomer is served at once
        with trio.fail_after(2):
            c = await login(server.port, "Newcomer")
            await c.send(type="ping", id="last")
            assert await c.expect("pong") == {"type": "pong", "re": "last"}
            joined = await c.join("lobby", limit=500)
            assert [m["id"] for m in joined["history"]] == [m["id"] for m in got["Alice"]]
        print(
            f"\n{tally.frames} hostile payloads ({len(items)} corpus frames,"
            f" {len(tally.kinds or ())} kinds), {tally.errors} errors, {tally.closes} closes;"
            f" honest: {len(sent['Alice'])}+{len(sent['Bob'])} messages; {elapsed:.2f} s"
        )
        for client in (a, b, c):
            await client.aclose()
