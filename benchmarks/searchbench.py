"""The `search` scenario: `Store.search` over a large history (PROTOCOL.md section 9).

A corpus of `messages` messages in `rooms` rooms (and a few direct ones) is written
through the store's own writer in big batches; its words are pseudo-words drawn
from a Zipf-like vocabulary, as real chat is. Then `searches` queries of one and
two words, drawn from the corpus's own messages, run through `Store.search` for one
account that is in every room: each is timed from the call to its answer (the
worker thread's hop included). Also reported: the size of the full-text index
against the table's, and the query plan.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import time
from itertools import accumulate
from pathlib import Path
from typing import Any

import trio

from trio_chat.core.search import match_expression
from trio_chat.protocol import Name
from trio_chat.store import Draft, Store, Stored, StoreUnavailable, room_conv

VOCABULARY = 30_000
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "do", "fe", "gi")
BATCH = 20_000
SENDERS = 1_000
DIRECT_EVERY = 200  # one message in this many is a direct one
READER = "reader"


def _vocabulary(rng: random.Random) -> list[str]:
    """Distinct pseudo-words of 2 to 4 syllables, the most frequent first."""
    found: dict[str, None] = {}
    while len(found) < VOCABULARY:
        found["".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))] = None
    return list(found)


def corpus(messages: int, seed: int = 5) -> list[str]:
    """`messages` texts of 3 to 14 words, the words Zipf-distributed (s = 1.07)."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    weights = list(accumulate(1 / (rank + 1) ** 1.07 for rank in range(len(words))))
    lengths = [rng.randint(3, 14) for _ in range(messages)]
    drawn = rng.choices(words, cum_weights=weights, k=sum(lengths))
    texts, at = [], 0
    for length in lengths:
        texts.append(" ".join(drawn[at : at + length]))
        at += length
    return texts


async def _fill(store: Store, texts: list[str], rooms: list[Name]) -> float:
    """Write every text through the writer (rooms in turn, a few direct); its seconds."""
    done = trio.Event()
    committed = 0

    def on_commit(batch: list[Stored]) -> None:
        nonlocal committed
        committed += len(batch)
        if committed >= len(texts):
            done.set()

    def on_failed(batch: list[Draft], error: StoreUnavailable) -> None:
        raise error  # a benchmark with a failing store measures nothing

    senders = [Name(f"u{n}", f"u{n}") for n in range(SENDERS)]
    reader = Name(READER, READER)
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run, on_commit, on_failed)
        for index, text in enumerate(texts):
            sender = senders[index % SENDERS]
            if index % DIRECT_EVERY == 0:
                await store.submit(Draft(sender, text, to=reader))
            else:
                await store.submit(Draft(sender, text, room=rooms[index % len(rooms)]))
        await done.wait()
        nursery.cancel_scope.cancel()
    return time.perf_counter() - started


def _sizes(db: sqlite3.Connection) -> dict[str, int]:
    """Bytes per table and index: dbstat when SQLite has it, else page counts."""
    try:
        rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        return {str(name): int(size) for name, size in rows}
    except sqlite3.Error:
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        return {"(whole file, no dbstat)": int(page_size) * int(pages)}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _bench(path: Path, messages: int, rooms: int, searches: int) -> dict[str, Any]:
    texts = corpus(messages)
    room_names = [Name(f"room{n}", f"room{n}") for n in range(rooms)]
    store = Store.open(path, max_batch=BATCH, max_pending=4 * BATCH, quick_check=False)
    try:
        fill_seconds = await _fill(store, texts, room_names)
        convs = [room_conv(room.key) for room in room_names]
        rng = random.Random(9)
        # one word, or two (every other query), each drawn from a message of its own
        queries = [
            " ".join(rng.choice(rng.choice(texts).split()) for _ in range(1 + n % 2))
            for n in range(searches)
        ]
        timings: dict[int, list[float]] = {1: [], 2: []}
        hits = 0
        for query in queries:
            match = match_expression(query)
            assert match is not None
            start = time.perf_counter()
            found, _more = await store.search(convs, READER, match, before=2**53, limit=20)
            timings[len(query.split())].append((time.perf_counter() - start) * 1000)
            hits += len(found)
        db = store._reader
        plan = [
            str(row[-1])
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT m.id FROM messages_fts JOIN messages AS m"
                " ON m.id = messages_fts.rowid WHERE messages_fts MATCH ?"
                " AND messages_fts.rowid < ? AND m.conv IN (?, ?)"
                " ORDER BY messages_fts.rowid DESC LIMIT 21",
                ('"ka"', 2**53, convs[0], convs[1 % len(convs)]),
            )
        ]
        sizes = _sizes(db)
    finally:
        store.close()
    every = timings[1] + timings[2]
    index_bytes = sum(size for name, size in sizes.items() if name.startswith("messages_fts"))
    table_bytes = sizes.get("messages", 0)
    return {
        "messages": messages,
        "rooms": rooms,
        "searches": len(every),
        "fill_seconds": round(fill_seconds, 1),
        "p50_ms": round(_percentile(every, 0.5), 2),
        "p99_ms": round(_percentile(every, 0.99), 2),
        "one_word_p50_ms": round(_percentile(timings[1], 0.5), 2),
        "one_word_p99_ms": round(_percentile(timings[1], 0.99), 2),
        "two_words_p50_ms": round(_percentile(timings[2], 0.5), 2),
        "two_words_p99_ms": round(_percentile(timings[2], 0.99), 2),
        "max_ms": round(max(every), 2),
        "mean_ms": round(statistics.fmean(every), 2),
        "hits_mean": round(hits / len(every), 1),
        "index_bytes": index_bytes,
        "table_bytes": table_bytes,
        "index_to_table": round(index_bytes / table_bytes, 3) if table_bytes else None,
        "sizes": sizes,
        "plan": plan,
    }


def run_search(path: Path, messages: int, rooms: int, searches: int) -> dict[str, Any]:
    """Run the search benchmark on a fresh database at `path`."""
    result: dict[str, Any] = trio.run(_bench, path, messages, rooms, searches)
    return result
