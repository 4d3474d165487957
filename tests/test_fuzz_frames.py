"""The new JSON frames (PROTOCOL.md sections 9 to 11) with every field wrong, and a crash test.

1. Every field of edit, delete, search, history (after), say (reply_to, action), mark,
   directs, topic, set, invite, kick, ban, unban, bans, op and deop, spoiled one at a
   time: wrong JSON types, out of range, ids of other conversations, of deleted
   messages and of entries that are not messages, invalid names and names of nobody.
   Each gets one `error` with `re`, and nothing changes: the room's log, its state,
   its bans, the room list and the direct conversations read the same before and after.
2. The same frames, shuffled with byte-flipped ones, from several hostile connections
   at once while two honest users chat: they miss nothing and see nothing else.
3. A server process under says, edits, deletes, topics and marks, killed with SIGKILL
   at a random moment, twice: the file passes `integrity_check`, the full-text index
   matches the table, and every acknowledged entry is there after a restart (an
   acknowledged delete leaves no text, in the table or in the index).
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from chat_client import ChatClient, Closed, login
from harness import RunningServer, StartServer
from test_process import ServerProcess, all_history

from trio_chat.core.errors import ERROR_CODES

pytestmark = pytest.mark.trio

SEED = 20261130
PW = "a-long-enough-password"
HOSTILE = 3  # connections sending the shuffled corpus at once
FLIPPED = 80  # byte-flipped frames per hostile connection
MIN_HONEST = 25


def j(value: Any) -> str:
    """Raw JSON text (lone surrogates come out as \\ud800 escapes)."""
    return json.dumps(value)


def obj(*pairs: tuple[str, str]) -> str:
    """A JSON object from raw value texts, so NaN and 1e400 can be written."""
    return "{" + ",".join(f"{j(k)}:{v}" for k, v in pairs) + "}"


# ------------------------------------------------------------------ wrong values

NOT_INT = [
    j("5"), "true", "false", "null", "[]", "{}", "[1]", '{"a":1}', "NaN", "Infinity",
    "-Infinity", "1e400", "1.5", "1.0", "9007199254740993", "-9007199254740993",
    "1" + "0" * 400,
]  # fmt: skip
ID_POSITIVE = [*NOT_INT, "0", "-1"]  # where an id of 1 or more is due
NOT_NAME = [
    "1", "true", "null", "[]", "{}", '["a"]', "NaN", "1e400", j(""), j("a b"), j("x" * 33),
    j("a/b"), j("\ud800"), j("tab\t"), j("smile\U0001f600"), j("\u202eevil"), j("#fort"),
]  # fmt: skip
NOT_TEXT = [
    "1", "true", "null", "[]", "{}", "NaN", j(""), j("   "), j("a\rb"), j("a\x00b"),
    j("\x1b[2J"), j("nel\x85"), j("\ud800"), j("x" * 4001),
]  # fmt: skip
NOT_TOPIC = [
    "1", "true", "null", "[]", "{}", "NaN", j("a\nb"), j("a\tb"), j("a\x00"), j("\x7f"),
    j("\x85"), j("\ud800"), j("t" * 301), j("\u0344" * 300),
]  # fmt: skip
NOT_REASON = ["1", "true", "[]", "{}", "NaN", j("\ud800"), j("r" * 401)]
NOT_BOOL = [j("true"), "1", "0", "[]", "{}", "NaN", "null"]
NOT_QUERY = ["1", "true", "null", "[]", "{}", "NaN", j(""), j("q" * 201), j("\ud800")]
NOT_REQUEST_ID = ["true", "null", "1.5", "[]", "{}", j(""), j("i" * 65), "NaN", "1e400"]
# 200 characters of nothing but search syntax: results (maybe none) or invalid_field
SYNTAX = [
    '"' * 200, "*" * 200, "^" * 200, "(" * 100 + ")" * 100, "a* " * 66 + "b*",
    "NEAR(" * 40, "AND OR NOT " * 18 + "AN", "-" * 200, ":" * 200, "{text}:" * 28 + "abcd",
    '"a" + "b" ' * 20, "x*" * 100, "\\" * 200, "'" * 200, "%_" * 100, "a OR " * 40,
]  # fmt: skip


@dataclass
class Ids:
    """Entries of the fixture: what the corpus's ids point at."""

    kept: int = 0  # Owner's message in fort
    deleted: int = 0  # Owner's message in fort, deleted
    edit: int = 0  # the edit entry of `kept`
    delete: int = 0  # the delete entry of `deleted`
    topic: int = 0  # the topic entry of fort
    watcher: int = 0  # Watcher's message in fort (Owner may delete it, not edit it)
    other_room: int = 0  # Other's message in room `other`
    other_direct: int = 0  # Other's direct message to Third
    own_direct: int = 0  # Owner's direct message to Other

    def foreign(self) -> list[int]:
        """Ids that are no message the Owner may edit or delete, or answer in fort."""
        return [
            self.deleted, self.edit, self.delete, self.topic, self.other_room,
            self.other_direct, 10**12,
        ]  # fmt: skip


@dataclass(frozen=True)
class Bad:
    kind: str
    text: str  # the frame without its LF and without `id` (added when sent)
    errors: bool = True  # False: results or invalid_field (the search syntax)


def spoil(kind: str, base: list[tuple[str, str]], key: str, values: list[str]) -> Iterator[Bad]:
    for value in values:
        fields = [(k, v) for k, v in base if k != key] + [(key, value)]
        yield Bad(f"{kind}.{key}", obj(("type", j(kind)), *fields))


def corpus(ids: Ids) -> list[Bad]:
    """Every new frame with each field wrong, as the Owner of fort sends them."""
    fort = [("room", j("fort"))]
    out: list[Bad] = []
    add = out.extend
    # section 9: edit, delete, say's reply_to, history's after, search
    edit = [("message", j(ids.kept)), ("text", j("new text"))]
    add(spoil("edit", edit, "message", [*ID_POSITIVE, *map(j, ids.foreign()), j(ids.watcher)]))
    add(spoil("edit", edit, "text", NOT_TEXT))
    add([Bad("edit.missing", obj(("type", j("edit")), ("text", j("x"))))])
    add([Bad("edit.missing", obj(("type", j("edit")), ("message", j(ids.kept))))])
    add(
        spoil(
            "delete", [("message", j(ids.kept))], "message", [*ID_POSITIVE, *map(j, ids.foreign())]
        )
    )
    add([Bad("delete.missing", obj(("type", j("delete"))))])
    say = [*fort, ("text", j("a reply")), ("reply_to", j(ids.kept))]
    add(spoil("say", say, "reply_to", [*ID_POSITIVE, *map(j, ids.foreign())]))
    add(spoil("say", say, "action", NOT_BOOL))
    to_other = [("to", j("Other")), ("text", j("a reply")), ("reply_to", j(ids.kept))]
    add(spoil("say", to_other, "reply_to", [j(ids.kept), j(ids.other_direct)]))  # not this one
    add(spoil("history", [*fort, ("after", "1")], "after", [*NOT_INT, "-1"]))
    add(spoil("history", [*fort, ("after", "1")], "room", [*NOT_NAME, j("other")]))
    add([Bad("history.both", obj(("type", j("history")), *fort, ("with", j("Other"))))])
    search = [*fort, ("query", j("hello"))]
    add(spoil("search", search, "query", NOT_QUERY))
    add(spoil("search", search, "room", [*NOT_NAME, j("other"), j("nowhere")]))
    add(spoil("search", [("with", j("Other")), ("query", j("hi"))], "with", NOT_NAME))
    add(spoil("search", search, "from", NOT_NAME))
    add(spoil("search", search, "before", ID_POSITIVE))
    add(spoil("search", search, "limit", [*ID_POSITIVE, "101"]))
    add([Bad("search.both", obj(("type", j("search")), *search, ("with", j("Other"))))])
    add([Bad("search.missing", obj(("type", j("search")), *fort))])
    add(Bad("search.syntax", obj(("type", j("search")), ("query", j(q))), False) for q in SYNTAX)
    # section 10: mark, directs
    mark = [*fort, ("upto", j(ids.kept))]
    add(spoil("mark", mark, "upto", [*ID_POSITIVE, j(10**12)]))
    add(spoil("mark", mark, "room", [*NOT_NAME, j("other")]))
    add(spoil("mark", [("with", j("Other")), ("upto", "1")], "with", NOT_NAME))
    add([Bad("mark.both", obj(("type", j("mark")), *mark, ("with", j("Other"))))])
    add([Bad("mark.missing", obj(("type", j("mark")), ("upto", "1")))])
    add([Bad("mark.missing", obj(("type", j("mark")), *fort))])
    # section 11: topic, set, invite, kick, ban, unban, bans, op, deop
    add(spoil("topic", [*fort, ("text", j("t"))], "room", [*NOT_NAME, j("other")]))
    add(spoil("topic", [*fort, ("text", j("t"))], "text", NOT_TOPIC))
    add([Bad("topic.missing", obj(("type", j("topic")), *fort))])
    add(spoil("set", [*fort, ("private", "false")], "room", [*NOT_NAME, j("other")]))
    add(spoil("set", [*fort], "private", NOT_BOOL))
    add(spoil("set", [*fort], "owner", [*NOT_NAME[:2], *NOT_NAME[3:], j("Third"), j("Ghost")]))
    for act in ("invite", "kick", "ban", "op", "deop"):
        base = [*fort, ("name", j("Watcher" if act in ("kick", "ban") else "Third"))]
        add(spoil(act, base, "room", [*NOT_NAME, j("other")]))
        add(spoil(act, base, "name", NOT_NAME))
        add([Bad(f"{act}.missing", obj(("type", j(act)), *fort))])
    for act in ("invite", "kick", "op", "deop"):
        add(spoil(act, [*fort, ("name", j("Watcher"))], "name", [j("Ghost")]))  # nobody
    for act in ("kick", "ban", "op", "deop"):
        add(spoil(act, [*fort, ("name", j("Watcher"))], "name", [j("Owner"), j("OWNER")]))
    for act in ("kick", "ban"):
        add(spoil(act, [*fort, ("name", j("Watcher"))], "reason", NOT_REASON))
    add([Bad("ban.server", obj(("type", j("ban")), ("name", j("Watcher"))))])  # not an admin
    add(spoil("unban", [*fort, ("name", j("Watcher"))], "room", [*NOT_NAME, j("other")]))
    add(spoil("unban", [*fort, ("name", j("Watcher"))], "name", NOT_NAME))
    add([Bad("unban.missing", obj(("type", j("unban")), ("name", j("Watcher"))))])
    add(spoil("bans", fort, "room", [*NOT_NAME, j("other")]))
    add([Bad("bans.missing", obj(("type", j("bans"))))])
    return out


def with_id(bad: Bad, rid: str) -> bytes:
    return (bad.text[:-1] + f',"id":{j(rid)}' + "}\n").encode()


# ------------------------------------------------------------------ the fixture


async def answer(client: ChatClient, rid: str) -> dict[str, Any]:
    """The frame that carries `re` = rid; any other frame first fails the test."""
    frame = await client.recv()
    assert frame.get("re") == rid, frame
    return frame


async def request(client: ChatClient, rid: str, **fields: Any) -> dict[str, Any]:
    """Send a frame with id `rid`; its answer (other frames before it are skipped)."""
    await client.send(id=rid, **fields)
    while (frame := await client.recv()).get("re") != rid:
        pass
    return frame


async def settle(*clients: ChatClient) -> None:
    """Read each client's frames up to the pong of a ping: nothing is left unread."""
    for client in clients:
        await request(client, "settle", type="ping")


@dataclass
class Cast:
    owner: ChatClient
    other: ChatClient
    watcher: ChatClient
    ids: Ids


async def cast(server: RunningServer) -> Cast:
    """Owner owns fort (a message, an edit, a deletion, a topic); Other owns `other`; Third
    has an account and is offline; Watcher, a guest, sits in fort."""
    third = await login(server.port, "Third", password=PW)
    await third.aclose()
    owner = await login(server.port, "Owner", "fort", password=PW)
    other = await login(server.port, "Other", "other", password=PW)
    watcher = await login(server.port, "Watcher", "fort")
    await owner.expect("presence", name="Watcher")
    ids = Ids()
    ids.kept = (await owner.say("fort", "hello kept"))["id"]
    ids.deleted = (await owner.say("fort", "hello deleted"))["id"]
    ids.edit = (await request(owner, "e", type="edit", message=ids.kept, text="hello edited"))["id"]
    ids.delete = (await request(owner, "d", type="delete", message=ids.deleted))["id"]
    ids.topic = (await request(owner, "t", type="topic", room="fort", text="the topic"))["id"]
    ids.watcher = (await watcher.say("fort", "watcher speaks"))["id"]
    ids.other_room = (await other.say("other", "other room"))["id"]
    ids.other_direct = (await request(other, "od", type="say", to="Third", text="psst"))["id"]
    ids.own_direct = (await request(owner, "md", type="say", to="Other", text="hi"))["id"]
    await other.expect("message", id=ids.own_direct)
    await settle(owner, other, watcher)
    return Cast(owner, other, watcher, ids)


async def snapshot(c: Cast) -> list[dict[str, Any]]:
    """Everything the corpus must not change, as Owner and Other read it."""
    found = []
    asks: list[tuple[ChatClient, dict[str, Any]]] = [
        (c.owner, {"type": "join", "room": "fort", "limit": 500}),
        (c.owner, {"type": "history", "room": "fort", "after": 0, "limit": 500}),
        (c.owner, {"type": "bans", "room": "fort"}),
        (c.owner, {"type": "who", "room": "fort"}),
        (c.owner, {"type": "rooms"}),
        (c.owner, {"type": "directs"}),
        (c.owner, {"type": "history", "with": "Other", "limit": 500}),
        (c.other, {"type": "join", "room": "other", "limit": 500}),
        (c.other, {"type": "bans", "room": "other"}),
        (c.other, {"type": "directs"}),
    ]
    for n, (client, ask) in enumerate(asks):
        frame = await request(client, f"snap{n}", **ask)
        assert frame["type"] != "error", frame
        found.append({k: v for k, v in frame.items() if k != "re"})
    return found


def check_error(frame: dict[str, Any], rid: str | None, bad: Bad) -> None:
    assert frame["type"] == "error", (bad, frame)
    assert frame["code"] in ERROR_CODES and frame["message"], (bad, frame)
    assert frame.get("re") == rid, (bad, frame)


async def test_every_new_frame_with_a_wrong_field_is_an_error_and_changes_nothing(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Each spoiled frame gets one error with its `re`; the log, rooms and bans stay the same."""
    with trio.fail_after(30):
        server = await start_server()
        c = await cast(server)
        items = corpus(c.ids)
        before = await snapshot(c)
        codes: dict[str, int] = {}
        start = trio.current_time()
        for n, bad in enumerate(items):
            rid = f"b{n}"
            ping = j({"type": "ping", "id": f"p{n}"}).encode() + b"\n"  # ends errors in a row
            await c.owner.send_raw(with_id(bad, rid) + ping)
            frame = await answer(c.owner, rid)  # nothing comes before it: no fan-out
            assert await c.owner.recv() == {"type": "pong", "re": f"p{n}"}
            if bad.errors:
                check_error(frame, rid, bad)
            else:
                assert frame["type"] == "results" or frame.get("code") == "invalid_field", frame
            key = frame.get("code", frame["type"])
            codes[key] = codes.get(key, 0) + 1
        # an invalid `id` is an error without `re`, whatever the frame (directs has no other)
        directs = Bad("directs.id", obj(("type", j("directs"))))
        for n, bad in enumerate([directs, *items[:: max(1, len(items) // 40)]]):
            for value in NOT_REQUEST_ID:
                await c.owner.send_raw((bad.text[:-1] + f',"id":{value}' + "}\n").encode())
                check_error(await c.owner.recv(), None, bad)
            await c.owner.send(type="ping", id=f"p{n}")  # errors in a row end here
            assert await c.owner.recv() == {"type": "pong", "re": f"p{n}"}
        # what needs an account, from a guest
        guest_only: list[dict[str, Any]] = [
            {"type": "directs"},
            {"type": "mark", "room": "fort", "upto": c.ids.kept},
            {"type": "history", "with": "Owner"},
            {"type": "search", "with": "Owner", "query": "hello"},
        ]
        for n, ask in enumerate(guest_only):
            frame = await request(c.watcher, f"g{n}", **ask)
            check_error(frame, f"g{n}", Bad("guest." + ask["type"], j(ask)))
            assert frame["code"] == "auth_required", frame
        elapsed = trio.current_time() - start
        after = await snapshot(c)
        assert after == before
        # Watcher and Other saw nothing of it
        await c.watcher.send(type="ping", id="w")
        assert await c.watcher.recv() == {"type": "pong", "re": "w"}
        await c.other.send(type="ping", id="o")
        assert await c.other.recv() == {"type": "pong", "re": "o"}
        crashes = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not crashes, crashes
        kinds = {bad.kind.split(".")[0] for bad in items}
        print(
            f"\n{len(items)} spoiled frames of {len(kinds)} types ({len({b.kind for b in items})}"
            f" fields), answers {codes}; {elapsed:.2f} s"
        )


@pytest.mark.parametrize("extra", [{}, {"owner": None}])
async def test_a_set_with_nothing_to_set_by_an_outsider_is_refused(
    start_server: StartServer, extra: dict[str, Any]
) -> None:
    """An outsider's `set` that sets nothing gets an error, and the members get nothing."""
    with trio.fail_after(10):
        server = await start_server()
        owner = await login(server.port, "Owner", "fort", password=PW)
        outsider = await login(server.port, "Outsider")
        reply = await request(outsider, "s", type="set", room="fort", **extra)
        await owner.send(type="ping", id="p")
        seen = await owner.recv()
        assert reply["type"] == "error", reply
        assert seen == {"type": "pong", "re": "p"}, f"a member got {seen}"


# ------------------------------------------------------------------ the hostile mix


def flipped(rng: random.Random, items: list[Bad]) -> bytes:
    """A corpus frame with a few bytes changed."""
    data = bytearray(rng.choice(items).text.encode())
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.choice([b for b in range(256) if b not in (10, 13)])
    return bytes(data) + b"\n"


@dataclass
class Tally:
    frames: int = 0
    errors: int = 0
    closes: int = 0
    answers: dict[str, int] = field(default_factory=dict)


async def hostile(port: int, index: int, items: list[Bad], seed: float, tally: Tally) -> None:
    """Corpus frames in a random order with flipped ones between, a ping after each."""
    rng = random.Random(seed)
    name = f"Hostile{index}"
    extra = {"password": PW} if index else {}  # one guest, the others accounts
    c = await login(port, name, **extra)
    plan: list[tuple[Bad | None, bytes]] = [(bad, with_id(bad, "h")) for bad in items]
    plan += [(None, flipped(rng, items)) for _ in range(FLIPPED)]
    rng.shuffle(plan)
    for n, (bad, data) in enumerate(plan):
        await c.send_raw(data + j({"type": "ping", "id": f"s{n}"}).encode() + b"\n")
        got = []
        try:
            while (frame := await c.recv()) != {"type": "pong", "re": f"s{n}"}:
                got.append(frame)
        except Closed:  # a flip may make a quit: it ends with bye
            assert bad is None and got and got[-1]["type"] == "bye", (data, got)
            tally.closes += 1
            c = await login(port, name, **extra)
            continue
        assert len(got) == 1, (data, got)  # one answer per frame, no fan-out to anyone
        if bad is not None and bad.errors:
            check_error(got[0], "h", bad)
        kind = got[0].get("code", got[0]["type"])
        tally.answers[kind] = tally.answers.get(kind, 0) + 1
        tally.frames += 1
        tally.errors += got[0]["type"] == "error"
    await c.aclose()


async def chat(client: ChatClient, me: str, stop: trio.Event, sent: list[str]) -> None:
    rng = random.Random(me)
    n = 0
    while n < MIN_HONEST or not stop.is_set():
        text = f"{me} says {n}"
        await client.send(type="say", room="lobby", text=text)
        sent.append(text)
        n += 1
        await trio.sleep(0.03 * rng.random())
    await client.send(type="say", room="lobby", text=f"{me} is done")
    sent.append(f"{me} is done")


async def listen(client: ChatClient, got: list[dict[str, Any]]) -> None:
    done = {"Alice is done", "Bob is done"}
    while done:
        frame = await client.recv(timeout=15)
        assert frame["type"] == "message" and frame["room"] == "lobby", frame  # nothing else
        got.append(frame)
        done.discard(frame["text"])


async def test_hostile_new_frames_cost_only_their_senders(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Several connections send the spoiled frames at once; two honest users miss nothing."""
    rng = random.Random(SEED)
    with trio.fail_after(40):
        server = await start_server()
        c = await cast(server)
        items = [bad for bad in corpus(c.ids) if bad.errors]
        alice = await login(server.port, "Alice", "lobby")
        bob = await login(server.port, "Bob", "lobby")
        await alice.expect("presence", name="Bob")
        before = await snapshot(c)
        tally = Tally()
        sent: dict[str, list[str]] = {"Alice": [], "Bob": []}
        got: dict[str, list[dict[str, Any]]] = {"Alice": [], "Bob": []}
        stop = trio.Event()
        start = trio.current_time()
        async with trio.open_nursery() as honest:
            for me, client in (("Alice", alice), ("Bob", bob)):
                honest.start_soon(chat, client, me, stop, sent[me])
                honest.start_soon(listen, client, got[me])
            async with trio.open_nursery() as nursery:
                for index in range(HOSTILE):
                    share = items[index::HOSTILE]
                    nursery.start_soon(hostile, server.port, index, share, rng.random(), tally)
            stop.set()
        elapsed = trio.current_time() - start
        for me in ("Alice", "Bob"):
            for sender in ("Alice", "Bob"):
                texts = [m["text"] for m in got[me] if m["from"] == sender]
                assert texts == sent[sender], f"{me} missed messages of {sender}"
        assert [m["id"] for m in got["Alice"]] == [m["id"] for m in got["Bob"]]
        after = await snapshot(c)
        assert after == before, [(a, b) for a, b in zip(after, before, strict=True) if a != b]
        await c.watcher.send(type="ping", id="w")
        assert await c.watcher.recv() == {"type": "pong", "re": "w"}  # Watcher saw nothing
        crashes = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not crashes, crashes
        print(
            f"\n{tally.frames} hostile frames ({len(items)} spoiled, {HOSTILE * FLIPPED} flipped)"
            f" from {HOSTILE} connections, {tally.errors} errors, {tally.closes} closes,"
            f" answers {tally.answers}; honest {len(sent['Alice'])}+{len(sent['Bob'])};"
            f" {elapsed:.2f} s"
        )


# ------------------------------------------------------------------ kill -9 under new writes

WRITERS = 3
ROUNDS = 2
WINDOW = 16  # requests a writer keeps in flight


@dataclass
class Acked:
    """What the server acknowledged (each with its entry id), across rounds."""

    messages: dict[int, str] = field(default_factory=dict)  # id -> text said
    edits: dict[int, tuple[int, str]] = field(default_factory=dict)  # edit id -> (message, text)
    deletes: dict[int, int] = field(default_factory=dict)  # message id -> delete entry id
    asked_deletes: set[int] = field(default_factory=set)  # sent, acknowledged or not
    topics: dict[int, str] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)  # account key -> highest acked upto
    errors: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0


@dataclass
class Writer:
    client: ChatClient
    name: str
    rng: random.Random
    acked: Acked
    enough: trio.Event
    target: int
    mine: list[int] = field(default_factory=list)  # own acked messages, not being deleted
    pending: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (kind, message)
    room: trio.Semaphore = field(default_factory=lambda: trio.Semaphore(WINDOW))
    sending: trio.CancelScope = field(default_factory=trio.CancelScope)

    async def send_until_closed(self, round_: int) -> None:
        """Says, edits, deletes, topics and marks, at most WINDOW unanswered."""
        try:
            with self.sending:
                await self._send(round_)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _send(self, round_: int) -> None:
        for n in range(1_000_000):
            await self.room.acquire()
            rid = f"{self.name}-{round_}-{n}"
            roll = self.rng.random()
            frame: dict[str, Any]
            if roll < 0.5 or len(self.mine) < 3:
                frame = {"type": "say", "room": "lobby", "text": f"say tok{rid} here"}
                self.pending[rid] = ("say", 0)
            elif roll < 0.7:
                target = self.rng.choice(self.mine)
                frame = {"type": "edit", "message": target, "text": f"edit etok{rid}"}
                self.pending[rid] = ("edit", target)
            elif roll < 0.82:
                target = self.mine.pop(self.rng.randrange(len(self.mine)))
                self.acked.asked_deletes.add(target)
                frame = {"type": "delete", "message": target}
                self.pending[rid] = ("delete", target)
            elif roll < 0.9:
                frame = {"type": "topic", "room": "lobby", "text": f"topic {rid}"}
                self.pending[rid] = ("topic", 0)
            else:
                upto = self.rng.choice(list(self.acked.messages))
                frame = {"type": "mark", "room": "lobby", "upto": upto}
                self.pending[rid] = ("mark", upto)
            await self.client.send(id=rid, **frame)
            self.acked.sent += 1

    async def record_until_closed(self) -> None:
        """Every acknowledgement (the sender's own copy, with `re`) until the server dies."""
        acked = self.acked
        try:
            while True:
                frame = await self.client.recv(timeout=10)
                rid = frame.get("re")
                if not isinstance(rid, str) or rid not in self.pending:
                    continue
                kind, target = self.pending.pop(rid)
                self.room.release()
                if frame["type"] == "error":
                    acked.errors.append(frame)
                elif kind == "say":
                    acked.messages[frame["id"]] = frame["text"]
                    self.mine.append(frame["id"])
                elif kind == "edit":
                    assert frame["type"] == "edit" and frame["message"] == target, frame
                    acked.edits[frame["id"]] = (target, frame["text"])
                elif kind == "delete":
                    assert frame["type"] == "delete" and frame["message"] == target, frame
                    acked.deletes[target] = frame["id"]
                elif kind == "topic":
                    assert frame["type"] == "topic", frame
                    acked.topics[frame["id"]] = frame["text"]
                else:
                    assert frame["type"] == "marked", frame
                    key = self.name.lower()
                    acked.marks[key] = max(acked.marks.get(key, 0), target)
                if len(acked.messages) + len(acked.edits) + len(acked.deletes) >= self.target:
                    self.enough.set()
        except Closed:
            pass
        finally:
            self.sending.cancel()  # the server is gone: stop sending too


def check_file(db: Path, acked: Acked) -> dict[str, int]:
    """integrity_check, the FTS index against the table, and every acknowledged write."""
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        c.execute("INSERT INTO messages_fts(messages_fts) VALUES('integrity-check')")
        # the index holds exactly the current text of every message not deleted
        c.execute(
            "CREATE VIRTUAL TABLE temp.ref USING fts5(text,"
            " tokenize='unicode61 remove_diacritics 2')"
        )
        c.execute(
            "INSERT INTO temp.ref (rowid, text) SELECT id, text FROM messages"
            " WHERE kind = 'message' AND deleted = 0"
        )
        c.execute("CREATE VIRTUAL TABLE temp.have USING fts5vocab(main, messages_fts, instance)")
        c.execute("CREATE VIRTUAL TABLE temp.want USING fts5vocab(temp, ref, instance)")
        have = c.execute("SELECT term, doc, offset FROM temp.have ORDER BY 1, 2, 3").fetchall()
        want = c.execute("SELECT term, doc, offset FROM temp.want ORDER BY 1, 2, 3").fetchall()
        assert have == want, "the full-text index does not match the messages"
        rows = {
            r[0]: r[1:] for r in c.execute("SELECT id, kind, target, text, deleted FROM messages")
        }
        markers = dict(c.execute("SELECT account, upto FROM markers WHERE conv = '#lobby'"))
    latest: dict[int, str] = {}  # a message's latest edit in the table
    for _id, (kind, target, text, _) in sorted(rows.items()):
        if kind == "edit":
            latest[target] = text
    for id_, text in acked.messages.items():
        kind, _, stored, deleted = rows[id_]
        assert kind == "message"
        if id_ in acked.deletes:
            assert deleted == 1 and stored == "", (id_, stored)
        elif not deleted:
            assert stored == latest.get(id_, text), (id_, stored, latest.get(id_), text)
    for id_, (message, text) in acked.edits.items():
        kind, target, stored, _ = rows[id_]
        assert kind == "edit" and target == message
        assert stored == ("" if rows[message][3] else text), (id_, stored)
    for message, id_ in acked.deletes.items():
        assert rows[id_][:2] == ("delete", message)
        assert all(r[2] == "" for r in rows.values() if r[0] == "edit" and r[1] == message)
    for id_, text in acked.topics.items():
        assert rows[id_][0] == "topic" and rows[id_][2] == text
    for key, upto in acked.marks.items():
        assert markers.get(key, 0) >= upto, (key, markers.get(key), upto)
    return {"rows": len(rows), "terms": len(have)}


async def test_kill_9_under_edits_deletes_topics_and_marks_loses_no_acknowledged_write(
    tmp_path: Path,
) -> None:
    """SIGKILL mid-load, twice: the file is sound, its index matches, acknowledged writes stay."""
    rng = random.Random(SEED)
    db = tmp_path / "chat.db"
    acked = Acked()
    stats: list[dict[str, int]] = []
    start = trio.current_time()
    for round_ in range(ROUNDS):
        server = await ServerProcess(db).start()
        try:
            with trio.fail_after(30):
                names = [f"W{i}" for i in range(WRITERS)]
                clients = [await login(server.port, name, password=PW) for name in names]
                for client in clients:
                    await client.join("lobby")
                if round_ == 0:  # W0 made lobby and owns it: its ops may set the topic too
                    for name in names[1:]:
                        assert (
                            await request(clients[0], "op", type="op", room="lobby", name=name)
                        )["type"] == "room"
                enough = trio.Event()
                target = len(acked.messages) + len(acked.edits) + rng.randint(150, 400)
                writers = [
                    Writer(client, name, random.Random(rng.random()), acked, enough, target)
                    for client, name in zip(clients, names, strict=True)
                ]
                async with trio.open_nursery() as nursery:
                    for writer in writers:
                        nursery.start_soon(writer.send_until_closed, round_)
                        nursery.start_soon(writer.record_until_closed)
                    await enough.wait()
                    await trio.sleep(rng.random() * 0.05)
                    server.kill()  # SIGKILL, with requests in flight
        finally:
            server.kill()
        stats.append(check_file(db, acked))
    server = await ServerProcess(db).start()
    try:
        with trio.fail_after(20):
            history = {e["id"]: e for e in await all_history(server.port, "lobby")}
    finally:
        server.kill()
    for id_ in acked.messages:
        entry = history[id_]
        if id_ in acked.deletes:
            assert entry.get("deleted") is True and "text" not in entry, entry
        elif id_ not in acked.asked_deletes:  # a delete in flight at the kill may have landed
            assert "text" in entry, entry
    for id_, (message, text) in acked.edits.items():
        entry = history[id_]
        assert entry["type"] == "edit" and entry["message"] == message
        if message in acked.deletes:
            assert "text" not in entry, entry
        elif message in acked.asked_deletes:  # its delete may have landed before the kill
            assert entry.get("text") in (None, text), entry
        else:
            assert entry.get("text") == text, entry
    for message, id_ in acked.deletes.items():
        assert history[id_]["type"] == "delete" and history[id_]["message"] == message
    for id_, text in acked.topics.items():
        assert history[id_] == {**history[id_], "type": "topic", "text": text}
    assert list(history) == sorted(history)
    with sqlite3.connect(db) as c:  # no deleted text is found by the index
        for message in acked.deletes:
            word = f'"{acked.messages[message].split()[1]}"'
            assert not c.execute(
                "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?", (word,)
            ).fetchall()
    assert not [e for e in acked.errors if e["code"] not in ("no_such_message",)], acked.errors
    print(
        f"\n{ROUNDS} kills: {acked.sent} requests sent, acknowledged {len(acked.messages)} says,"
        f" {len(acked.edits)} edits, {len(acked.deletes)} deletes, {len(acked.topics)} topics,"
        f" {len(acked.marks)} markers; {len(acked.errors)} errors; files {stats};"
        f" {trio.current_time() - start:.2f} s"
    )
