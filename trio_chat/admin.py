"""`trio-chat admin ...` (PROTOCOL.md section 7): look after the database, server running or not.

Every command opens the same `--db` file in WAL mode with a busy timeout and keeps its
write transactions short, so the running server only waits a moment. What the server
must act on (a server-wide ban, a changed or deleted account) is written to the
moderation log too; the server reads that log every two seconds and applies it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from .accounts import OWASP_N, _scrypt
from .core.errors import ChatError
from .core.rules import MAX_NAME, Name, parse_name
from .core.timestamps import format_ts
from .protocol import MAX_PASSWORD, MIN_PASSWORD
from .rooms_store import (
    Ban,
    acts,
    add_ban,
    ensure_schema,
    log_act,
    remove_ban,
    run,
    server_bans,
)

BUSY_TIMEOUT: Final = 10.0  # seconds to wait for the server's write lock
ACTOR: Final = "admin-command"
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
PRUNE_CHUNK: Final = 500  # messages per transaction, so the server's commits slip in between


class AdminError(Exception):
    """A command cannot be done; its str is one line for the user."""


def connect(path: Path) -> sqlite3.Connection:
    """The database, which must exist and be a trio-chat database (the server made it)."""
    if not path.is_file():
        raise AdminError(f"no database at {path} (start the server once to make it)")
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version < 1 or not _has(db, "accounts"):
            raise AdminError(f"{path} is not a trio-chat database")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA secure_delete = ON")
        ensure_schema(db)
    except sqlite3.Error as exc:
        raise AdminError(f"cannot use {path}: {exc}") from None
    return db


def _has(db: sqlite3.Connection, table: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    return found is not None


def _name(text: str) -> Name:
    try:
        return parse_name(text, "name", "name_invalid")
    except ChatError as exc:
        raise AdminError(f"{text!r}: {exc.message}") from None


def _account(db: sqlite3.Connection, text: str) -> tuple[str, str]:
    name = _name(text)
    row = db.execute("SELECT key, name FROM accounts WHERE key = ?", (name.key,)).fetchone()
    if row is None:
        raise AdminError(f"no account named {text}")
    return row[0], row[1]


# ---------------------------------------------------------------------- commands


def accounts(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    rows = db.execute("SELECT name, created FROM accounts ORDER BY key").fetchall()
    for name, created in rows:
        print(f"{name}\t{created}")
    print(f"{len(rows)} account{'s' if len(rows) != 1 else ''}", file=sys.stderr)


def _new_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            raise AdminError("the two passwords differ")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AdminError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def password(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    key, spelling = _account(db, args.name)
    secret = _new_password(args)
    salt = os.urandom(16)
    n = args.scrypt_n
    digest = _scrypt(secret, salt, n, 8, 1)
    encoded = f"scrypt${n}$8$1${salt.hex()}${digest.hex()}"
    run(
        db,
        [
            ("UPDATE accounts SET hash = ? WHERE key = ?", (encoded, key)),
            log_act(ACTOR, "password", None, spelling, origin="admin"),
        ],
    )
    print(f"password of {spelling} changed")


def delete_account(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    """The account and its direct messages (the newest id of all stays, emptied: ids are
    never given twice)."""
    key, spelling = _account(db, args.name)
    first, second = f"@{key} ", f" {key}"
    where = "(substr(conv, 1, ?) = ? OR (substr(conv, 1, 1) = '@' AND substr(conv, -?) = ?))"
    params = (len(first), first, len(second), second)
    (newest,) = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()
    (count,) = db.execute(f"SELECT count(*) FROM messages WHERE {where}", params).fetchone()
    run(
        db,
        [
            (
                "UPDATE messages SET text = '', deleted = kind = 'message', edited = NULL"
                f" WHERE id = ? AND {where}",
                (newest, *params),
            ),
            (f"DELETE FROM messages WHERE id <> ? AND {where}", (newest, *params)),
            ("DELETE FROM accounts WHERE key = ?", (key,)),
            ("DELETE FROM room_roles WHERE name = ?", (key,)),
            ("UPDATE room_meta SET owner = NULL WHERE owner = ?", (spelling,)),
            log_act(ACTOR, "delete_account", None, spelling, detail=f"{count} direct entries",
                    origin="admin"),
        ],
    )  # fmt: skip
    print(f"account {spelling} deleted, with {count} direct-message entries")


def ban(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    name = _name(args.name)
    row = db.execute("SELECT name FROM accounts WHERE key = ?", (name.key,)).fetchone()
    spelling = row[0] if row else name.spelling
    entry = Ban(spelling, ACTOR, args.reason, format_ts(time.time()))
    run(
        db, [add_ban("", entry), log_act(ACTOR, "ban", None, spelling, args.reason, origin="admin")]
    )
    print(f"{spelling} is banned from the server (a running server applies it within seconds)")


def unban(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    name = _name(args.name)
    if name.key not in server_bans(db):
        raise AdminError(f"{args.name} is not banned")
    run(db, [remove_ban("", name.spelling), log_act(ACTOR, "unban", None, name.spelling,
                                                     origin="admin")])  # fmt: skip
    print(f"the ban on {name.spelling} is lifted")


def bans(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    for found in server_bans(db).values():
        print(f"{found.name}\t{found.ts}\t{found.by}\t{found.reason}")


def show_log(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    """The moderation log, oldest first (the last `--limit` acts)."""
    (last,) = db.execute("SELECT coalesce(max(id), 0) FROM moderation").fetchone()
    for act in acts(db, after=max(0, last - args.limit), limit=args.limit):
        where = f" in {act.room}" if act.room else ""
        why = f" ({act.reason})" if act.reason else ""
        detail = f" [{act.detail}]" if act.detail else ""
        print(f"{act.ts}\t{act.actor}\t{act.act}\t{act.target or ''}{where}{why}{detail}")


def backup(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    """A consistent copy with SQLite's online backup, while the server writes."""
    target = Path(args.file)
    if target.exists() and not args.force:
        raise AdminError(f"{target} exists (--force replaces it)")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    copy = sqlite3.connect(partial)
    try:
        # pages=0: the whole file in one step, so the server's commits cannot restart it
        db.backup(copy, pages=0)
        result = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise AdminError(f"the copy fails its integrity check: {result}")
        copy.execute("PRAGMA journal_mode = DELETE")
    finally:
        copy.close()
    os.replace(partial, target)
    print(f"backed up to {target}")


def parse_age(text: str) -> float:
    match = _AGE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected an age like 90d, 12h, 30m or 45s, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def prune(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    """Messages older than the age become deletions: kept as tombstones, their texts (and
    their edits') erased from the table and, by the triggers, from the search index."""
    cutoff = format_ts(time.time() - args.older_than)
    total = 0
    while True:
        ids = [
            row[0]
            for row in db.execute(
                "SELECT id FROM messages WHERE kind = 'message' AND deleted = 0 AND ts < ?"
                " ORDER BY id LIMIT ?",
                (cutoff, PRUNE_CHUNK),
            )
        ]
        if not ids:
            break
        marks = ",".join("?" * len(ids))
        run(
            db,
            [
                ("UPDATE messages SET text = '', deleted = 1, edited = NULL"
                 f" WHERE id IN ({marks})", tuple(ids)),
                (f"UPDATE messages SET text = '' WHERE kind = 'edit' AND target IN ({marks})",
                 tuple(ids)),
            ],
        )  # fmt: skip
        total += len(ids)
    run(
        db, [log_act(ACTOR, "prune", None, None, detail=f"{total} before {cutoff}", origin="admin")]
    )
    print(f"{total} message{'s' if total != 1 else ''} older than {cutoff} pruned")


def optimize(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    """Merge the search index's segments (which also drops deleted terms)."""
    run(db, [("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')", ())])
    print("search index optimized")


# ---------------------------------------------------------------------- the command line

Command = Callable[[sqlite3.Connection, argparse.Namespace], None]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trio-chat admin",
        description="Look after a trio-chat database; safe while the server runs.",
    )
    p.add_argument("--db", type=Path, default=Path("trio_chat.db"), metavar="PATH",
                   help="the server's SQLite file [trio_chat.db]")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        one = sub.add_parser(name, help=help, description=help)
        one.set_defaults(run=run)
        return one

    command("accounts", accounts, "list the accounts and when they were made")
    one = command("password", password, "reset an account's password (asked twice)")
    one.add_argument("name", help="the account")
    one.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the new password from the first line of standard input",
    )
    one.add_argument("--scrypt-n", type=int, default=OWASP_N, help=argparse.SUPPRESS)
    one = command("delete-account", delete_account, "delete an account and its direct messages")
    one.add_argument("name", help="the account")
    one = command("ban", ban, "ban a name (and names that look the same) from the server")
    one.add_argument("name", help=f"a name (1 to {MAX_NAME} characters); need not be an account")
    one.add_argument("--reason", default="", help="why, kept in the moderation log")
    one = command("unban", unban, "lift a server-wide ban")
    one.add_argument("name")
    command("bans", bans, "list the server-wide bans")
    one = command("log", show_log, "show the moderation log, oldest first")
    one.add_argument("--limit", type=int, default=100, help="the last N acts [100]")
    one = command("backup", backup, "copy the database to FILE (SQLite's online backup)")
    one.add_argument("file", help="where the copy goes")
    one.add_argument("--force", action="store_true", help="replace FILE if it exists")
    one = command("prune", prune, "delete messages older than an age (kept as tombstones)")
    one.add_argument("--older-than", type=parse_age, required=True, metavar="AGE",
                     help="an age: 90d, 12h, 30m, 45s, 2w")  # fmt: skip
    command("optimize", optimize, "optimize the search index")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        db = connect(args.db)
        try:
            args.run(db, args)
        finally:
            db.close()
    except AdminError as exc:
        print(f"trio-chat admin: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(f"trio-chat admin: {args.command} failed: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("trio-chat admin: interrupted", file=sys.stderr)
        return 1
    return 0
