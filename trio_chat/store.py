"""The history and accounts in SQLite: one writer connection in a worker thread, group commit.

Every message accepted while a commit runs goes into the next one, so one fsync
(WAL, synchronous=FULL) is paid per batch, not per message. Ids are assigned
here, in commit order, and a batch is handed on only once it is durable.

A batch whose commit fails because the store cannot be used now (disk full, the
file locked by another process, an I/O error) is handed back as failed, with
nothing of it stored and no id used; the writer goes on with the next batch.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple, TypeVar

import outcome
import trio

from .core.timestamps import format_ts
from .protocol import (
    HISTORY_LIMIT,
    DeleteEntry,
    EditEntry,
    Entry,
    Message,
    Name,
    RequestId,
    TopicEntry,
)
from .rooms_schema import SCHEMA as ROOMS_SCHEMA

log = logging.getLogger(__name__)

_T = TypeVar("_T")

SCHEMA_VERSION: Final = 5
WRITER_SWITCH_INTERVAL: Final = 0.0005  # seconds; Python's default is 0.005
# After a failed commit the writer pauses, so a full disk does not spin a core:
# the pause doubles while commits keep failing and is dropped at the next success.
FIRST_PAUSE: Final = 0.05  # seconds
LONGEST_PAUSE: Final = 2.0
# After a commit, re-sent nonces are looked up; a failing look-up is tried again this often.
LOOKUP_TRIES: Final = 5
# A search that runs longer than this is stopped (SearchTooBroad): it holds the reader.
SEARCH_SECONDS: Final = 0.5

# Version 0 is an empty file; each step upgrades the schema by one version: a script of
# statements split at `;`, or a list of statements (a trigger holds `;` of its own).
_MIGRATIONS: Final[dict[int, str | list[str]]] = {
    0: """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,      -- global, increasing in commit order
        conv TEXT NOT NULL,          -- '#room-key', or '@key1 key2' for a direct conversation
        room TEXT,                   -- the room's spelling, for a room message
        recipient TEXT,              -- the recipient's spelling, for a direct message
        sender TEXT NOT NULL,
        sender_key TEXT NOT NULL,
        text TEXT NOT NULL,
        ts TEXT NOT NULL,
        nonce TEXT
    );
    CREATE INDEX messages_by_conv ON messages (conv, id);
    CREATE UNIQUE INDEX messages_by_nonce ON messages (sender_key, nonce) WHERE nonce IS NOT NULL;
    CREATE TABLE rooms (key TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE accounts (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        first_id INTEGER NOT NULL,   -- direct messages before this id belong to earlier owners
        created TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # Section 9: the log holds edits, deletions and topic changes beside messages, and a
    # full-text index of the messages' current text, kept in step by triggers inside
    # the same transaction (an external-content FTS5 table, as soju does).
    1: [
        "ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'",
        "ALTER TABLE messages ADD COLUMN target INTEGER",  # edit, delete: the message
        "ALTER TABLE messages ADD COLUMN reply_to INTEGER",
        "ALTER TABLE messages ADD COLUMN action INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE messages ADD COLUMN account INTEGER NOT NULL DEFAULT 0",  # sent by one
        "ALTER TABLE messages ADD COLUMN edited TEXT",  # a message: its latest edit's ts
        "ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX messages_by_target ON messages (target) WHERE target IS NOT NULL",
        # messages from before: those an account sent since it was made are its own
        "UPDATE messages SET account = 1 WHERE EXISTS (SELECT 1 FROM accounts a"
        " WHERE a.key = messages.sender_key AND messages.id >= a.first_id)",
        "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages',"
        " content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
        "INSERT INTO messages_fts (rowid, text) SELECT id, text FROM messages",
        "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages"
        " WHEN new.kind = 'message' BEGIN"
        " INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text); END",
        "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages"
        " WHEN old.kind = 'message' BEGIN"
        " INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
        " INSERT INTO messages_fts (rowid, text) SELECT new.id, new.text WHERE new.deleted = 0;"
        " END",
        "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages"
        " WHEN old.kind = 'message' AND old.deleted = 0 BEGIN"
        " INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
        " END",
    ],
    # Section 10: read markers, forward only; and each name's direct conversations, kept by a
    # trigger in the commit's transaction, so `directs` reads them by index.
    2: [
        "CREATE TABLE markers (account TEXT NOT NULL, conv TEXT NOT NULL, upto INTEGER NOT NULL,"
        " PRIMARY KEY (account, conv)) WITHOUT ROWID",
        "CREATE TABLE parties (party TEXT NOT NULL, conv TEXT NOT NULL,"
        " PRIMARY KEY (party, conv)) WITHOUT ROWID",
        # '@a b': a is substr(conv, 2, instr(conv, ' ') - 2), b what follows the space
        "INSERT OR IGNORE INTO parties SELECT substr(conv, 2, instr(conv, ' ') - 2), conv"
        " FROM messages WHERE conv >= '@' AND conv < 'A' GROUP BY conv",
        "INSERT OR IGNORE INTO parties SELECT substr(conv, instr(conv, ' ') + 1), conv"
        " FROM messages WHERE conv >= '@' AND conv < 'A' GROUP BY conv",
        "CREATE TRIGGER parties_insert AFTER INSERT ON messages"
        " WHEN substr(new.conv, 1, 1) = '@' BEGIN"
        " INSERT OR IGNORE INTO parties VALUES"
        " (substr(new.conv, 2, instr(new.conv, ' ') - 2), new.conv),"
        " (substr(new.conv, instr(new.conv, ' ') + 1), new.conv); END",
    ],
    # Section 11: rooms with owners, roles, invitations, bans and the moderation log.
    3: ROOMS_SCHEMA,
    # Cheaper commits, the same search: a batch's new messages are indexed by one
    # INSERT ... SELECT in its transaction (_INDEX_NEW), not by a trigger per row; and the
    # index keeps no column sizes (a table written per message, read only by bm25(), which
    # search does not use: hits come newest first).
    4: [
        "DROP TRIGGER messages_fts_insert",
        "DROP TABLE messages_fts",
        "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages',"
        " content_rowid='id', tokenize='unicode61 remove_diacritics 2', columnsize=0)",
        "INSERT INTO messages_fts (rowid, text)"
        " SELECT id, text FROM messages WHERE kind = 'message' AND deleted = 0",
    ],
}


class StoreError(Exception):
    """The database cannot be used (a bad path, not a database, damaged, a newer schema)."""


class SearchTooBroad(Exception):
    """A search was stopped after its time (many short prefixes, say): nothing is wrong with
    the store, the query is too broad."""


class StoreUnavailable(StoreError):
    """The store cannot serve this request now (disk full, locked, an I/O error); try later.

    Its str is one line, fit for a log and for a user.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"the history store is unavailable: {reason}")
        self.reason = reason


# What SQLite raises when the file cannot be used now (SQLITE_FULL, BUSY, IOERR,
# READONLY, CANTOPEN: OperationalError; CORRUPT, NOTADB: DatabaseError itself).
# DatabaseError's other subclasses (IntegrityError, ProgrammingError...) are bugs
# of ours, and InterfaceError is no DatabaseError: those propagate.
_UNAVAILABLE: Final = (sqlite3.OperationalError, sqlite3.DatabaseError)


def _unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    """The StoreUnavailable for an SQLite error meaning "unusable now"; any other error is raised.

    Call it in an `except sqlite3.Error` block: `raise _unavailable(exc) from exc`.
    """
    if type(exc) not in _UNAVAILABLE:
        raise exc
    return StoreUnavailable(_one_line(str(exc)))


def _one_line(text: str) -> str:
    """An SQLite message (quick_check's can span lines) as one line, for a log and a user."""
    return " ".join(text.split())


def room_conv(room_key: str) -> str:
    return "#" + room_key


def direct_conv(key_a: str, key_b: str) -> str:
    """One key for the conversation of two names, whoever writes (a space is in no name)."""
    first, second = sorted((key_a, key_b))
    return f"@{first} {second}"


class Draft(NamedTuple):
    """A message accepted from a client, waiting for its commit.

    `origin` is whoever sent it (the hub's member), handed back untouched;
    `recipient`, for a direct message, the connection it is addressed to.
    A NamedTuple, not a frozen dataclass: one is made per message on the hot path.
    """

    sender: Name
    text: str
    room: Name | None = None
    to: Name | None = None
    nonce: str | None = None
    re: RequestId | None = None
    origin: object = None
    recipient: object = None
    kind: str = "message"  # or "edit", "delete", "topic": every entry of the log
    target: int | None = None  # edit, delete: the message
    reply_to: int | None = None
    action: bool = False
    account: bool = False  # sent with an account (its author is the account)
    conv: str | None = None  # edit, delete: the message's conversation


class _Prepared(NamedTuple):
    """A batch ready for its commit: its entries, rows, new rooms, edits and deletions."""

    stored: list[Stored]
    rows: list[tuple[object, ...]]
    new_rooms: dict[str, str]
    changes: list[tuple[str, tuple[object, ...]]]
    nonced: list[int]  # where in `stored` the first use of each nonce is
    next_id: int  # the first id after the batch


class Stored(NamedTuple):
    """A draft after its commit: the message as stored (the earlier one for a repeated nonce)."""

    draft: Draft
    message: Entry
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Account:
    key: str
    name: str
    hash: str
    first_id: int


@dataclass(frozen=True, slots=True)
class Original:
    """A stored message as the rules see it: where it is, who wrote it, whether it is gone."""

    id: int
    conv: str
    room: str | None
    to: str | None
    sender_key: str
    account: bool
    deleted: bool

    @property
    def room_key(self) -> str | None:
        """The room's key, for a room message."""
        return self.conv[1:] if self.conv.startswith("#") else None

    @property
    def to_key(self) -> str | None:
        """The recipient's key, for a direct message."""
        if self.room_key is not None:
            return None
        first, second = self.conv[1:].split(" ", 1)
        return second if first == self.sender_key else first


class Marker(NamedTuple):
    """A read marker after a `mark`: where it is, whether it moved, its entry's time (or None)."""

    upto: int
    moved: bool
    ts: str | None


class Direct(NamedTuple):
    """A direct conversation of a name: the other name, the newest entry, marker and unread."""

    conv: str
    other_key: str
    other: str  # its spelling in the newest entry
    last: int
    read: int
    unread: int


@dataclass(frozen=True, slots=True)
class Page:
    messages: list[Entry]
    more: bool


OnCommit = Callable[[list[Stored]], None]
OnFailed = Callable[[list[Draft], StoreUnavailable], None]

_COLUMNS: Final = (
    "id, room, recipient, sender, text, ts, kind, target, reply_to, action, edited, deleted"
)
_Row = tuple[
    int, str | None, str | None, str, str, str, str, int | None, int | None, int, str | None, int
]


def _row_message(row: _Row) -> Entry:
    """A stored entry as the protocol shows it: a message in its current state, or an edit,
    deletion or topic change (an edit of a deleted message has lost its text)."""
    id_, room, to, sender, text, ts, kind, target, reply_to, action, edited, deleted = row
    if kind == "message":
        return Message(
            id_, sender, text, ts, room, to,
            reply_to=reply_to, action=bool(action), edited=edited, deleted=bool(deleted),
        )  # fmt: skip
    if kind == "edit":
        assert target is not None
        return EditEntry(id_, target, sender, text, ts, room, to, deleted=not text)
    if kind == "delete":
        assert target is not None
        return DeleteEntry(id_, target, sender, ts, room, to)
    assert room is not None
    return TopicEntry(id_, room, text, sender, ts)


class _Write:
    """A call running in a worker thread (started at once) while the trio thread goes on
    with work of its own; `on_end` is called in the trio thread when it is done."""

    def __init__(self, work: Callable[[], list[Stored]], on_end: Callable[[], None]) -> None:
        self.done = False
        self._result: outcome.Outcome[list[Stored]] | None = None
        self._on_end = on_end
        token = trio.lowlevel.current_trio_token()
        trio.lowlevel.start_thread_soon(work, lambda result: token.run_sync_soon(self._end, result))

    def _end(self, result: outcome.Outcome[list[Stored]]) -> None:
        self._result = result
        self.done = True
        self._on_end()

    def outcome(self) -> outcome.Outcome[list[Stored]]:
        assert self._result is not None, "the write is not done"
        return self._result


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A connection in autocommit mode that waits `busy_timeout` seconds for another's lock."""
    return sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )


def _roll_back(db: sqlite3.Connection) -> None:
    """End a failed transaction, unless SQLite has ended it already.

    On SQLITE_FULL, IOERR, BUSY... SQLite may roll the whole transaction back
    itself; a ROLLBACK then fails with "no transaction is active". A ROLLBACK
    always ends the transaction, even when it reports an error, so that error
    is dropped: the one to report is the error that made us roll back.
    """
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.debug("rollback of %s: %s", db, exc)


class Store:
    """The history store. Open it, run its writer in a nursery, submit drafts, read pages."""

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int = 1024,
        max_pending: int = 8192,
        busy_timeout: float = 5.0,
        quick_check: bool = True,
    ) -> None:
        self.path = path
        self.max_batch = max(1, max_batch)
        try:
            self._db = _connect(path, busy_timeout)
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open {path} as the history database: {_one_line(str(exc))}"
            ) from None
        # Every read at start is in here: a damaged file is one StoreError, not a traceback.
        reader: sqlite3.Connection | None = None
        try:
            if quick_check:
                self._check()
            self._migrate()
            self._reader = reader = _connect(path, busy_timeout)
            self._values_rows = _values_rows(self._db)
            reader.execute("PRAGMA query_only = 1")
            row = self._db.execute("SELECT max(id) FROM messages").fetchone()
            self._next_id: int = (row[0] or 0) + 1
            self.rooms: dict[str, str] = dict(self._db.execute("SELECT key, name FROM rooms"))
            self.accounts: dict[str, Account] = {
                r[0]: Account(*r)
                for r in self._db.execute("SELECT key, name, hash, first_id FROM accounts")
            }
        except (sqlite3.Error, StoreError) as exc:
            if reader is not None:
                reader.close()
            self._db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(
                f"cannot use {path} as the history database: {_one_line(str(exc))}"
            ) from None
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(1)
        self.max_pending = max(1, max_pending)
        # Drafts waiting for the writer. Taken and counted in one synchronous step,
        # so `pending` is exact whenever another task looks at it.
        self._queue: deque[Draft] = deque()
        self._committing = 0  # drafts taken from the queue whose commit is not handed on yet
        self.accepted = 0  # drafts submitted so far: `barrier` counts against it
        self._handed = 0  # drafts handed on, committed or failed
        self._abandoned = 0  # submits cancelled (or refused) before their draft was queued
        # Submitters waiting for room, in arrival order, each with its draft: the writer
        # moves their drafts into the queue and wakes them, a whole batch's worth at once.
        self._waiting: deque[tuple[Draft, trio.lowlevel.Task]] = deque()
        self._stopped = False
        self._stopping = trio.Event()  # set by stop()
        # The writer's wake-up: set once `_wanted` drafts are queued, its write is done,
        # or the store stops.
        self._arrived = trio.Event()
        self._wanted = 1
        self._progress = trio.Event()  # set after each batch is handed on
        self.batches = 0  # commits so far, for the benchmark's batch_mean
        self.commit_seconds = 0.0  # how long the last commit took (metrics)
        self.errors = 0  # failed commits here, failed reads counted by the core (metrics)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        max_batch: int = 1024,
        max_pending: int = 8192,
        busy_timeout: float = 5.0,
        quick_check: bool = True,
    ) -> Store:
        """Open (or create) the history file; StoreError, one line, if it cannot be used.

        `busy_timeout`: seconds to wait for another process's lock before a
        commit fails. `quick_check`: check every page at open, so a damaged file
        is refused at start rather than found at some later read (0.5 to 0.9 s
        per million messages with the file in the page cache, 2.5 s from disk).
        """
        return cls(
            Path(path),
            max_batch=max_batch,
            max_pending=max_pending,
            busy_timeout=busy_timeout,
            quick_check=quick_check,
        )

    @property
    def last_id(self) -> int:
        """The newest id committed so far (0 on an empty store)."""
        return self._next_id - 1

    # ------------------------------------------------------------------ schema

    def _check(self) -> None:
        """Refuse a damaged file before anything is written to it (PRAGMA quick_check)."""
        result = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if result != "ok":
            lines = [line for line in result.splitlines() if not line.startswith("***")]
            problem = _one_line(lines[0] if lines else result)
            raise StoreError(
                f"cannot use {self.path} as the history database: it is damaged"
                f" (quick_check: {problem})"
            )

    def _migrate(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version};"
                f" this server knows up to {SCHEMA_VERSION}"
            )
        if version == 0:  # an empty file, or somebody else's database: leave that one alone
            found = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
            if found:
                raise StoreError(f"{self.path} is not a trio-chat database (it holds {found})")
        db.execute("PRAGMA secure_delete = ON")  # a deleted text's bytes are zeroed, not freed
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
        db.execute("PRAGMA synchronous = FULL")
        while version < SCHEMA_VERSION:
            with self._transaction(db):
                step = _MIGRATIONS[version]
                for statement in _statements(step) if isinstance(step, str) else step:
                    db.execute(statement)
                version += 1
                db.execute(f"PRAGMA user_version = {version}")
            log.info("upgraded %s to schema version %d", self.path, version)

    @staticmethod
    @contextmanager
    def _transaction(db: sqlite3.Connection) -> Iterator[None]:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")  # in the try: a COMMIT that fails is rolled back too
        except BaseException:
            _roll_back(db)
            raise

    def close(self) -> None:
        self._reader.close()
        self._db.close()

    # ------------------------------------------------------------------ writing

    async def submit(self, draft: Draft) -> None:
        """Queue a draft for the next commit; waits while `max_pending` are already waiting.

        This wait is the backpressure on commits: a reader that submits faster
        than the disk commits is read more slowly, instead of memory growing.
        It yields only to wait for room: a reader handing on a chunk of frames
        pays no task switch per message (it is still cancellable here). Drafts
        that wait enter the queue in the order they came, and a draft that comes
        while others wait takes its place behind them.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self.accepted += 1  # counted from the call: `barrier` waits for it even while it waits
        if self._stopped:
            self._abandon()
            raise trio.ClosedResourceError("the store takes no more messages")
        queue = self._queue
        if len(queue) < self.max_pending and not self._waiting:
            queue.append(draft)
            if len(queue) >= self._wanted:
                self._arrived.set()
            return
        waiter = (draft, trio.lowlevel.current_task())
        self._waiting.append(waiter)

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            # still in line (an admitted draft's task is rescheduled, not aborted)
            self._waiting.remove(waiter)
            self._abandon()
            return trio.lowlevel.Abort.SUCCEEDED

        # returns once the writer has moved the draft into the queue; raises if the store stops
        await trio.lowlevel.wait_task_rescheduled(abort)

    def _admit(self) -> None:
        """Move waiting drafts into the queue while it has room, in order, and wake their tasks."""
        queue, waiting = self._queue, self._waiting
        while waiting and len(queue) < self.max_pending:
            draft, task = waiting.popleft()
            queue.append(draft)
            trio.lowlevel.reschedule(task)

    def _abandon(self) -> None:
        self._abandoned += 1
        self._note_progress()

    async def barrier(self) -> None:
        """Wait until every draft submitted before this call (even one still waiting for
        room in `submit`) is handed on, failed or abandoned."""
        target = self.accepted
        while self._handed + self._abandoned < target:
            await self._progress.wait()

    def _note_progress(self) -> None:
        progress, self._progress = self._progress, trio.Event()
        progress.set()

    @property
    def pending(self) -> int:
        """Drafts queued or being committed: not yet handed on."""
        return len(self._queue) + self._committing

    async def drain(self) -> None:
        """Wait until nothing is queued or being committed (every draft is handed on)."""
        while self.pending:
            await self._progress.wait()

    def stop(self) -> None:
        """Take no more drafts; `run` commits those already queued and returns."""
        self._stopped = True
        self._stopping.set()  # no pause after a failed commit from now on
        self._arrived.set()
        while self._waiting:  # drafts waiting for room are refused, as later ones are
            _, task = self._waiting.popleft()
            self._abandon()
            refused = trio.ClosedResourceError("the store takes no more messages")
            trio.lowlevel.reschedule(task, outcome.Error(refused))

    async def run(
        self,
        on_commit: OnCommit,
        on_failed: OnFailed,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The writer: take every queued draft, commit them as one batch, hand the batch on.

        A committed batch goes to `on_commit`. A batch whose commit failed because
        the store is unavailable goes to `on_failed` (nothing of it stored, no id
        used), and the writer pauses before the next batch. Both are called here,
        in the trio thread.

        While it runs, the interpreter's switch interval is short, so the
        writer thread gets the GIL back soon after each SQLite call even when
        the event loop is busy; it is restored when the writer stops.
        """
        previous = sys.getswitchinterval()
        sys.setswitchinterval(min(previous, WRITER_SWITCH_INTERVAL))
        try:
            task_status.started()
            await self._write_batches(on_commit, on_failed)
        finally:
            sys.setswitchinterval(previous)

    async def _write_batches(self, on_commit: OnCommit, on_failed: OnFailed) -> None:
        """Commit batch after batch, each prepared while the one before is being written.

        While the worker thread writes one batch, the next is taken off the queue
        and prepared (its ids and rows) in the trio thread as soon as a full one is
        queued, so the Python work of one overlaps the SQLite work of the other when
        the store is what limits. Its ids assume the current batch commits; if it
        fails, the next one is prepared again.
        """
        pause = 0.0  # before the next batch: grows while commits fail
        batch = await self._next_batch()
        prepared = self._prepare(batch, self._next_id) if batch else None
        while prepared is not None:
            started = time.perf_counter()  # metrics: commit_seconds
            async with self._write_limiter:  # the writer connection: one thread at a time
                write = _Write(functools.partial(self._write, prepared), self._wake)
                following: list[Draft] = []
                upcoming = None
                # A write under way is waited for, even when cancelled: its batch must be
                # handed on. Meanwhile, once a full batch is queued, it is taken and prepared;
                # with less, the writer waits for the write, so the next commit takes more.
                with trio.CancelScope(shield=True):
                    while not write.done:
                        if not following and len(self._queue) >= self.max_batch:
                            following = self._take()
                            upcoming = self._prepare(following, prepared.next_id)
                        else:
                            await self._wait(sys.maxsize if following else self.max_batch)
                result = write.outcome()
            try:
                stored = result.unwrap()
            except StoreUnavailable as error:
                self.errors += 1
                pause = min(max(2 * pause, FIRST_PAUSE), LONGEST_PAUSE)
                log.warning(
                    "a batch of %d not stored: %s (next commit in %.2f s)",
                    len(batch),
                    error,
                    pause,
                    extra={"event": "store_error"},
                )
                on_failed(batch, error)
                upcoming = None  # its ids were counted from after this batch's
            else:
                self._next_id = prepared.next_id  # from here on the batch must be handed on
                self.commit_seconds = time.perf_counter() - started
                pause = 0.0
                # here, not in the thread: the hub reads it; the first spelling stays
                for key, spelling in prepared.new_rooms.items():
                    self.rooms.setdefault(key, spelling)
                self.batches += 1
                on_commit(stored)
            self._committing -= len(batch)
            self._handed += len(batch)
            self._note_progress()
            if pause:
                with trio.move_on_after(pause):
                    await self._stopping.wait()  # no pause once stopping: fail the rest now
            batch = following or await self._next_batch()
            if upcoming is None and batch:  # not prepared yet, or with a failed batch's ids
                upcoming = self._prepare(batch, self._next_id)
            prepared = upcoming

    async def _next_batch(self) -> list[Draft]:
        """Wait for drafts and take a batch of them; [] once the store stops with none left."""
        while not self._queue:
            if self._stopped:
                return []
            await self._wait(1)
        return self._take()

    async def _wait(self, drafts: int) -> None:
        """Sleep until `drafts` are queued, the write under way is done, or the store stops."""
        self._wanted = drafts
        self._arrived = trio.Event()
        await self._arrived.wait()

    def _wake(self) -> None:
        self._arrived.set()

    def _take(self) -> list[Draft]:
        """Take up to `max_batch` queued drafts (counted as committing), and let waiting
        drafts into the room this leaves."""
        queue = self._queue
        batch = [queue.popleft() for _ in range(min(len(queue), self.max_batch))]
        self._committing += len(batch)
        self._admit()
        return batch

    def _prepare(self, batch: list[Draft], first_id: int) -> _Prepared:
        """The batch as rows to insert and the entries they become (in the trio thread).

        Ids are given in order from `first_id`, the first one after the batch
        before (which is being written meanwhile: if it fails, this batch is
        prepared again). A repeated nonce within the batch is answered with its
        first message here; one stored before is skipped by the unique index,
        and its id is then simply not used (ids may skip). This loop runs once
        per message, holding the GIL that the writing thread needs between its
        SQLite calls: it unpacks each draft once and builds plain messages inline.
        """
        ts = format_ts(time.time())
        next_id = first_id
        stored: list[Stored] = []
        rows: list[tuple[object, ...]] = []
        new_rooms: dict[str, str] = {}
        known_rooms = self.rooms
        batch_nonces: dict[tuple[str, str], Entry] = {}
        nonced: list[int] = []  # where in `stored` the first use of each nonce is
        convs: dict[str, str] = {}  # room key -> conv, once per batch
        changes: list[tuple[str, tuple[object, ...]]] = []  # edits and deletions to apply
        new_stored = tuple.__new__  # a NamedTuple's own __new__ is a Python call more
        for draft in batch:
            (sender, text, room, to, nonce, _, _, _,
             kind, target, reply_to, action, account, conv) = draft  # fmt: skip
            if nonce is not None:
                earlier = batch_nonces.get((sender.key, nonce))
                if earlier is not None:
                    stored.append(Stored(draft, earlier, True))
                    continue
            room_spelling = to_spelling = None
            if room is not None:
                room_spelling = room.spelling
                if conv is None:
                    conv = convs.get(room.key) or convs.setdefault(room.key, room_conv(room.key))
                if room.key not in known_rooms:  # the first spelling stays
                    new_rooms.setdefault(room.key, room_spelling)
            if to is not None:
                to_spelling = to.spelling
                if conv is None:
                    conv = direct_conv(sender.key, to.key)
            entry: Entry
            if kind == "message":  # by position (id, sender, text, ts, room, to, re, reply_to,
                # action): keywords cost half as much again, once per message
                entry = Message(
                    next_id, sender.spelling, text, ts, room_spelling, to_spelling, None,
                    reply_to, action,
                )  # fmt: skip
            elif kind == "edit":
                assert target is not None
                entry = EditEntry(
                    next_id, target, sender.spelling, text, ts, room_spelling, to_spelling
                )
                changes.append((_APPLY_EDIT, (text, ts, target)))
            elif kind == "delete":
                assert target is not None
                entry = DeleteEntry(
                    next_id, target, sender.spelling, ts, room_spelling, to_spelling
                )
                changes.append((_APPLY_DELETE, (target,)))
                changes.append((_ERASE_EDITS, (target,)))
                text = ""
            else:  # a topic change
                assert room_spelling is not None
                entry = TopicEntry(next_id, room_spelling, text, sender.spelling, ts)
            rows.append(
                (next_id, conv, room_spelling, to_spelling, sender.spelling, sender.key,
                 text, ts, nonce, kind, target, reply_to, action, account)
            )  # fmt: skip
            if nonce is not None:
                batch_nonces[(sender.key, nonce)] = entry
                nonced.append(len(stored))
            stored.append(new_stored(Stored, (draft, entry, False)))  # Stored(draft, entry)
            next_id += 1
        if changes and any(statement == _APPLY_EDIT for statement, _ in changes):
            # an edit committed after its message's deletion keeps no text
            changes.append((_ERASE_LATE_EDITS, (first_id,)))
        return _Prepared(stored, rows, new_rooms, changes, nonced, next_id)

    def _write(self, prepared: _Prepared) -> list[Stored]:
        """Insert and commit a prepared batch (in the worker thread); its entries, each
        draft whose nonce was stored before pointed at the message stored then.

        StoreUnavailable if the commit failed: then nothing of the batch is stored.
        """
        stored, rows, new_rooms, changes, nonced, _ = prepared
        try:
            inserted = self._insert(rows, new_rooms, changes)
        except sqlite3.Error as exc:  # rolled back: nothing stored
            raise _unavailable(exc) from exc
        if inserted < len(rows):
            self._answer_repeats(stored, nonced)
        return stored

    def _insert(
        self,
        rows: list[tuple[object, ...]],
        new_rooms: dict[str, str],
        changes: list[tuple[str, tuple[object, ...]]],
    ) -> int:
        """Insert, apply edits and deletions, commit; how many rows went in (the rest
        repeated a stored nonce).

        The rows go in as multi-row INSERTs (`_chunks`): a full batch in one SQLite
        step, so the thread gives up the GIL, and waits to get it back from the busy
        trio thread, a few times per batch, not once per row (a JSON array through
        json_each parsed each row once per column, which cost more than the insert).
        """
        db = self._db
        with self._transaction(db):
            inserted = 0
            start = 0
            for size in _chunks(len(rows), self._values_rows):
                inserted += _insert_rows(db, rows[start : start + size])
                start += size
            if inserted:
                # before the changes: an edit in this batch takes its message's text out
                db.execute(_INDEX_NEW, (rows[0][0],))  # the batch's first id
            if new_rooms:
                db.executemany("INSERT OR IGNORE INTO rooms VALUES (?, ?)", new_rooms.items())
            for statement, params in changes:
                db.execute(statement, params)
        return inserted

    def _answer_repeats(self, stored: list[Stored], nonced: list[int]) -> None:
        """Point every draft whose nonce was stored before at the message stored then.

        The batch is committed already, so it cannot be failed: a look-up that
        fails is tried again a few times (a lock, a passing I/O error), and only
        then is its error raised (the batch is safe in the file either way).
        """
        replaced: dict[int, Message] = {}
        for index in nonced:
            draft, message, _ = stored[index]
            assert draft.nonce is not None
            earlier = self._look_up(draft.sender.key, draft.nonce)
            if earlier is not None and earlier.id != message.id:
                replaced[message.id] = earlier
        for index, (draft, message, _) in enumerate(stored):
            if message.id in replaced:
                stored[index] = Stored(draft, replaced[message.id], True)

    def _look_up(self, sender_key: str, nonce: str) -> Message | None:
        """`_by_nonce` on the writer's connection, tried again on "unavailable" errors."""
        pause, tries = FIRST_PAUSE, LOOKUP_TRIES
        while True:
            try:
                return _by_nonce(self._db, sender_key, nonce)
            except sqlite3.Error as exc:
                tries -= 1
                if type(exc) not in _UNAVAILABLE or not tries:
                    raise
                log.warning("looking up a re-sent nonce: %s (again in %.2f s)", exc, pause)
            time.sleep(pause)
            pause *= 2

    async def create_account(self, account: Account) -> bool:
        """Store a new account; False when the name has one already.

        StoreUnavailable if it cannot be stored now (nothing is stored then).
        """
        try:
            created = await trio.to_thread.run_sync(
                self._create_account, account, limiter=self._write_limiter
            )
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        if created:
            self.accounts[account.key] = account
        return created

    def _create_account(self, account: Account) -> bool:
        with self._transaction(self._db):
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO accounts VALUES (?, ?, ?, ?, ?)",
                (account.key, account.name, account.hash, account.first_id, format_ts(time.time())),
            )
        return cursor.rowcount == 1

    async def set_marker(self, account: str, conv: str, upto: int) -> Marker:
        """Move an account's read marker of a conversation forward to `upto`, never back.

        StoreUnavailable if it cannot be stored now (nothing is changed then).
        """
        try:
            return await trio.to_thread.run_sync(
                self._set_marker, account, conv, upto, limiter=self._write_limiter
            )
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    def _set_marker(self, account: str, conv: str, upto: int) -> Marker:
        db = self._db
        with self._transaction(db):
            moved = db.execute(_MOVE_MARKER, (account, conv, upto)).rowcount == 1
            (now,) = db.execute(
                "SELECT upto FROM markers WHERE account = ? AND conv = ?", (account, conv)
            ).fetchone()
        return Marker(int(now), moved, _time_of(db, int(now)))

    # ------------------------------------------------------------------ reading

    async def _read(self, work: Callable[..., _T], *args: object) -> _T:
        """`work(reader, *args)` in a worker thread on the readers' connection, one at a
        time; StoreUnavailable if the file cannot be read now."""
        try:
            return await trio.to_thread.run_sync(
                work, self._reader, *args, limiter=self._read_limiter
            )
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    async def find_nonce(self, sender_key: str, nonce: str) -> Message | None:
        """The message stored earlier under this sender's nonce, if any (or StoreUnavailable)."""
        return await self._read(_by_nonce, sender_key, nonce)

    async def page(
        self,
        conv: str,
        *,
        after: int = 0,
        upto: int,
        limit: int = HISTORY_LIMIT,
        newest: bool = True,
    ) -> Page:
        """`limit` messages of a conversation with after < id <= upto, oldest first: the
        newest of them (`more`: older ones left out), or with `newest=False` the oldest
        (`more`: newer ones left out).

        StoreUnavailable if the file cannot be read now.
        """
        return await self._read(_page, conv, after, upto, limit, newest)

    async def original(self, message_id: int) -> Original | None:
        """What the rules need to know of a stored message (None: no such message)."""
        return await self._read(_original, message_id)

    async def first_id_at(self, ts: str, *, inclusive: bool = True) -> int:
        """The first id committed at `ts` or later (after it, unless `inclusive`); ids and
        timestamps grow together, so it is found by bisecting the ids (no index on ts)."""
        return await self._read(_first_id_at, ts, inclusive)

    async def marker(self, account: str, conv: str) -> tuple[int, str | None]:
        """An account's read marker of a conversation (0: nothing read), and the time of
        its entry (the newest entry with id <= it; None when there is none)."""
        return await self._read(_marker, account, conv)

    async def reading(
        self, account: str, convs: list[str], upto: int
    ) -> dict[str, tuple[int, int]]:
        """conv -> (marker, unread) for an account's conversations `convs`, in one query:
        unread counts the messages after the marker, up to `upto`, not the account's own."""
        return await self._read(_reading, account, convs, upto)

    async def directs(self, party: str, *, first_id: int, upto: int) -> list[Direct]:
        """The direct conversations of a name with entries from `first_id` to `upto`, each
        with its marker and unread messages, the most recent first."""
        return await self._read(_directs, party, first_id, upto)

    async def conversations(
        self, convs: list[str], party: str | None, *, after: int, upto: int, limit: int
    ) -> list[tuple[str, int, str]]:
        """Which of `convs`, and of the direct conversations of the name key `party`, have
        messages with after < id <= upto: (conv, last id, its ts), most recent first."""
        return await self._read(_conversations, convs, party, after, upto, limit)

    async def search(
        self,
        convs: list[str],
        party: str | None,
        match: str,
        *,
        before: int,
        limit: int,
        first_id: int = 1,
        sender: str | None = None,
        seconds: float = SEARCH_SECONDS,
    ) -> tuple[list[Entry], bool]:
        """Messages (not deleted) of `convs` and of the direct conversations of the name key
        `party` that satisfy the FTS5 expression `match`, with id < before, newest first;
        and whether older ones were left out. Direct ones start at `first_id`; `sender`:
        only those of this name key. StoreUnavailable if the file cannot be read now;
        SearchTooBroad if the search took more than `seconds`."""
        return await self._read(
            _search, convs, party, match, before, limit, first_id, sender, seconds
        )


def _by_nonce(db: sqlite3.Connection, sender_key: str, nonce: str) -> Message | None:
    """The message a sender stored under a nonce (on the writer's or the readers' connection)."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM messages WHERE sender_key = ? AND nonce = ?", (sender_key, nonce)
    ).fetchone()
    if row is None:
        return None
    message = _row_message(row)
    assert isinstance(message, Message)  # only a say carries a nonce
    return message


def _page(
    db: sqlite3.Connection, conv: str, after: int, upto: int, limit: int, newest: bool
) -> Page:
    order = "DESC" if newest else "ASC"
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM messages WHERE conv = ? AND id > ? AND id <= ?"
        f" ORDER BY id {order} LIMIT ?",
        (conv, after, upto, limit + 1),
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    if newest:
        rows.reverse()
    return Page([_row_message(r) for r in rows], more)


def _original(db: sqlite3.Connection, message_id: int) -> Original | None:
    row = db.execute(
        "SELECT id, conv, room, recipient, sender_key, account, deleted FROM messages"
        " WHERE id = ? AND kind = 'message'",
        (message_id,),
    ).fetchone()
    if row is None:
        return None
    id_, conv, room, to, sender_key, account, deleted = row
    return Original(id_, conv, room, to, sender_key, bool(account), bool(deleted))


def _first_id_at(db: sqlite3.Connection, ts: str, inclusive: bool) -> int:
    (low, high) = db.execute(
        "SELECT coalesce(min(id), 1), coalesce(max(id), 0) FROM messages"
    ).fetchone()
    found = high + 1  # past the newest: nothing is that late
    while low <= high:  # the first id whose ts is at (or after) `ts`
        middle = (low + high) // 2
        row = db.execute(
            "SELECT id, ts FROM messages WHERE id >= ? ORDER BY id LIMIT 1", (middle,)
        ).fetchone()
        if row is None:
            break
        if row[1] > ts or (inclusive and row[1] == ts):
            found, high = row[0], middle - 1
        else:
            low = row[0] + 1
    return int(found)


def _marker(db: sqlite3.Connection, account: str, conv: str) -> tuple[int, str | None]:
    row = db.execute(
        "SELECT upto, (SELECT ts FROM messages WHERE id <= upto ORDER BY id DESC LIMIT 1)"
        " FROM markers WHERE account = ? AND conv = ?",
        (account, conv),
    ).fetchone()
    return (0, None) if row is None else (int(row[0]), row[1])


def _time_of(db: sqlite3.Connection, upto: int) -> str | None:
    row = db.execute(
        "SELECT ts FROM messages WHERE id <= ? ORDER BY id DESC LIMIT 1", (upto,)
    ).fetchone()
    return None if row is None else str(row[0])


def _reading(
    db: sqlite3.Connection, account: str, convs: list[str], upto: int
) -> dict[str, tuple[int, int]]:
    rows = db.execute(
        f"SELECT c.value, coalesce(k.upto, 0), ({_ROOMS_UNREAD})"
        " FROM json_each(?) AS c LEFT JOIN markers AS k ON k.account = ? AND k.conv = c.value",
        (upto, account, json.dumps(convs), account),
    ).fetchall()
    return {str(conv): (int(read), int(unread)) for conv, read, unread in rows}


def _directs(db: sqlite3.Connection, party: str, first_id: int, upto: int) -> list[Direct]:
    rows = db.execute(
        "SELECT p.conv, m.id, m.sender, m.sender_key, m.recipient, coalesce(k.upto, 0),"
        f" ({_DIRECTS_UNREAD})"
        " FROM parties AS p LEFT JOIN markers AS k ON k.account = p.party AND k.conv = p.conv"
        " JOIN messages AS m ON m.id = (SELECT max(id) FROM messages"
        "  WHERE conv = p.conv AND id >= ? AND id <= ?)"
        " WHERE p.party = ? ORDER BY m.id DESC",
        (first_id - 1, upto, party, first_id, upto, party),
    ).fetchall()
    found = []
    for conv, last, sender, sender_key, recipient, read, unread in rows:
        first, second = conv[1:].split(" ", 1)
        other_key = second if first == party else first
        spelling = sender if sender_key == other_key else recipient or other_key
        found.append(Direct(conv, other_key, spelling, int(last), int(read), int(unread)))
    return found


def _conversations(
    db: sqlite3.Connection,
    convs: list[str],
    party: str | None,
    after: int,
    upto: int,
    limit: int,
) -> list[tuple[str, int, str]]:
    marks = ",".join("?" * len(convs)) or "NULL"
    # a direct conversation's conv is '@a b' (keys sorted): `party` first or second
    direct = "" if party is None else (
        " OR (substr(conv, 1, ?) = ? OR substr(conv, -?) = ?)"
    )  # fmt: skip
    params: list[object] = list(convs)
    if party is not None:
        params += [len(party) + 2, f"@{party} ", len(party) + 1, f" {party}"]
    rows = db.execute(
        f"SELECT conv, max(id) AS last FROM messages WHERE (conv IN ({marks}){direct})"
        " AND id > ? AND id <= ? GROUP BY conv ORDER BY last DESC LIMIT ?",
        (*params, after, upto, limit),
    ).fetchall()
    found = []
    for conv, last in rows:
        (ts,) = db.execute("SELECT ts FROM messages WHERE id = ?", (last,)).fetchone()
        found.append((conv, int(last), str(ts)))
    return found


_SEARCH_COLUMNS: Final = ", ".join("m." + column.strip() for column in _COLUMNS.split(","))


def _search(
    db: sqlite3.Connection,
    convs: list[str],
    party: str | None,
    match: str,
    before: int,
    limit: int,
    first_id: int,
    sender: str | None,
    seconds: float,
) -> tuple[list[Entry], bool]:
    sql, params = _search_query(convs, party, match, before, limit + 1, first_id, sender)
    deadline = time.monotonic() + seconds
    # SQLite calls this every 1000 steps (FTS5 checks it too); True interrupts the query
    db.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
    try:
        rows = db.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        if time.monotonic() > deadline:
            raise SearchTooBroad(f"the search took more than {seconds} s") from None
        raise
    finally:
        db.set_progress_handler(None, 0)
    return [_row_message(row) for row in rows[:limit]], len(rows) > limit


def _search_query(
    convs: list[str],
    party: str | None,
    match: str,
    before: int,
    limit: int,
    first_id: int,
    sender: str | None,
) -> tuple[str, list[object]]:
    """The search's SQL and parameters. The index drives: its hits newest first (rowid
    DESC, no sort), each looked up by id and kept when in scope, until `limit` are found."""
    marks = ",".join("?" * len(convs)) or "NULL"
    params: list[object] = [match, before, *convs]
    direct = ""
    if party is not None:  # as in _conversations: `party` first or second in '@a b'
        direct = " OR substr(m.conv, 1, ?) = ? OR substr(m.conv, -?) = ?"
        params += [len(party) + 2, f"@{party} ", len(party) + 1, f" {party}"]
    params.append(first_id)
    by = ""
    if sender is not None:
        by = " AND m.sender_key = ?"
        params.append(sender)
    params.append(limit)
    sql = (
        f"SELECT {_SEARCH_COLUMNS} FROM messages_fts JOIN messages AS m"
        " ON m.id = messages_fts.rowid"
        " WHERE messages_fts MATCH ? AND messages_fts.rowid < ?"
        f" AND m.kind = 'message' AND m.deleted = 0 AND (m.conv IN ({marks}){direct})"
        f" AND (m.id >= ? OR substr(m.conv, 1, 1) = '#'){by}"
        " ORDER BY messages_fts.rowid DESC LIMIT ?"
    )
    return sql, params


# Section 10: a marker moves only forward (no write at all when it would not move).
_MOVE_MARKER: Final = (
    "INSERT INTO markers VALUES (?, ?, ?) ON CONFLICT (account, conv)"
    " DO UPDATE SET upto = max(upto, excluded.upto) WHERE excluded.upto > upto"
)
# The messages of a conversation (c.value or p.conv) after a marker, not the reader's own:
# a range of messages_by_conv (conv, id). Parameters: upto, the reader's key.
_UNREAD: Final = (
    "SELECT count(*) FROM messages WHERE conv = {conv} AND id > {after} AND id <= ?"
    " AND kind = 'message' AND sender_key <> ?"
)
_ROOMS_UNREAD: Final = _UNREAD.format(conv="c.value", after="coalesce(k.upto, 0)")
_DIRECTS_UNREAD: Final = _UNREAD.format(conv="p.conv", after="max(coalesce(k.upto, 0), ?)")
# Rows go in by multi-row INSERTs; ON CONFLICT skips a repeated (sender, nonce).
_INSERTED: Final = (
    "id, conv, room, recipient, sender, sender_key, text, ts, nonce,"
    " kind, target, reply_to, action, account"
)
_ROW: Final = "(" + ", ".join("?" * (_INSERTED.count(",") + 1)) + ")"
VALUES_ROWS: Final = 1024  # rows of one INSERT at most: 14,336 parameters


def _values_rows(db: sqlite3.Connection) -> int:
    """The most rows one INSERT takes on this connection: VALUES_ROWS, or a power of two
    under this SQLite's parameter limit (32,766 since 3.32; 999 before)."""
    fit = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _ROW.count("?")
    return min(VALUES_ROWS, 1 << (max(fit, 1).bit_length() - 1))


def _chunks(rows: int, most: int) -> Iterator[int]:
    """Sizes that add up to `rows`: `most` while that many are left, then powers of two,
    largest first. A full batch is one statement, any batch a few, and SQLite's
    statement cache holds one INSERT per size: a dozen texts in all."""
    while rows >= most:
        yield most
        rows -= most
    size = most
    while rows:
        size >>= 1
        if rows >= size:
            yield size
            rows -= size


@functools.cache
def _insert_sql(rows: int) -> str:
    """The INSERT of `rows` rows (one text per size, so SQLite's statement cache serves it)."""
    values = ", ".join([_ROW] * rows)
    return f"INSERT INTO messages ({_INSERTED}) VALUES {values} ON CONFLICT DO NOTHING"


def _insert_rows(db: sqlite3.Connection, rows: list[tuple[object, ...]]) -> int:
    params = list(itertools.chain.from_iterable(rows))
    return int(db.execute(_insert_sql(len(rows)), params).rowcount)


# The search index learns the messages of the batch being committed (ids from the
# batch's first on; a row skipped for its repeated nonce is not there to index).
_INDEX_NEW: Final = (
    "INSERT INTO messages_fts (rowid, text)"
    " SELECT id, text FROM messages WHERE id >= ? AND kind = 'message'"
)


# A deleted message's text is gone from the table (secure_delete zeroes the freed bytes)
# and, through the triggers, from the search index; so are its edits' texts.
_APPLY_EDIT: Final = (
    "UPDATE messages SET text = ?, edited = ? WHERE id = ? AND kind = 'message' AND deleted = 0"
)
_APPLY_DELETE: Final = (
    "UPDATE messages SET text = '', deleted = 1, edited = NULL WHERE id = ? AND kind = 'message'"
)
_ERASE_EDITS: Final = "UPDATE messages SET text = '' WHERE kind = 'edit' AND target = ?"
_ERASE_LATE_EDITS: Final = (
    "UPDATE messages SET text = '' WHERE kind = 'edit' AND id >= ?"
    " AND target IN (SELECT id FROM messages WHERE deleted = 1)"
)


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration, so they run inside our own transaction."""
    for statement in script.split(";"):
        lines = [line.split("--")[0] for line in statement.splitlines()]
        text = "\n".join(lines).strip()
        if text:
            yield text
