"""The SQLite history store: group commit, ids, durability, nonces, pages, schema, shutdown.

Real SQLite files under `tmp_path`; no sleeps: the writer is held back either by not
starting `run` yet, by holding its write limiter, or by a lock another connection holds.
The schema tests open files synchronously; they are async only because the module is
marked trio (pytest-timeout bounds them; each takes milliseconds).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from trio_chat.protocol import Entry, Message, Name
from trio_chat.store import (
    _MIGRATIONS,
    SCHEMA_VERSION,
    VALUES_ROWS,
    Account,
    Draft,
    Store,
    Stored,
    StoreError,
    StoreUnavailable,
    _chunks,
    _statements,
    _values_rows,
    direct_conv,
    room_conv,
)

pytestmark = pytest.mark.trio

LIMIT = 5  # seconds: every async test is far faster than this


def nm(spelling: str) -> Name:
    return Name(spelling, spelling.lower())


ALICE, BOB, CAROL = nm("Alice"), nm("Bob"), nm("Carol")
GENERAL, RANDOM = nm("General"), nm("random")


def say(sender: Name, text: str, *, room: Name | None = GENERAL, **kw: object) -> Draft:
    return Draft(sender, text, room=room, **kw)  # type: ignore[arg-type]


def dm(sender: Name, to: Name, text: str, **kw: object) -> Draft:
    return Draft(sender, text, to=to, **kw)  # type: ignore[arg-type]


def no_failure(batch: list[Draft], error: StoreUnavailable) -> None:
    """The writer's `on_failed` where no commit may fail."""
    raise AssertionError(f"{len(batch)} drafts failed: {error}")


def flat(batches: Iterable[list[Stored]]) -> list[Stored]:
    return [stored for batch in batches for stored in batch]


def fresh(stored: Iterable[Stored]) -> list[Message]:
    return only_messages(s.message for s in stored if not s.duplicate)


def only_messages(entries: Iterable[Entry]) -> list[Message]:
    """Entries that must all be messages (these tests store nothing else)."""
    found = list(entries)
    assert all(isinstance(e, Message) for e in found)
    return [e for e in found if isinstance(e, Message)]


def text_of(entry: Entry) -> str:
    assert isinstance(entry, Message)
    return entry.text


@asynccontextmanager
async def running(path: Path) -> AsyncIterator[tuple[Store, list[list[Stored]]]]:
    """An open store with its writer running; on exit: stop, the writer returns, close."""
    store = Store.open(path)
    batches: list[list[Stored]] = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run, batches.append, no_failure)
            yield store, batches
            store.stop()
    finally:
        store.close()


def plain(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path))


# --------------------------------------------------------------------------- group commit


async def test_group_commit_while_the_first_commit_waits(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as (store, batches):
            await store._write_limiter.acquire()  # the first commit cannot start yet
            await store.submit(say(ALICE, "first"))
            await trio.testing.wait_all_tasks_blocked()
            assert store.batches == 0

            rooms = [GENERAL, RANDOM, nm("Third")]
            senders = [ALICE, BOB, CAROL]

            async def chatter(i: int) -> None:
                sender = senders[i % 3]
                for j in range(10):
                    if j % 3 == 2:
                        await store.submit(dm(sender, senders[(i + 1) % 3], f"{i}.{j}"))
                    else:
                        await store.submit(say(sender, f"{i}.{j}", room=rooms[(i + j) % 3]))

            async with trio.open_nursery() as nursery:
                for i in range(12):
                    nursery.start_soon(chatter, i)
            assert store.pending == 1 + 120
            assert store.batches == 0
            store._write_limiter.release()
            await store.drain()

            assert store.pending == 0
            assert store.batches == len(batches) == 2 < 121
            assert [s.draft.text for s in batches[0]] == ["first"]
            assert len(batches[1]) == 120
            messages = fresh(flat(batches))
            assert [m.id for m in messages] == list(range(1, 122))
            assert store.last_id == 121
            # each task's drafts are stored in the order it submitted them
            for i in range(12):
                texts = [m.text for m in messages if m.text.startswith(f"{i}.")]
                assert texts == [f"{i}.{j}" for j in range(10)]
            # every batch shares one timestamp, the commit's
            assert len({m.ts for m in fresh(batches[1])}) == 1


async def test_group_commit_while_a_commit_runs_in_the_thread(tmp_path: Path) -> None:
    """Another connection holds the write lock: the writer's thread is inside its commit."""
    path = tmp_path / "chat.db"
    with trio.fail_after(LIMIT), plain(path) as other:
        async with running(path) as (store, batches):
            other.isolation_level = None
            other.execute("BEGIN IMMEDIATE")
            await store.submit(say(ALICE, "slow"))
            await trio.testing.wait_all_tasks_blocked()  # the writer waits in the thread

            async def burst(sender: Name) -> None:
                for j in range(20):
                    await store.submit(say(sender, f"{sender}{j}", room=[GENERAL, RANDOM][j % 2]))

            async with trio.open_nursery() as nursery:
                for sender in (ALICE, BOB, CAROL):
                    nursery.start_soon(burst, sender)
            assert store.batches == 0
            other.execute("ROLLBACK")
            await store.drain()
            assert [len(b) for b in batches] == [1, 60]
            assert store.batches == 2
            assert [m.id for m in fresh(flat(batches))] == list(range(1, 62))


async def test_a_burst_before_the_writer_runs_is_one_batch(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "chat.db")
    batches: list[list[Stored]] = []
    try:
        with trio.fail_after(LIMIT):
            for i in range(50):
                await store.submit(say(ALICE, str(i), room=[GENERAL, RANDOM][i % 2]))
            await store.submit(dm(BOB, ALICE, "hi"))
            async with trio.open_nursery() as nursery:
                await nursery.start(store.run, batches.append, no_failure)
                await store.drain()
                store.stop()
    finally:
        store.close()
    assert store.batches == 1
    assert [m.id for m in fresh(batches[0])] == list(range(1, 52))


async def commit_burst(store: Store, count: int) -> list[list[Stored]]:
    """Submit `count` says before the writer runs, commit them all, close: the batches."""
    batches: list[list[Stored]] = []
    try:
        with trio.fail_after(LIMIT):
            for i in range(count):
                await store.submit(say(ALICE, str(i)))
            async with trio.open_nursery() as nursery:
                await nursery.start(store.run, batches.append, no_failure)
                await store.drain()
                store.stop()
    finally:
        store.close()
    return batches


async def test_max_batch_splits_a_burst(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "chat.db", max_batch=4)
    batches = await commit_burst(store, 10)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert store.batches == 3
    ids = [[s.message.id for s in b] for b in batches]
    assert ids == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]


@pytest.mark.parametrize("limit", [32_766, 999, 20])
async def test_a_batch_goes_in_by_inserts_that_fit_sqlites_parameter_limit(
    tmp_path: Path, limit: int
) -> None:
    """One INSERT takes as many rows as the connection's parameter limit allows (a power of
    two, at most VALUES_ROWS); a batch of any size is split to fit, and every row goes in."""
    store = Store.open(tmp_path / "chat.db")
    store._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    store._values_rows = _values_rows(store._db)
    assert store._values_rows == {32_766: VALUES_ROWS, 999: 64, 20: 1}[limit]
    batches = await commit_burst(store, 1_000)
    assert [s.message.id for s in flat(batches)] == list(range(1, 1_001))
    with closing(sqlite3.connect(tmp_path / "chat.db")) as db:
        assert db.execute("SELECT count(*), sum(id) FROM messages").fetchone() == (1_000, 500_500)


@given(rows=st.integers(0, 5_000), most=st.sampled_from([1, 2, 64, 1024]))
async def test_chunks_add_up_to_the_rows_in_few_sizes(rows: int, most: int) -> None:
    sizes = list(_chunks(rows, most))
    assert sum(sizes) == rows and all(0 < size <= most for size in sizes)
    assert all(size == most or size & (size - 1) == 0 for size in sizes)  # powers of two
    assert len(sizes) <= rows // most + most.bit_length()  # a full batch is one INSERT
    assert len({size for size in sizes if size != most}) == len([s for s in sizes if s != most])


async def test_ids_are_global_and_increase_in_commit_order(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as (store, batches):
            drafts = [
                say(ALICE, "a1"),
                dm(ALICE, BOB, "d1"),
                say(BOB, "b1", room=RANDOM),
                dm(BOB, ALICE, "d2"),
                say(CAROL, "c1"),
            ]
            for draft in drafts:
                await store.submit(draft)
                await store.drain()  # one batch each
            await store.submit(say(ALICE, "a2", room=RANDOM))
            await store.submit(dm(CAROL, ALICE, "d3"))
            await store.drain()
        stored = flat(batches)
        assert [s.message.id for s in stored] == list(range(1, 8))
        assert [text_of(s.message) for s in stored] == ["a1", "d1", "b1", "d2", "c1", "a2", "d3"]
        for batch in batches:
            ids = [s.message.id for s in batch]
            assert ids == sorted(ids)
        # the drafts come back as they were submitted, with their messages
        assert [s.draft for s in stored[:5]] == drafts
        first, direct = fresh(stored[:2])
        assert (first.room, first.to, first.sender) == ("General", None, "Alice")
        assert (direct.room, direct.to, direct.sender) == (None, "Bob", "Alice")


async def test_on_commit_sees_a_durable_batch(tmp_path: Path) -> None:
    """A batch is handed on only once another connection can read it (guarantee 6.3)."""
    path = tmp_path / "chat.db"
    seen: list[list[int]] = []

    def on_commit(batch: list[Stored]) -> None:
        with plain(path) as other:
            ids = [s.message.id for s in batch]
            rows = other.execute(
                f"SELECT id FROM messages WHERE id IN ({','.join('?' * len(ids))}) ORDER BY id",
                ids,
            ).fetchall()
            seen.append([r[0] for r in rows])
        assert store.last_id == ids[-1]

    store = Store.open(path)
    try:
        with trio.fail_after(LIMIT):
            async with trio.open_nursery() as nursery:
                await nursery.start(store.run, on_commit, no_failure)
                for i in range(3):
                    await store.submit(say(ALICE, str(i)))
                await store.drain()
                await store.submit(dm(ALICE, BOB, "x"))
                await store.drain()
                store.stop()
    finally:
        store.close()
    assert [i for b in seen for i in b] == [1, 2, 3, 4]


# --------------------------------------------------------------------------- restart


async def test_restart_keeps_messages_rooms_accounts_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    account = Account("alice", "Alice", "scrypt$salt$hash", 1)
    with trio.fail_after(LIMIT):
        async with running(path) as (store, batches):
            assert store.last_id == 0
            assert await store.create_account(account)
            await store.submit(say(ALICE, "one"))
            await store.submit(say(BOB, "two", room=nm("MiXeD")))
            await store.submit(dm(ALICE, BOB, "three"))
            await store.drain()
            before = fresh(flat(batches))
            assert store.rooms == {"general": "General", "mixed": "MiXeD"}

        async with running(path) as (store, batches):
            assert store.last_id == 3
            assert store.rooms == {"general": "General", "mixed": "MiXeD"}
            assert store.accounts == {"alice": account}
            page = await store.page(room_conv("general"), upto=store.last_id)
            assert page.messages == [before[0]]
            page = await store.page(direct_conv("bob", "alice"), upto=store.last_id)
            assert page.messages == [before[2]]
            # a later spelling of a known room does not replace the first one
            await store.submit(say(CAROL, "four", room=nm("GENERAL")))
            await store.drain()
            assert [m.id for m in fresh(flat(batches))] == [4]
            assert store.rooms["general"] == "General"
            assert not await store.create_account(Account("alice", "ALICE", "other", 9))

        async with running(path) as (store, _):
            assert store.last_id == 4
            assert store.rooms == {"general": "General", "mixed": "MiXeD"}
            assert store.accounts == {"alice": account}


async def test_restart_without_run_keeps_state(tmp_path: Path) -> None:
    """Open and close without ever running the writer: nothing is lost or invented."""
    path = tmp_path / "chat.db"
    with trio.fail_after(LIMIT):
        async with running(path) as (store, _):
            await store.submit(say(ALICE, "kept"))
            await store.drain()
        Store.open(path).close()
        async with running(path) as (store, batches):
            assert store.last_id == 1
            await store.submit(say(ALICE, "next"))
            await store.drain()
            assert [m.id for m in fresh(flat(batches))] == [2]


# --------------------------------------------------------------------------- nonces


async def test_nonce_repeated_within_one_batch(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "chat.db")
    batches: list[list[Stored]] = []
    try:
        with trio.fail_after(LIMIT):
            await store.submit(say(ALICE, "first", nonce="n1", re=1))
            await store.submit(say(ALICE, "again", nonce="n1", re=2))
            await store.submit(say(BOB, "bob's", nonce="n1"))  # another sender: a new message
            await store.submit(say(nm("ALICE"), "same key", nonce="n1"))  # same name, respelled
            await store.submit(say(ALICE, "after"))
            async with trio.open_nursery() as nursery:
                await nursery.start(store.run, batches.append, no_failure)
                await store.drain()
                store.stop()
    finally:
        store.close()
    assert len(batches) == 1
    first, again, bobs, respelled, after = batches[0]
    assert not first.duplicate and first.message.id == 1
    assert again.duplicate and again.message == first.message
    assert again.draft.re == 2 and text_of(again.message) == "first"
    assert not bobs.duplicate and bobs.message.id == 2
    assert respelled.duplicate and respelled.message == first.message
    assert not after.duplicate and after.message.id == 3  # no gap for the duplicates
    with plain(tmp_path / "chat.db") as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 3


async def test_nonce_repeated_across_batches_and_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    with trio.fail_after(LIMIT):
        async with running(path) as (store, batches):
            await store.submit(dm(ALICE, BOB, "hello", nonce="uuid-1"))
            await store.drain()
            original = batches[0][0].message
            await store.submit(dm(ALICE, BOB, "hello, resent", nonce="uuid-1"))
            await store.submit(say(ALICE, "a room say, same nonce", nonce="uuid-1"))
            await store.submit(say(ALICE, "new"))
            await store.drain()
            resent, as_room, new = flat(batches[1:])
            assert resent.duplicate and resent.message == original
            assert as_room.duplicate and as_room.message == original
            # ids may skip (PROTOCOL.md 6.2): the repeat's reserved id is not used
            assert not new.duplicate and new.message.id > original.id
            assert store.last_id >= new.message.id
            assert await store.find_nonce("alice", "uuid-1") == original

        async with running(path) as (store, batches):
            assert await store.find_nonce("alice", "uuid-1") == original
            await store.submit(dm(ALICE, BOB, "after a restart", nonce="uuid-1"))
            await store.submit(dm(BOB, ALICE, "bob's own", nonce="uuid-1"))
            await store.drain()
            again, bobs = flat(batches)
            assert again.duplicate and again.message == original
            assert not bobs.duplicate and bobs.message.id > new.message.id
            page = await store.page(direct_conv("alice", "bob"), upto=store.last_id)
            assert [m.id for m in only_messages(page.messages)] == [original.id, bobs.message.id]


async def test_find_nonce(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as (store, batches):
            assert await store.find_nonce("alice", "n") is None
            await store.submit(say(ALICE, "x", nonce="n"))
            await store.submit(say(ALICE, "y"))
            await store.drain()
            found = await store.find_nonce("alice", "n")
            assert found == batches[0][0].message
            assert found is not None and found.re is None
            assert await store.find_nonce("bob", "n") is None
            assert await store.find_nonce("alice", "other") is None
            assert await store.find_nonce("Alice", "n") is None  # keys, not spellings


# --------------------------------------------------------------------------- pages


async def _fill(store: Store) -> dict[str, list[int]]:
    """Interleave two rooms and two direct conversations; the ids of each, in order."""
    drafts: list[tuple[str, Draft]] = []
    for i in range(12):
        drafts.append((room_conv("general"), say(ALICE, f"g{i}")))
        if i % 2:
            drafts.append((room_conv("random"), say(BOB, f"r{i}", room=RANDOM)))
        if i % 3 == 0:
            drafts.append((direct_conv("alice", "bob"), dm(ALICE, BOB, f"ab{i}")))
            drafts.append((direct_conv("bob", "alice"), dm(BOB, ALICE, f"ba{i}")))
        if i == 5:
            drafts.append((direct_conv("carol", "alice"), dm(CAROL, ALICE, "ca")))
    first = store.last_id + 1
    for _, draft in drafts:
        await store.submit(draft)
    await store.drain()
    assert store.last_id == first + len(drafts) - 1
    ids: dict[str, list[int]] = {}
    for message_id, (conv, _) in enumerate(drafts, start=first):
        ids.setdefault(conv, []).append(message_id)
    return ids


async def test_page_room(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as (store, _):
            ids = await _fill(store)
            general = ids[room_conv("general")]
            last = store.last_id
            assert len(general) == 12

            page = await store.page(room_conv("general"), upto=last, limit=5)
            assert [m.id for m in only_messages(page.messages)] == general[-5:]
            assert page.more
            assert all(m.room == "General" and m.to is None for m in page.messages)
            assert [m.text for m in only_messages(page.messages)] == [f"g{i}" for i in range(7, 12)]

            page = await store.page(room_conv("general"), upto=last)
            assert [m.id for m in only_messages(page.messages)] == general and not page.more
            page = await store.page(room_conv("general"), upto=last, limit=12)
            assert [m.id for m in only_messages(page.messages)] == general and not page.more
            page = await store.page(room_conv("general"), upto=last, limit=11)
            assert [m.id for m in only_messages(page.messages)] == general[1:] and page.more

            # after < id <= upto, both bounds exact
            after, upto = general[3], general[8]
            page = await store.page(room_conv("general"), after=after, upto=upto, limit=50)
            assert [m.id for m in only_messages(page.messages)] == general[4:9] and not page.more
            page = await store.page(room_conv("general"), after=after, upto=upto, limit=2)
            assert [m.id for m in only_messages(page.messages)] == general[7:9] and page.more
            page = await store.page(room_conv("general"), after=after, upto=upto - 1, limit=4)
            assert [m.id for m in only_messages(page.messages)] == general[4:8] and not page.more
            # upto between two of the room's ids (ids are global)
            page = await store.page(room_conv("general"), upto=general[5] + 1, limit=2)
            assert [m.id for m in only_messages(page.messages)] == general[4:6] and page.more

            page = await store.page(room_conv("general"), after=last, upto=last)
            assert page.messages == [] and not page.more
            page = await store.page(room_conv("nowhere"), upto=last)
            assert page.messages == [] and not page.more
            page = await store.page(room_conv("random"), upto=last, limit=1)
            assert [m.id for m in only_messages(page.messages)] == ids[room_conv("random")][
                -1:
            ] and page.more


async def test_page_direct(tmp_path: Path) -> None:
    assert direct_conv("alice", "bob") == direct_conv("bob", "alice")
    assert direct_conv("alice", "bob") != direct_conv("alice", "carol")
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as (store, _):
            ids = await _fill(store)
            conv = direct_conv("bob", "alice")
            both = ids[conv]
            assert len(both) == 8
            page = await store.page(conv, upto=store.last_id)
            assert [m.id for m in only_messages(page.messages)] == both and not page.more
            assert [(m.sender, m.to) for m in only_messages(page.messages)] == [
                ("Alice", "Bob"),
                ("Bob", "Alice"),
            ] * 4
            assert all(m.room is None for m in page.messages)
            page = await store.page(
                direct_conv("alice", "bob"), after=both[1], upto=both[6], limit=3
            )
            assert [m.id for m in only_messages(page.messages)] == both[4:7] and page.more
            page = await store.page(direct_conv("alice", "carol"), upto=store.last_id)
            assert [(m.sender, m.to, m.text) for m in only_messages(page.messages)] == [
                ("Carol", "Alice", "ca")
            ]
            assert not (await store.page(direct_conv("bob", "carol"), upto=store.last_id)).messages


# --------------------------------------------------------------------------- accounts


async def test_create_account_twice(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as (store, _):
            account = Account("bob", "Bob", "hash-1", 1)
            assert await store.create_account(account)
            assert store.accounts["bob"] == account
            assert not await store.create_account(Account("bob", "BOB", "hash-2", 7))
            assert store.accounts["bob"] == account
            assert await store.create_account(Account("carol", "Carol", "hash-3", 1))
    with plain(tmp_path / "chat.db") as db:
        rows = db.execute("SELECT key, name, hash, first_id FROM accounts ORDER BY key").fetchall()
    assert rows == [("bob", "Bob", "hash-1", 1), ("carol", "Carol", "hash-3", 1)]


# --------------------------------------------------------------------------- schema


def _schema(path: Path) -> tuple[int, set[str]]:
    with plain(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return version, tables


@pytest.mark.parametrize("kind", ["missing", "zero bytes", "empty database"])
async def test_fresh_file_is_upgraded_to_the_current_version(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "chat.db"
    if kind == "zero bytes":
        path.touch()
    elif kind == "empty database":
        with plain(path) as db:
            db.execute("PRAGMA user_version = 0")
            db.commit()
    Store.open(path).close()
    assert SCHEMA_VERSION == 5
    version, tables = _schema(path)
    assert version == 5 and {"messages", "rooms", "accounts", "messages_fts"} <= tables
    with plain(path) as db:
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"messages_by_conv", "messages_by_nonce", "messages_by_target"} <= indexes
    # and a second open of a current file changes nothing
    Store.open(path).close()
    assert _schema(path) == (version, tables)


async def test_a_version_1_file_is_upgraded_with_its_messages_indexed(tmp_path: Path) -> None:
    """Schema 1 -> 2: every message kept, accounts' own messages marked, all searchable."""
    path = tmp_path / "chat.db"
    with plain(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        for statement in _statements(str(_MIGRATIONS[0])):
            db.execute(statement)
        db.execute("INSERT INTO accounts VALUES ('ann', 'Ann', 'x', 2, 'then')")
        db.executemany(
            "INSERT INTO messages VALUES (?, '#r', 'r', NULL, ?, ?, ?, 'ts', NULL)",
            [(1, "Ann", "ann", "crème brûlée"), (2, "Ann", "ann", "hello"), (3, "Bo", "bo", "x")],
        )
        db.execute("PRAGMA user_version = 1")
        db.commit()
    Store.open(path).close()
    with plain(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        marked = db.execute("SELECT id, account, kind FROM messages ORDER BY id").fetchall()
        assert marked == [(1, 0, "message"), (2, 1, "message"), (3, 0, "message")]
        found = db.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'creme'")
        assert [r[0] for r in found] == [1]


async def test_a_version_4_file_gets_a_search_index_rebuilt_without_what_was_deleted(
    tmp_path: Path,
) -> None:
    """Schema 4 -> 5: the index is made again from the table (no column sizes, no insert
    trigger): live messages are found, a deleted one is not, and new commits are indexed."""
    path = tmp_path / "chat.db"
    with plain(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        for version in range(4):
            step = _MIGRATIONS[version]
            for statement in _statements(step) if isinstance(step, str) else step:
                db.execute(statement)
        db.executemany(
            "INSERT INTO messages (id, conv, room, sender, sender_key, text, ts, deleted)"
            " VALUES (?, '#r', 'r', 'Ann', 'ann', ?, 'ts', ?)",
            [(1, "crème brûlée", 0), (2, "", 1), (3, "brûlée again", 0)],
        )
        db.execute("PRAGMA user_version = 4")
        db.commit()
    store = Store.open(path)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run, lambda batch: None, no_failure)
            await store.submit(say(ALICE, "brulee for dessert"))
            await store.drain()
            store.stop()
    finally:
        store.close()
    with plain(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        triggers = {
            r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        assert "messages_fts_insert" not in triggers
        assert {"messages_fts_update", "messages_fts_delete"} <= triggers
        found = db.execute(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'brulee' ORDER BY rowid"
        )
        assert [r[0] for r in found] == [1, 3, 4]
        db.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")


async def test_wal_and_synchronous_full(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = Store.open(path)
    try:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()
    with plain(path) as db:  # WAL is a property of the file
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    with plain(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()
    with pytest.raises(StoreError, match="schema version"):
        Store.open(path)
    assert _schema(path) == (SCHEMA_VERSION + 1, set())


@pytest.mark.parametrize("table", ["messages", "rooms", "accounts"])
async def test_a_version_0_file_with_one_of_our_tables_is_refused(
    tmp_path: Path, table: str
) -> None:
    path = tmp_path / "chat.db"
    with plain(path) as db:
        db.execute(f"CREATE TABLE {table} (x)")
        db.commit()
    with pytest.raises(StoreError):
        Store.open(path)
    assert _schema(path) == (0, {table})


async def test_a_version_0_file_with_other_tables_is_refused(tmp_path: Path) -> None:
    """Some other program's database (tables, user_version 0) is not ours to add tables to."""
    path = tmp_path / "other.db"
    with plain(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        db.commit()
    with pytest.raises(StoreError):
        Store.open(path).close()
    assert _schema(path) == (0, {"users"})


async def test_a_path_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        Store.open(tmp_path / "missing" / "chat.db")
    assert not isinstance(info.value, sqlite3.Error)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    "content", [b"this is not a database, " * 100, b"\x00" * 100 + b"junk"], ids=["text", "zeros"]
)
async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert not isinstance(info.value, sqlite3.Error)
    assert path.read_bytes() == content


async def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store.open(tmp_path)


# --------------------------------------------------------------------------- stop, drain, bounds


async def test_stop_then_run_commits_what_was_queued_and_returns(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "chat.db")
    batches: list[list[Stored]] = []
    try:
        with trio.fail_after(LIMIT):
            for i in range(5):
                await store.submit(say(ALICE, str(i)))
            store.stop()
            with pytest.raises(trio.ClosedResourceError):
                await store.submit(say(ALICE, "too late"))
            assert store.pending == 5
            await store.run(batches.append, no_failure)  # returns by itself
            assert store.pending == 0
            await store.drain()
    finally:
        store.close()
    assert [m.id for m in fresh(flat(batches))] == [1, 2, 3, 4, 5]


async def test_stop_while_the_writer_runs(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = Store.open(path)
    batches: list[list[Stored]] = []
    returned = False
    try:
        with trio.fail_after(LIMIT):

            async def writer() -> None:
                nonlocal returned
                await store.run(batches.append, no_failure)
                returned = True

            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer)
                await trio.testing.wait_all_tasks_blocked()
                await store._write_limiter.acquire()
                await store.submit(say(ALICE, "in flight"))
                await trio.testing.wait_all_tasks_blocked()
                for i in range(3):
                    await store.submit(say(BOB, f"queued {i}"))
                store.stop()
                await trio.testing.wait_all_tasks_blocked()
                assert not returned and store.pending == 4
                store._write_limiter.release()
            assert returned
    finally:
        store.close()
    assert [len(b) for b in batches] == [1, 3]
    with plain(path) as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 4


async def test_drain_waits_for_everything_submitted(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as (store, batches):
            await store.drain()  # nothing submitted: at once
            await store._write_limiter.acquire()
            await store.submit(say(ALICE, "one"))
            await trio.testing.wait_all_tasks_blocked()
            await store.submit(say(ALICE, "two"))
            drained = trio.Event()

            async def drainer() -> None:
                await store.drain()
                drained.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drainer)
                await trio.testing.wait_all_tasks_blocked()
                assert not drained.is_set() and store.pending == 2
                await store.submit(say(ALICE, "three"))  # queued while draining: waited for too
                store._write_limiter.release()
                await drained.wait()
                assert store.pending == 0
                assert [text_of(s.message) for s in flat(batches)] == ["one", "two", "three"]


async def test_drain_does_not_wait_for_a_cancelled_submit(tmp_path: Path) -> None:
    """A submit cancelled on its way in (a reader stopped at shutdown) is not waited for."""
    with trio.fail_after(LIMIT):
        store = Store.open(tmp_path / "chat.db", max_pending=1)
        try:
            await store.submit(say(ALICE, "one"))  # fills the queue; the writer is not running
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.submit, say(ALICE, "two"))  # blocks: queue full
                await trio.testing.wait_all_tasks_blocked()
                assert store.pending == 1  # "two" waits for room: not accepted yet
                nursery.cancel_scope.cancel()
            assert store.pending == 1
            batches: list[list[Stored]] = []
            async with trio.open_nursery() as nursery:
                await nursery.start(store.run, batches.append, no_failure)
                await store.drain()
                nursery.cancel_scope.cancel()
            assert [text_of(s.message) for s in flat(batches)] == ["one"]
        finally:
            store.close()


async def test_backpressure_bounds_pending_drafts(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "chat.db", max_pending=4)
    batches: list[list[Stored]] = []
    try:
        with trio.fail_after(LIMIT):
            for i in range(4):
                await store.submit(say(ALICE, str(i)))  # room for these: no wait
            done = trio.Event()

            async def fifth() -> None:
                await store.submit(say(ALICE, "4"))
                done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(fifth)
                await trio.testing.wait_all_tasks_blocked()
                assert not done.is_set()
                assert store.pending == 4  # the fifth is not accepted yet: it waits for room

                # a cancelled submit is no longer counted
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await store.submit(say(BOB, "cancelled"))
                assert store.pending == 4

                await nursery.start(store.run, batches.append, no_failure)
                await done.wait()
                await store.drain()
                assert store.pending == 0
                store.stop()
    finally:
        store.close()
    assert [text_of(s.message) for s in flat(batches)] == ["0", "1", "2", "3", "4"]
    assert [m.id for m in fresh(flat(batches))] == [1, 2, 3, 4, 5]
