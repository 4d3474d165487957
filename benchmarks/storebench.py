"""The `store` scenario: trio_chat.store alone, from many concurrent trio tasks.

Every task submits its share of drafts to one room; the writer commits them in
batches (WAL, synchronous=FULL). The clock runs from the first submit to the moment
the last batch has been committed and handed to `on_commit`.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import trio

from trio_chat.core.timestamps import format_ts
from trio_chat.protocol import Name
from trio_chat.store import Draft, Store, Stored, StoreUnavailable

BATCH = 1024  # the store's largest batch, which a run this size commits nearly always


async def _bench(path: Path, messages: int, tasks: int) -> dict[str, Any]:
    store = Store.open(path)
    committed = 0
    batches = 0
    largest = 0
    last_id = 0
    in_order = True
    done = trio.Event()

    def on_commit(batch: list[Stored]) -> None:
        nonlocal committed, batches, largest, last_id, in_order
        committed += len(batch)
        batches += 1
        largest = max(largest, len(batch))
        for stored in batch:
            if stored.message.id <= last_id:
                in_order = False
            last_id = stored.message.id
        if committed >= messages:
            done.set()

    def on_failed(batch: list[Draft], error: StoreUnavailable) -> None:
        raise error  # a benchmark with a failing store measures nothing

    room = Name("bench", "bench")
    senders = [Name(f"b{n}", f"b{n}") for n in range(tasks)]

    async def producer(n: int, count: int) -> None:
        for seq in range(count):
            await store.submit(Draft(sender=senders[n], text=f"k{n}.{seq}", room=room))

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run, on_commit, on_failed)
            start = time.perf_counter()
            async with trio.open_nursery() as producers:
                for n in range(tasks):
                    share = messages * (n + 1) // tasks - messages * n // tasks
                    producers.start_soon(producer, n, share)
            await done.wait()
            seconds = time.perf_counter() - start
            nursery.cancel_scope.cancel()  # every draft is committed: end the idle writer
    finally:
        store.close()
    return {
        "messages": committed,
        "commits_per_s": round(committed / seconds),
        "batch_mean": round(committed / batches, 1),
        "transactions": batches,
        "transactions_per_s": round(batches / seconds, 1),
        "batch_max": largest,
        "tasks": tasks,
        "seconds": round(seconds, 3),
        "ids_increasing": in_order,
        "synchronous": "FULL",
    }


def run_store(path: Path, messages: int, tasks: int) -> dict[str, Any]:
    """Run the store benchmark on a fresh database at `path`."""
    result: dict[str, Any] = trio.run(_bench, path, messages, tasks)
    return result


def run_bare(path: Path, messages: int) -> float:
    """The store's reference, measured in the same run: messages/s that SQLite alone commits
    here. The same rows (the store's 14 columns) into a table with no index, trigger or
    search index, BATCH rows per transaction (WAL, synchronous=FULL), from one thread."""
    columns = 14
    marks = ", ".join("?" * columns)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute(f"CREATE TABLE messages ({', '.join(f'c{i}' for i in range(columns))})")
        start = time.perf_counter()
        for first in range(1, messages + 1, BATCH):
            ts = format_ts(time.time())
            rows = [
                (i, "#bench", "bench", None, f"b{i % 100}", f"b{i % 100}", f"k{i}", ts, None,
                 "message", None, None, 0, 0)
                for i in range(first, min(first + BATCH, messages + 1))
            ]  # fmt: skip
            db.execute("BEGIN")
            db.executemany(f"INSERT INTO messages VALUES ({marks})", rows)
            db.execute("COMMIT")
        seconds = time.perf_counter() - start
    return messages / seconds
