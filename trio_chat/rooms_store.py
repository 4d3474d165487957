"""Rooms in SQLite (PROTOCOL.md section 11): owners, ops, invitations, bans, the moderation log.

The tables are made by the store's schema step 3 (and again, `IF NOT EXISTS`, when a
file passed that step while it was empty). A room's topic lives in the log; a trigger
keeps the latest one in `room_meta` in the same transaction. The server writes through
the store's writer connection, one short transaction per act; the admin command
(`trio_chat.admin`) writes the same tables from another process, and the server
picks its acts up from the moderation log (`RoomsStore.poll`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import trio

from .core.rules import name_key
from .core.timestamps import format_ts
from .rooms_schema import SCHEMA
from .store import Store, _unavailable

Statement = tuple[str, tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class Ban:
    name: str  # the spelling banned
    by: str
    reason: str
    ts: str


@dataclass(slots=True)
class RoomRecord:
    """What the store keeps of one room."""

    key: str
    owner: str | None = None
    private: bool = False
    topic: str = ""
    topic_by: str | None = None
    topic_ts: str | None = None
    ops: dict[str, str] = field(default_factory=dict)  # key -> spelling
    invited: dict[str, str] = field(default_factory=dict)
    bans: dict[str, Ban] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Act:
    """One line of the moderation log."""

    id: int
    ts: str
    actor: str
    act: str
    room: str | None
    target: str | None
    reason: str
    detail: str
    origin: str


def ensure_schema(db: sqlite3.Connection) -> None:
    """The section 11 tables, for a file whose schema step 3 ran while it was empty."""
    found = db.execute(
        "SELECT count(*) FROM sqlite_master WHERE name IN ('room_meta', 'moderation')"
    ).fetchone()[0]
    if found < 2:
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA:
                db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


def load(db: sqlite3.Connection) -> tuple[dict[str, RoomRecord], dict[str, Ban], int]:
    """Every room's record, the server-wide bans, and the newest moderation log id."""
    rooms: dict[str, RoomRecord] = {}

    def record(key: str) -> RoomRecord:
        found = rooms.get(key)
        if found is None:
            found = rooms[key] = RoomRecord(key)
        return found

    for key, owner, private, topic, topic_by, topic_ts in db.execute(
        "SELECT key, owner, private, topic, topic_by, topic_ts FROM room_meta"
    ):
        r = record(key)
        r.owner, r.private, r.topic = owner, bool(private), topic
        r.topic_by, r.topic_ts = topic_by, topic_ts
    for room, name, role, spelling in db.execute(
        "SELECT room, name, role, spelling FROM room_roles"
    ):
        (record(room).ops if role == "op" else record(room).invited)[name] = spelling
    server: dict[str, Ban] = {}
    for room, name, spelling, by, reason, ts in db.execute(
        "SELECT room, name, spelling, by, reason, ts FROM room_bans ORDER BY ts"
    ):
        (server if room == "" else record(room).bans)[name] = Ban(spelling, by, reason, ts)
    (last,) = db.execute("SELECT coalesce(max(id), 0) FROM moderation").fetchone()
    return rooms, server, int(last)


def server_bans(db: sqlite3.Connection) -> dict[str, Ban]:
    return {
        name: Ban(spelling, by, reason, ts)
        for name, spelling, by, reason, ts in db.execute(
            "SELECT name, spelling, by, reason, ts FROM room_bans WHERE room = '' ORDER BY ts"
        )
    }


# ---------------------------------------------------------------------- statements


def set_owner(room: str, owner: str | None) -> Statement:
    return (
        "INSERT INTO room_meta (key, owner) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET owner = excluded.owner",
        (room, owner),
    )


def set_private(room: str, private: bool) -> Statement:
    return (
        "INSERT INTO room_meta (key, private) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET private = excluded.private",
        (room, int(private)),
    )


def add_role(room: str, role: str, spelling: str) -> Statement:
    return (
        "INSERT OR IGNORE INTO room_roles (room, name, role, spelling) VALUES (?, ?, ?, ?)",
        (room, name_key(spelling), role, spelling),
    )


def remove_role(room: str, role: str, spelling: str) -> Statement:
    return (
        "DELETE FROM room_roles WHERE room = ? AND role = ? AND name = ?",
        (room, role, name_key(spelling)),
    )


def add_ban(room: str, ban: Ban) -> Statement:
    """A ban of a name in a room (`room` "" for a server-wide one)."""
    return (
        "INSERT OR REPLACE INTO room_bans (room, name, spelling, by, reason, ts)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (room, name_key(ban.name), ban.name, ban.by, ban.reason, ban.ts),
    )


def remove_ban(room: str, spelling: str) -> Statement:
    return ("DELETE FROM room_bans WHERE room = ? AND name = ?", (room, name_key(spelling)))


def log_act(
    actor: str,
    act: str,
    room: str | None,
    target: str | None,
    reason: str = "",
    detail: str = "",
    *,
    origin: str = "server",
) -> Statement:
    """The moderation log's line for an act (who, what, where, whom, why, when)."""
    return (
        "INSERT INTO moderation (ts, actor, act, room, target, reason, detail, origin)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (now(), actor, act, room, target, reason, detail, origin),
    )


def now() -> str:
    return format_ts(time.time())


def run(db: sqlite3.Connection, statements: Iterable[Statement]) -> None:
    """The statements in one short transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for sql, params in statements:
            db.execute(sql, params)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def acts(
    db: sqlite3.Connection, *, after: int = 0, limit: int = 1000, origin: str | None = None
) -> list[Act]:
    """Moderation log lines with id > after, oldest first (of one origin, when given)."""
    where = "id > ?" + ("" if origin is None else " AND origin = ?")
    params: tuple[object, ...] = (after,) if origin is None else (after, origin)
    rows = db.execute(
        "SELECT id, ts, actor, act, room, target, reason, detail, origin FROM moderation"
        f" WHERE {where} ORDER BY id LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [Act(*row) for row in rows]


# ---------------------------------------------------------------------- the server's side


class RoomsStore:
    """The section 11 tables through the history store's connections (writer and reader)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        ensure_schema(store._db)
        self.rooms, self.server_bans, self.last_act = load(store._db)

    async def write(self, statements: Sequence[Statement]) -> None:
        """Commit the statements on the writer's connection (StoreUnavailable if it cannot)."""
        store = self.store
        try:
            await trio.to_thread.run_sync(run, store._db, statements, limiter=store._write_limiter)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    async def poll(self) -> tuple[list[Act], dict[str, Ban]]:
        """The admin command's acts since the last poll, and the server-wide bans now."""
        store = self.store

        def read() -> tuple[list[Act], dict[str, Ban]]:
            found = acts(store._reader, after=self.last_act)
            return found, server_bans(store._reader)

        try:
            found, bans = await trio.to_thread.run_sync(read, limiter=store._read_limiter)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        if found:
            self.last_act = found[-1].id
        return [a for a in found if a.origin == "admin"], bans

    async def account(self, key: str) -> tuple[str, str, str, int] | None:
        """An account's row as it is in the file now (the admin command may have changed it)."""
        store = self.store

        def read() -> tuple[str, str, str, int] | None:
            row = store._reader.execute(
                "SELECT key, name, hash, first_id FROM accounts WHERE key = ?", (key,)
            ).fetchone()
            return None if row is None else (row[0], row[1], row[2], int(row[3]))

        try:
            return await trio.to_thread.run_sync(read, limiter=store._read_limiter)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
