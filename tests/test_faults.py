"""The fault report's races and failures, end to end: an in-process server over loopback.

Each test drives the server only through its sockets and public frames, so it runs
the same against the code before the fixes. Where a race needs a commit to wait,
the test holds the store's write limiter (the writer's thread cannot start): the
store is kept from `Store.open` as `serve()` opens it. A full disk is `PRAGMA
max_page_count` on the writer's connection, a lock another connection's `BEGIN
IMMEDIATE` (with a busy timeout of 0.2 s). Timings are compared with a hash's time
measured in the same test, never with an absolute time.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from chat_client import ChatClient, login
from harness import RunningServer, StartServer

import trio_chat.accounts
from trio_chat.accounts import PasswordHasher
from trio_chat.config import Config
from trio_chat.store import Store

pytestmark = pytest.mark.trio

LATIN = "Souvik"
CYRILLIC_S = "\u0405ouvik"  # Cyrillic DZE for the S
CYRILLIC_O = "S\u043euvik"  # Cyrillic o for the o
OTHER_HOST = "127.0.0.2"  # another address on the loopback network
_tags = itertools.count()


def keep_stores(monkeypatch: pytest.MonkeyPatch, *, busy_ms: int | None = None) -> list[Store]:
    """Every Store that `serve()` opens from now on, with SQLite's busy timeout set if asked."""
    opened: list[Store] = []
    original = Store.open

    def open_and_keep(*args: Any, **kwargs: Any) -> Store:
        store = original(*args, **kwargs)
        if busy_ms is not None:  # PRAGMA, not busy_timeout=: the code before the fixes has none
            store._db.execute(f"PRAGMA busy_timeout = {busy_ms}")
        opened.append(store)
        return store

    monkeypatch.setattr(Store, "open", open_and_keep)
    return opened


async def start(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> tuple[RunningServer, Store]:
    """A server and its store."""
    busy_ms = overrides.pop("busy_ms", None)
    stores = keep_stores(monkeypatch, busy_ms=busy_ms)
    server = await start_server(**overrides)
    (store,) = stores
    return server, store


@asynccontextmanager
async def commits_held(store: Store) -> AsyncIterator[None]:
    """No commit starts inside the block: the writer waits for the write limiter."""
    await store._write_limiter.acquire()
    try:
        yield
    finally:
        store._write_limiter.release()


async def sync(client: ChatClient) -> None:
    """A ping answered: the server has handled everything this client sent before it, and every
    frame it queued for the client before the pong is in `client.seen`."""
    tag = f"sync-{next(_tags)}"
    await client.send(type="ping", id=tag)
    await client.expect("pong", re=tag)


def messages(client: ChatClient) -> list[str]:
    return [f["text"] for f in client.seen if f["type"] == "message"]


async def quit_(client: ChatClient) -> None:
    await client.send(type="quit")
    assert (await client.expect("bye"))["reason"] == "quit"
    assert await client.closed()


async def connect_from(host: str, port: int) -> ChatClient:
    """A client whose connection comes from `host` (a loopback address other than 127.0.0.1)."""
    return ChatClient(await trio.open_tcp_stream("127.0.0.1", port, local_address=host))


class HashGate:
    """Wraps PasswordHasher.hash: `hashing` is set when the first hash starts, which then waits
    until `open` is set (at once unless `gated`); `finished` is set when a hash has returned."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, gated: bool) -> None:
        self.hashing = trio.Event()
        self.open = trio.Event()
        self.finished = trio.Event()
        if not gated:
            self.open.set()
        original = PasswordHasher.hash

        async def hash_(hasher: PasswordHasher, *args: Any, **kwargs: Any) -> str:
            first = not self.hashing.is_set()
            self.hashing.set()
            if first:
                await self.open.wait()
            digest = await original(hasher, *args, **kwargs)
            self.finished.set()
            return digest

        monkeypatch.setattr(PasswordHasher, "hash", hash_)


# ------------------------------------------------------------------ 1. a DM reaches its addressee


async def test_a_dm_to_a_guest_who_left_before_its_commit_skips_the_new_holder_of_the_name(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DM accepted for the guest "bob" is not delivered to another guest who takes the name
    "bob" before the commit; the sender still gets its copy."""
    server, store = await start(start_server, monkeypatch)
    alice = await login(server.port, "alice")
    first_bob = await login(server.port, "bob")
    async with commits_held(store):
        await alice.send(type="say", to="bob", text="for the first bob", id="d1")
        await sync(alice)  # accepted, waiting for its commit
        await quit_(first_bob)
        second_bob = await login(server.port, "bob")
    echo = await alice.expect("message", re="d1")
    assert echo["to"] == "bob" and echo["text"] == "for the first bob"
    await sync(second_bob)
    assert messages(second_bob) == [] and messages(first_bob) == []
    await alice.send(type="say", to="bob", text="for the second bob", id="d2")  # still works
    await alice.expect("message", re="d2")
    assert (await second_bob.expect("message"))["text"] == "for the second bob"


# ------------------------------------------------------------------ 2. a new account's history


async def test_an_account_made_while_its_guests_mail_waits_does_not_read_that_mail(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mail to and from the guest "bob" that waits for its commit while someone creates the
    account "bob" is not in the account's history with alice, nor delivered to it."""
    server, store = await start(start_server, monkeypatch)
    gate = HashGate(monkeypatch, gated=False)
    alice = await login(server.port, "alice")
    guest = await login(server.port, "bob")
    async with commits_held(store):
        await alice.send(type="say", to="bob", text="for the guest", id="a1")
        await guest.send(type="say", to="alice", text="from the guest", id="g1")
        await sync(alice)
        await sync(guest)
        await quit_(guest)
        owner = await ChatClient.connect(server.port)
        await owner.send(type="hello", name="bob", password="bob's own password", id="h")
        # the hash is done: the account's first id is fixed now, or waits for the commit
        await gate.finished.wait()
        await trio.testing.wait_all_tasks_blocked()
    welcome = await owner.expect("welcome", re="h")
    assert welcome["account"] is True
    await alice.expect("message", re="a1")
    await alice.expect("message", text="from the guest")
    await owner.send(type="history", **{"with": "alice"}, id="h1")
    page = await owner.expect("history", re="h1")
    assert page["messages"] == [] and page["more"] is False
    assert messages(owner) == []
    await alice.send(type="say", to="bob", text="for the account", id="a2")
    assert (await owner.expect("message"))["text"] == "for the account"
    await owner.send(type="history", **{"with": "alice"}, id="h2")
    page = await owner.expect("history", re="h2")
    assert [m["text"] for m in page["messages"]] == ["for the account"]


async def test_an_account_does_not_read_guest_mail_held_up_by_backpressure(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mail to the guest "bob" still waiting for room in a full commit queue while the account
    "bob" is created is not in the account's history with alice."""
    server, store = await start(start_server, monkeypatch, max_pending=1)
    gate = HashGate(monkeypatch, gated=False)
    alice = await login(server.port, "alice")
    guest = await login(server.port, "bob")
    carol = await login(server.port, "carol", "lobby")
    async with commits_held(store):
        await carol.send(type="say", room="lobby", text="one")
        await sync(carol)
        await trio.testing.wait_all_tasks_blocked()  # the writer took "one", waits to commit
        await carol.send(type="say", room="lobby", text="two")
        await sync(carol)  # "two" fills the queue
        await alice.send(type="say", to="bob", text="for the guest", id="a1")
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)  # alice's DM waits for room
        await quit_(guest)
        owner = await ChatClient.connect(server.port)
        await owner.send(type="hello", name="bob", password="bob's own password", id="h")
        await gate.finished.wait()
        await trio.testing.wait_all_tasks_blocked()
    assert (await owner.expect("welcome", re="h"))["account"] is True
    await alice.expect("message", re="a1")
    await owner.send(type="history", **{"with": "alice"}, id="h1")
    page = await owner.expect("history", re="h1")
    assert page["messages"] == []


# ------------------------------------------------------------------ 3/4. an unavailable store

BIG = "\u00e9" * 3990  # 8 KB of UTF-8: its row needs new pages, which a full disk cannot give


def fill_disk(store: Store) -> None:
    """No page more for the writer's connection (call it while no commit runs)."""
    if store._db.execute("PRAGMA freelist_count").fetchone()[0]:
        store._db.execute("VACUUM")  # free pages (from the schema's upgrades) would be used first
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(store: Store) -> None:
    store._db.execute("PRAGMA max_page_count = 1073741823")


def stored_texts(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT text FROM messages ORDER BY id")]


async def the_server_carries_on(
    alice: ChatClient, bob: ChatClient, port: int, acked: list[str]
) -> None:
    """While the store cannot commit: alice's say and DM get `unavailable` with their `re` and
    reach nobody; pings, who, history, joins and presence go on."""
    await alice.send(type="say", room="lobby", text=BIG + "lost", id="lost")
    await alice.send(type="say", to="bob", text=BIG + "lost dm", id="lost-dm")
    for re in ("lost", "lost-dm"):
        error = await alice.expect("error", re=re)
        assert error["code"] == "unavailable" and error["message"]
    await sync(alice)
    await sync(bob)
    assert messages(bob) == acked[:1] and messages(alice) == acked[:1]
    await bob.send(type="who", room="lobby", id="w")
    assert (await bob.expect("members", re="w"))["members"] == ["alice", "bob"]
    await bob.send(type="history", room="lobby", id="h")
    assert [m["text"] for m in (await bob.expect("history", re="h"))["messages"]] == acked[:1]
    carol = await login(port, "carol")
    joined = await carol.join("lobby")
    assert [m["text"] for m in joined["history"]] == acked[:1]
    assert (await alice.expect("presence", name="carol"))["state"] == "joined"
    await bob.expect("presence", name="carol")


async def test_a_full_disk_refuses_the_say_and_the_server_goes_on(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that hits SQLITE_FULL answers `unavailable` and the server keeps serving; once
    there is room again the next say works and every acknowledged message is in history."""
    server, store = await start(start_server, monkeypatch)
    alice = await login(server.port, "alice", "lobby")
    bob = await login(server.port, "bob", "lobby")
    acked = [(await alice.say("lobby", "before"))["text"]]
    await bob.expect("message", text="before")
    fill_disk(store)  # the writer is idle: "before" was handed on
    await the_server_carries_on(alice, bob, server.port, acked)
    free_disk(store)
    await alice.send(type="say", room="lobby", text=BIG + "after", id="after")
    acked.append((await alice.expect("message", re="after"))["text"])
    assert (await bob.expect("message"))["text"] == acked[-1]
    await bob.send(type="history", room="lobby", id="h2")
    assert [m["text"] for m in (await bob.expect("history", re="h2"))["messages"]] == acked
    assert stored_texts(server.config.db) == acked


async def test_a_lock_held_past_the_busy_timeout_refuses_the_say_and_the_server_goes_on(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another connection holding the write lock past the busy timeout makes a say (and an
    account's creation) `unavailable`; the server keeps serving, and works once the lock goes."""
    server, _ = await start(start_server, monkeypatch, busy_ms=200)
    alice = await login(server.port, "alice", "lobby")
    bob = await login(server.port, "bob", "lobby")
    acked = [(await alice.say("lobby", "before"))["text"]]
    await bob.expect("message", text="before")
    with closing(sqlite3.connect(server.config.db, isolation_level=None)) as admin:
        admin.execute("BEGIN IMMEDIATE")
        await the_server_carries_on(alice, bob, server.port, acked)
        newcomer = await ChatClient.connect(server.port)
        await newcomer.send(type="hello", name="dave", password="dave's password", id="n")
        assert (await newcomer.expect("error", re="n"))["code"] == "unavailable"
        admin.execute("ROLLBACK")
    await alice.send(type="say", room="lobby", text="after", id="after")
    acked.append((await alice.expect("message", re="after"))["text"])
    assert (await bob.expect("message"))["text"] == "after"
    await newcomer.send(type="hello", name="dave", password="dave's password", id="n2")
    assert (await newcomer.expect("welcome", re="n2"))["account"] is True
    await bob.send(type="history", room="lobby", id="h2")
    assert [m["text"] for m in (await bob.expect("history", re="h2"))["messages"]] == acked
    assert stored_texts(server.config.db) == acked


# ------------------------------------------------------------------ 7. rooms, paged

ROOMS = 20_000


async def test_the_rooms_frame_pages_through_20000_rooms(
    start_server: StartServer, config: Config
) -> None:
    """`rooms` answers a page (`limit`, default 1000) after the room `after`, with `more`;
    chained pages list every room exactly once, in order."""
    Store.open(config.db).close()  # the schema
    with closing(sqlite3.connect(config.db)) as db, db:  # one transaction
        db.executemany(
            "INSERT INTO rooms VALUES (?, ?)",
            ((f"room{i:05d}", f"Room{i:05d}") for i in range(ROOMS)),
        )
    server = await start_server()
    alice = await login(server.port, "alice", "ROOM00003")
    await alice.send(type="rooms", limit=10, id="r")
    page = await alice.expect("rooms", re="r")
    assert page["rooms"] == [
        {"room": f"Room{i:05d}", "members": 1 if i == 3 else 0} for i in range(10)
    ]
    assert page["more"] is True
    await alice.send(type="rooms", id="default")
    page = await alice.expect("rooms", re="default")
    assert len(page["rooms"]) == 1000 and page["more"] is True
    listed: list[str] = []
    after: dict[str, str] = {}
    while True:
        await alice.send(type="rooms", limit=1000, id="p", **after)
        page = await alice.expect("rooms", re="p")
        listed += [room["room"] for room in page["rooms"]]
        if not page["more"]:
            break
        after = {"after": page["rooms"][-1]["room"]}
    assert listed == [f"Room{i:05d}" for i in range(ROOMS)]
    await alice.send(type="rooms", after="Room19999", id="end")
    assert await alice.expect("rooms", re="end") == {
        "type": "rooms",
        "rooms": [],
        "more": False,
        "re": "end",
    }


# ------------------------------------------------------------------ 8. password spraying


async def test_a_password_sprayer_does_not_hold_up_another_addresses_login(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 wrong-password hellos at once from one address: only 10 are hashed, the rest refused
    at once, and a right password from another address is answered within a few hashes' time
    (a hash's time measured meanwhile, with the sprayer's hashes competing for the cores)."""
    hashes: list[tuple[float, float]] = []  # (start, end) of every scrypt run
    scrypt = trio_chat.accounts._scrypt

    def timed(*args: Any) -> bytes:
        begun = time.monotonic()
        digest = scrypt(*args)
        hashes.append((begun, time.monotonic()))
        return digest

    monkeypatch.setattr(trio_chat.accounts, "_scrypt", timed)
    server = await start_server(scrypt_n=2**14)

    async def log_in() -> float:
        """One right login from the other address: its time."""
        client = await connect_from(OTHER_HOST, server.port)
        begun = trio.current_time()
        welcome = await client.hello("alice", password="alice's password")
        took = trio.current_time() - begun
        assert welcome["type"] == "welcome" and welcome["account"] is True, welcome
        await client.aclose()
        return took

    await log_in()  # makes the account
    alone = min([await log_in() for _ in range(3)])

    sprayers = [await ChatClient.connect(server.port) for _ in range(20)]  # from 127.0.0.1
    hashes.clear()
    for n, sprayer in enumerate(sprayers):
        await sprayer.send(type="hello", name="alice", password=f"wrong guess {n}", id=n)
    await trio.sleep(alone / 2)  # the server has them all; hashing has begun
    took = await log_in()
    answers = [await sprayer.expect("error", timeout=10) for sprayer in sprayers]

    durations = sorted(end - begun for begun, end in hashes)
    one_hash = durations[len(durations) // 2]
    assert took < 4 * one_hash, (took, one_hash, alone)
    assert all(a["code"] == "auth_failed" for a in answers), answers
    refusals = [a for a in answers if a["message"].startswith("too many failed logins")]
    assert len(refusals) == 10
    assert len(hashes) == 10 + 1  # ten guesses and the right login; no refusal was hashed
    late = await ChatClient.connect(server.port)
    refusal = await late.hello("alice", password="one more guess")
    assert refusal["message"].startswith("too many failed logins")
    assert len(hashes) == 11


# ------------------------------------------------------------------ 9. look-alikes


async def test_look_alikes_racing_an_account_creation_do_not_get_in(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While "Souvik" is being created, a Cyrillic "Ѕouvik" account and a guest "Sоuvik" are
    refused: of the three hellos exactly one gets in."""
    gate = HashGate(monkeypatch, gated=True)
    server = await start_server()
    creator, rival, guest = [await ChatClient.connect(server.port) for _ in range(3)]
    await creator.send(type="hello", name=LATIN, password="souvik's password")
    await gate.hashing.wait()  # the account is being made
    await rival.send(type="hello", name=CYRILLIC_S, password="a rival's password")
    await guest.send(type="hello", name=CYRILLIC_O)
    answers = [await rival.recv(), await guest.recv()]
    gate.open.set()
    answers.append(await creator.recv())
    assert [a["type"] for a in answers] == ["error", "error", "welcome"], answers
    assert [a.get("code") for a in answers[:2]] == ["name_taken", "name_taken"]
    assert answers[2]["name"] == LATIN and answers[2]["account"] is True


async def test_look_alike_hellos_during_a_slow_account_creation_let_exactly_one_in(
    start_server: StartServer,
) -> None:
    """Three look-alike hellos, the first creating "Souvik" with a slow real hash and the two
    others sent together while it runs: exactly one is welcomed, the others get name_taken."""
    server = await start_server(scrypt_n=2**15)  # a hash takes ~0.1 s or more
    clients = [await ChatClient.connect(server.port) for _ in range(3)]
    hellos = [
        {"name": LATIN, "password": "souvik's password"},
        {"name": CYRILLIC_S, "password": "a rival's password"},
        {"name": CYRILLIC_O},
    ]
    frames = [json.dumps({"type": "hello", **hello}).encode() + b"\n" for hello in hellos]
    await clients[0].send_raw(frames[0])
    await trio.sleep(0.02)  # the creation has begun, its hash runs
    async with trio.open_nursery() as nursery:
        for client, frame in zip(clients[1:], frames[1:], strict=True):
            nursery.start_soon(client.send_raw, frame)
    answers = [await client.recv(timeout=10) for client in clients]
    kinds = sorted(a["type"] if a["type"] == "welcome" else a["code"] for a in answers)
    assert kinds == ["name_taken", "name_taken", "welcome"], answers


# ------------------------------------------------------------------ 10. no ghost members


@pytest.mark.parametrize(
    "ending",
    [b'{"type":"quit"}\n', b"nope\n" * 20],
    ids=["quit", "20 errors"],
)
async def test_a_join_after_the_end_leaves_no_ghost_member(
    server: RunningServer, ending: bytes
) -> None:
    """A `join` in the same write as `quit` (or after the 20th error in a row) is not handled:
    others' `who` does not list the closed connection and `rooms` counts one member."""
    watcher = await login(server.port, "watcher", "lobby")
    ghost = await login(server.port, "ghost")
    await ghost.send_raw(ending + b'{"type":"join","room":"lobby","id":"j"}\n')
    bye = await ghost.expect("bye")
    assert bye["reason"] in ("quit", "too_many_errors")
    assert await ghost.closed()
    assert not any(f["type"] == "joined" for f in ghost.seen)
    await watcher.send(type="who", room="lobby", id="w")
    assert (await watcher.expect("members", re="w"))["members"] == ["watcher"]
    await watcher.send(type="rooms", id="r")
    assert (await watcher.expect("rooms", re="r"))["rooms"] == [{"room": "lobby", "members": 1}]
    await trio.sleep(5 * server.config.presence_delay)  # any presence is fanned out by now
    await sync(watcher)
    assert not [f for f in watcher.seen if f["type"] == "presence" and f["name"] == "ghost"]
    again = await login(server.port, "ghost", "lobby")  # the name and the room are free
    await again.send(type="who", room="lobby", id="w2")
    assert (await again.expect("members", re="w2"))["members"] == ["watcher", "ghost"]
