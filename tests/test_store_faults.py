"""The store when SQLite fails: a full disk, a lock held by another process, a damaged file.

Real SQLite files under `tmp_path`, no mocks: a full disk is `PRAGMA max_page_count`
on the writer's connection (SQLITE_FULL, "database or disk is full"), a lock is
`BEGIN IMMEDIATE` on another connection or in another process, damage is bytes
written over the file. The writer's pauses after a failure run on the autojump
clock; only SQLite's busy timeouts wait in real time (a fifth of a second each).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest
import trio
import trio.testing

from trio_chat.protocol import Message, Name
from trio_chat.store import (
    FIRST_PAUSE,
    LONGEST_PAUSE,
    Account,
    Draft,
    Store,
    Stored,
    StoreError,
    StoreUnavailable,
    room_conv,
)

pytestmark = pytest.mark.trio

FULL = "the history store is unavailable: database or disk is full"
LOCKED = "the history store is unavailable: database is locked"
SHORT_BUSY = 0.2  # seconds: the busy timeout of the tests that lock the file


def nm(spelling: str) -> Name:
    return Name(spelling, spelling.lower())


ALICE, BOB, CAROL = nm("Alice"), nm("Bob"), nm("Carol")
GENERAL, RANDOM = nm("General"), nm("random")


def big(tag: str) -> str:
    """A text bigger than a page: its row needs new pages, which a full disk cannot give."""
    return tag + "." + "x" * 6000


def say(sender: Name, text: str, *, room: Name = GENERAL, nonce: str | None = None) -> Draft:
    return Draft(sender, text, room=room, nonce=nonce)


def dm(sender: Name, to: Name, text: str) -> Draft:
    return Draft(sender, text, to=to)


class Writer:
    """The writer's two callbacks, recording what was committed and what failed."""

    def __init__(self) -> None:
        self.committed: list[list[Stored]] = []
        self.failed: list[tuple[list[Draft], StoreUnavailable]] = []
        self.times: list[tuple[str, float]] = []  # ("commit" | "fail", trio time)

    def on_commit(self, batch: list[Stored]) -> None:
        self.committed.append(batch)
        self.times.append(("commit", trio.current_time()))

    def on_failed(self, batch: list[Draft], error: StoreUnavailable) -> None:
        self.failed.append((batch, error))
        self.times.append(("fail", trio.current_time()))

    def ids(self) -> list[int]:
        return [s.message.id for batch in self.committed for s in batch if not s.duplicate]


@asynccontextmanager
async def running(
    path: Path, *, max_batch: int = 1024, busy_timeout: float = 5.0
) -> AsyncIterator[tuple[Store, Writer]]:
    """An open store with its writer running; on exit: stop, the writer returns, close."""
    store = Store.open(path, max_batch=max_batch, busy_timeout=busy_timeout)
    writer = Writer()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run, writer.on_commit, writer.on_failed)
            yield store, writer
            store.stop()
    finally:
        store.close()


def plain(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def texts(path: Path) -> list[tuple[int, str]]:
    """What the file holds, read on a connection of its own: (id, first 20 characters)."""
    with plain(path) as db:
        return db.execute("SELECT id, substr(text, 1, 20) FROM messages ORDER BY id").fetchall()


def fill_disk(store: Store) -> None:
    """No page more for the writer: every commit that needs a new page fails with SQLITE_FULL.

    Call it only while the writer thread is idle (after `drain`, or in a callback).
    """
    if store._db.execute("PRAGMA freelist_count").fetchone()[0]:
        store._db.execute("VACUUM")  # free pages (from the schema's upgrades) would be used first
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(store: Store) -> None:
    store._db.execute("PRAGMA max_page_count = 1073741823")


# --------------------------------------------------------------------------- disk full


@pytest.mark.parametrize("room", [GENERAL, RANDOM], ids=["known room", "new room"])
async def test_a_full_disk_fails_only_that_batch(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, room: Name
) -> None:
    """A batch is one transaction, which SQLite may leave open after SQLITE_FULL (the
    statement journal undoes the INSERT): we end it; nothing of it is stored."""
    path = tmp_path / "chat.db"
    async with running(path) as (store, writer):
        await store.submit(say(ALICE, "before"))
        await store.drain()
        assert writer.ids() == [1]

        fill_disk(store)
        drafts = [
            say(ALICE, big("a"), room=room, nonce="n1"),
            dm(BOB, ALICE, big("b")),
            say(CAROL, big("c"), room=room),
        ]
        for draft in drafts:
            await store.submit(draft)
        await store.drain()

        assert store.pending == 0 and store._committing == 0
        assert len(writer.failed) == 1 and len(writer.committed) == 1
        batch, error = writer.failed[0]
        assert len(batch) == 3 and all(a is b for a, b in zip(batch, drafts, strict=True))
        assert type(error) is StoreUnavailable and str(error) == FULL
        # nothing of the batch is stored, its ids and its room are not taken
        assert texts(path) == [(1, "before")]
        assert store.last_id == 1 and store._next_id == 2
        assert store.rooms == {"general": "General"}
        assert store.batches == 1
        assert not store._db.in_transaction

        # reads go on while writes fail
        page = await store.page(room_conv("general"), upto=store.last_id)
        assert [m.text for m in page.messages if isinstance(m, Message)] == ["before"]
        assert len(page.messages) == 1
        assert await store.find_nonce("alice", "n1") is None

        # space returns: the next batch commits with the next ids
        free_disk(store)
        for draft in drafts:
            await store.submit(draft)
        await store.drain()
        assert len(writer.failed) == 1
        assert writer.ids() == [1, 2, 3, 4]
        assert [s.draft for s in writer.committed[1]] == drafts
        assert store.last_id == 4 and store.rooms[room.key] == room.spelling
        assert [(i, text[:1]) for i, text in texts(path)] == [
            (1, "b"), (2, "a"), (3, "b"), (4, "c")
        ]  # fmt: skip
        found = await store.find_nonce("alice", "n1")
        assert found is not None and found.id == 2

    store = Store.open(path)  # and a restart agrees
    try:
        assert store.last_id == 4 and store.rooms[room.key] == room.spelling
    finally:
        store.close()


async def test_a_full_disk_fails_each_batch_while_it_lasts(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Batch after batch fails, each to on_failed once, one warning line each; drain is exact."""
    path = tmp_path / "chat.db"
    caplog.set_level(logging.WARNING, logger="trio_chat.store")
    async with running(path, max_batch=2) as (store, writer):
        fill_disk(store)
        await store._write_limiter.acquire()  # the writer waits to commit its first batch
        for i in range(5):
            await store.submit(say(ALICE, big(str(i))))
        await trio.testing.wait_all_tasks_blocked()
        assert store.pending == 5 and store._committing == 2
        drained = trio.Event()

        async def drainer() -> None:
            await store.drain()
            drained.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drainer)
            await trio.testing.wait_all_tasks_blocked()
            assert not drained.is_set()
            store._write_limiter.release()
            await drained.wait()
        assert store.pending == 0 and store._committing == 0
        assert [[d.text[:1] for d in batch] for batch, _ in writer.failed] == [
            ["0", "1"], ["2", "3"], ["4"]
        ]  # fmt: skip
        assert writer.committed == [] and store.last_id == 0 and texts(path) == []

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    for record in warnings:
        line = record.getMessage()
        assert "\n" not in line and FULL in line


async def test_a_batch_prepared_behind_a_failed_one_gets_the_ids_still_free(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The writer prepares the next batch (its ids) while one is being written; when that one
    fails, the next is prepared again: it takes the ids the failed batch left unused."""
    path = tmp_path / "chat.db"
    store = Store.open(path, max_batch=1)
    committed: list[Stored] = []
    failed: list[Draft] = []

    def on_failed(batch: list[Draft], error: StoreUnavailable) -> None:
        failed.extend(batch)
        free_disk(store)  # the writer thread is idle while the callback runs

    try:
        fill_disk(store)
        await store._write_limiter.acquire()  # the writer waits with its first batch prepared
        for draft in (say(ALICE, big("a")), say(BOB, "b"), say(CAROL, "c")):
            await store.submit(draft)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run, committed.extend, on_failed)
            await trio.testing.wait_all_tasks_blocked()
            store._write_limiter.release()  # "a" is written while "b" is prepared as id 2
            await store.drain()
            store.stop()
    finally:
        store.close()
    assert [draft.text[:1] for draft in failed] == ["a"]
    assert [(s.message.id, s.draft.text) for s in committed] == [(1, "b"), (2, "c")]
    assert texts(path) == [(1, "b"), (2, "c")]


async def test_the_pause_after_a_failure_doubles_and_a_success_resets_it(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """So a full disk does not spin a core: 0.05 s, doubling up to 2 s, none after a success."""
    path = tmp_path / "chat.db"
    async with running(path, max_batch=1) as (store, writer):
        fill_disk(store)
        for i in range(9):
            await store.submit(say(ALICE, big(str(i))))
        await store.drain()
        free_disk(store)
        await store.submit(say(ALICE, "fits"))  # after the pause of the 9th failure
        await store.drain()
        fill_disk(store)
        for i in range(3):
            await store.submit(say(ALICE, big(f"again {i}")))
        await store.drain()

    kinds = [kind for kind, _ in writer.times]
    assert kinds == ["fail"] * 9 + ["commit"] + ["fail"] * 3
    times = [t for _, t in writer.times]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    expected = [FIRST_PAUSE * 2**k for k in range(6)] + [LONGEST_PAUSE] * 2  # up to 2 s
    expected += [LONGEST_PAUSE]  # the commit waits out the pause of the failure before it
    expected += [0.0, FIRST_PAUSE, 2 * FIRST_PAUSE]  # no pause after a commit; then anew
    assert gaps == pytest.approx(expected)
    assert writer.ids() == [1]


async def test_stop_while_commits_fail_fails_the_rest_without_pausing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    store = Store.open(tmp_path / "chat.db", max_batch=1)
    writer = Writer()
    try:
        fill_disk(store)
        for i in range(4):
            await store.submit(say(ALICE, big(str(i))))
        store.stop()
        start = trio.current_time()
        await store.run(writer.on_commit, writer.on_failed)  # returns by itself
        assert trio.current_time() == start
        assert len(writer.failed) == 4 and store.pending == 0
    finally:
        store.close()


async def test_create_account_on_a_full_disk(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A one-row INSERT failing with SQLITE_FULL ends its transaction itself: no ROLLBACK error."""
    path = tmp_path / "chat.db"
    account = Account("dave", "Dave", "scrypt$" + "h" * 5000, 1)  # more than a page
    async with running(path) as (store, _):
        fill_disk(store)
        with pytest.raises(StoreUnavailable, match=FULL):
            await store.create_account(account)
        assert "dave" not in store.accounts
        assert not store._db.in_transaction
        free_disk(store)
        assert await store.create_account(account)
        assert store.accounts["dave"] == account
    with plain(path) as db:
        assert db.execute("SELECT key FROM accounts").fetchall() == [("dave",)]


async def test_a_programming_error_is_not_unavailable(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A NOT NULL violation (IntegrityError) is our bug: it propagates, on_failed is not called."""
    store = Store.open(tmp_path / "chat.db")
    writer = Writer()
    try:
        await store.submit(say(ALICE, None))  # type: ignore[arg-type]
        store.stop()
        with pytest.raises(sqlite3.IntegrityError):
            await store.run(writer.on_commit, writer.on_failed)
        assert writer.failed == [] and writer.committed == []
    finally:
        store.close()


# --------------------------------------------------------------------------- locked


@pytest.mark.parametrize("room", [GENERAL, RANDOM], ids=["known room", "new room"])
async def test_a_lock_held_past_the_busy_timeout_fails_the_batch(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, room: Name
) -> None:
    """An admin's shell in BEGIN IMMEDIATE: the batch fails after the busy timeout, reads go on,
    and once the lock is released the writer commits again."""
    path = tmp_path / "chat.db"
    async with running(path, busy_timeout=SHORT_BUSY) as (store, writer):
        await store.submit(say(ALICE, "before"))
        await store.drain()
        with plain(path) as admin:
            admin.execute("BEGIN IMMEDIATE")
            await store.submit(say(BOB, "locked out", room=room))
            await store.submit(dm(BOB, ALICE, "me too"))
            await store.drain()
            [(batch, error)] = writer.failed
            assert [d.text for d in batch] == ["locked out", "me too"]
            assert type(error) is StoreUnavailable and str(error) == LOCKED
            assert store.last_id == 1 and store.rooms == {"general": "General"}
            page = await store.page(room_conv("general"), upto=store.last_id)  # WAL: no wait
            assert [m.text for m in page.messages if isinstance(m, Message)] == ["before"]
            admin.execute("ROLLBACK")
        for draft in batch:
            await store.submit(draft)
        await store.drain()
        assert writer.ids() == [1, 2, 3] and len(writer.failed) == 1
        assert store.rooms[room.key] == room.spelling
    assert texts(path) == [(1, "before"), (2, "locked out"), (3, "me too")]


_HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO accounts VALUES ('admin', 'Admin', 'x', 1, '2024-01-01T00:00:00.000Z')")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


async def test_another_process_holding_the_lock(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The lock is another process's, which then commits a change of its own."""
    path = tmp_path / "chat.db"
    async with running(path, busy_timeout=SHORT_BUSY) as (store, writer):
        await store.submit(say(ALICE, "before"))
        await store.drain()
        admin = await trio.lowlevel.open_process(
            [sys.executable, "-c", _HOLD_LOCK, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert admin.stdout is not None and admin.stdin is not None
            assert (await admin.stdout.receive_some()).strip() == b"locked"
            await store.submit(say(BOB, "locked out"))
            await store.drain()
            [(batch, error)] = writer.failed
            assert str(error) == LOCKED and store.last_id == 1
            await admin.stdin.send_all(b"go\n")
            assert await admin.wait() == 0
        finally:
            if admin.poll() is None:
                admin.kill()
        await store.submit(batch[0])
        await store.drain()
        assert writer.ids() == [1, 2]
    assert texts(path) == [(1, "before"), (2, "locked out")]
    with plain(path) as db:
        assert db.execute("SELECT key FROM accounts").fetchall() == [("admin",)]


async def test_the_store_opens_while_another_connection_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    """In WAL mode a held write lock does not stop a start: the checks and reads do not wait."""
    path = tmp_path / "chat.db"
    Store.open(path).close()
    with plain(path) as admin:
        admin.execute("BEGIN IMMEDIATE")
        Store.open(path, busy_timeout=SHORT_BUSY).close()
        admin.execute("ROLLBACK")


# --------------------------------------------------------------------------- a damaged file


def _real_database(path: Path) -> None:
    """A checkpointed database of 300 messages in one room: some 40 pages of table and index."""
    Store.open(path).close()
    with plain(path) as db:
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO messages (id, conv, room, recipient, sender, sender_key, text, ts, nonce)"
            " VALUES (?, '#general', 'General', NULL, 'Alice', 'alice',"
            " ?, '2024-01-01T00:00:00.000Z', NULL)",
            [(i, f"{i} " + "y" * 300) for i in range(1, 301)],
        )
        db.execute("INSERT INTO rooms VALUES ('general', 'General')")
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _page_count(path: Path) -> int:
    return path.stat().st_size // 4096


def _overwrite_page(path: Path, page: int) -> None:
    with path.open("r+b") as file:
        file.seek((page - 1) * 4096)
        file.write(random.Random(page).randbytes(4096))


def damage(path: Path, kind: str) -> None:
    if kind == "random bytes":
        path.write_bytes(random.Random(1).randbytes(40_000))
        return
    _real_database(path)
    if kind == "truncated":
        size = path.stat().st_size
        with path.open("r+b") as file:
            file.truncate(size // 2 + 1000)  # in the middle of a page
    elif kind == "table root":
        _overwrite_page(path, 2)  # the messages table's root: SELECT max(id) at start reads it
    else:
        assert kind == "middle page"  # no read at start touches it: only quick_check finds it
        _overwrite_page(path, _page_count(path) // 2)


DAMAGE = ["random bytes", "truncated", "table root", "middle page"]


@pytest.mark.parametrize("kind", DAMAGE)
async def test_a_damaged_file_is_one_line_at_open(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "chat.db"
    damage(path, kind)
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert type(info.value) is StoreError
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert path.read_bytes() == before  # a damaged file is left as it was


async def test_quick_check_is_what_finds_a_page_no_start_up_read_touches(
    tmp_path: Path,
) -> None:
    """Without the check the file opens and the damage shows at a read: StoreUnavailable."""
    path = tmp_path / "chat.db"
    damage(path, "middle page")
    with pytest.raises(StoreError, match="damaged"):
        Store.open(path)
    store = Store.open(path, quick_check=False)
    try:
        assert store.last_id == 300
        with pytest.raises(StoreUnavailable, match="malformed") as info:
            await store.page(room_conv("general"), upto=store.last_id, limit=1000)
        assert (
            str(info.value) == "the history store is unavailable: database disk image is malformed"
        )
    finally:
        store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
async def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    Store.open(path).close()
    path.chmod(0)
    try:
        with pytest.raises(StoreError) as info:
            Store.open(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    finally:
        path.chmod(0o600)


@pytest.mark.parametrize("kind", DAMAGE)
async def test_the_server_on_a_damaged_file_says_one_line_and_exits(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "chat.db"
    damage(path, kind)
    with trio.fail_after(30):
        result = await trio.run_process(
            [sys.executable, "-m", "trio_chat", "--db", str(path), "--port", "0"],
            capture_stdout=True,
            capture_stderr=True,
            stdin=subprocess.DEVNULL,
            cwd=tmp_path,
            check=False,
        )
    stderr = result.stderr.decode()
    assert result.returncode != 0
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("trio-chat: ") and str(path) in lines[0]
