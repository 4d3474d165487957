"""The section 11 tables (rooms, roles, bans, the moderation log): schema step 3 of the store."""

from __future__ import annotations

from typing import Final

SCHEMA: Final[list[str]] = [
    "CREATE TABLE IF NOT EXISTS room_meta ("
    " key TEXT PRIMARY KEY,"
    " owner TEXT,"  # the owner's spelling (an account); NULL: none
    " private INTEGER NOT NULL DEFAULT 0,"
    " topic TEXT NOT NULL DEFAULT '', topic_by TEXT, topic_ts TEXT"
    ") WITHOUT ROWID",
    # role: 'op' or 'invited'; name is the key, spelling as first given
    "CREATE TABLE IF NOT EXISTS room_roles ("
    " room TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL, spelling TEXT NOT NULL,"
    " PRIMARY KEY (room, role, name)) WITHOUT ROWID",
    # room '' is a server-wide ban
    "CREATE TABLE IF NOT EXISTS room_bans ("
    " room TEXT NOT NULL, name TEXT NOT NULL, spelling TEXT NOT NULL, by TEXT NOT NULL,"
    " reason TEXT NOT NULL, ts TEXT NOT NULL, PRIMARY KEY (room, name)) WITHOUT ROWID",
    # every moderation act; origin 'server' (done and applied by the server) or 'admin'
    # (the admin command: the server applies it when it polls)
    "CREATE TABLE IF NOT EXISTS moderation ("
    " id INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, act TEXT NOT NULL,"
    " room TEXT, target TEXT, reason TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '',"
    " origin TEXT NOT NULL DEFAULT 'server')",
    "CREATE TRIGGER IF NOT EXISTS room_topic AFTER INSERT ON messages"
    " WHEN new.kind = 'topic' BEGIN"
    " INSERT INTO room_meta (key, topic, topic_by, topic_ts)"
    " VALUES (substr(new.conv, 2), new.text, new.sender, new.ts)"
    " ON CONFLICT (key) DO UPDATE SET topic = excluded.topic, topic_by = excluded.topic_by,"
    " topic_ts = excluded.topic_ts; END",
]
