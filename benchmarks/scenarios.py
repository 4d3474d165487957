"""The benchmark scenarios: fanout, latency, joinstorm, idle, store, search, and the fan-out sweep.

Each returns the dict that `--json` prints (the keys issue 5 names, and a few more).
Deliveries are counted to the members other than the sender, for every server: IRC
does not echo a message to its sender, and trio-chat and the relay do (their echoes
are checked too, and reported as `echoes`, but not counted as deliveries).
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.dialects import ROOM
from benchmarks.loadgen import WorkerSpec
from benchmarks.runner import LoadResult, joined, run_load, wait_quiet
from benchmarks.servers import (
    IRC_SERVERS,
    ServerUnavailable,
    Target,
    chat_server,
    irc_server,
    relay_server,
    rss_bytes,
)

Json = dict[str, Any]
SWEEP_CLIENTS = (50, 100, 200, 500, 1000)


def note(message: str) -> None:
    """Progress and skips go to stderr, so stdout's last line stays the JSON."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Settings:
    """Options shared by the load scenarios."""

    workers: int = 2
    seconds: float = 3.0
    window: int = 2
    irc: tuple[str, ...] = IRC_SERVERS
    repeat: int = 1
    """Runs per target, taken in turns; the fastest counts, every run's checks add up."""
    notes: list[str] = field(default_factory=list)

    def skip(self, message: str) -> None:
        """Record and show why something did not run."""
        if message not in self.notes:
            self.notes.append(message)
        note(f"skipped: {message}")


def _queue_limit(clients: int, window: int) -> int:
    """A per-client bound no fan-out of this run can reach: every sender's window, twice."""
    return max(1000, clients * window * 2 + 1000)


def _load(
    target: Target, clients: int, settings: Settings, mode: str, rate: float = 0.0
) -> LoadResult:
    spec = WorkerSpec(
        dialect=target.dialect,
        host=target.host,
        port=target.port,
        first=0,
        count=0,
        total=clients,
        mode=mode,
        window=settings.window,
        seconds=settings.seconds,
        rate=rate,
    )
    result = run_load(spec, settings.workers)
    note(
        f"{target.name} {mode} {clients} clients: {result.deliveries_per_s:,.0f} deliveries/s,"
        f" p50 {result.percentile_ms(0.5):.1f} ms, p99 {result.percentile_ms(0.99):.1f} ms,"
        f" lost {result.lost}, duplicates {result.duplicates},"
        f" out of order {result.out_of_order}"
    )
    for error in result.errors[:5]:
        note(f"  {target.name}: {error}")
    return result


def _start(name: str, clients: int, settings: Settings) -> AbstractContextManager[Target]:
    """Start target `name`: the server, the relay, or one of the IRC servers."""
    if name == "server":
        return chat_server(_queue_limit(clients, settings.window))
    if name == "metrics":
        return chat_server(_queue_limit(clients, settings.window), metrics=True)
    if name == "relay":
        return relay_server()
    return irc_server(name, clients)


def _checks(result: LoadResult) -> Json:
    return {
        "sent": result.sent,
        "deliveries": result.deliveries,
        "echoes": result.echoes,
        "lost": result.lost,
        "duplicates": result.duplicates,
        "out_of_order": result.out_of_order,
        "errors": result.errors[:5],
    }


def run_targets(
    clients: int, settings: Settings, mode: str = "fanout", extra: tuple[str, ...] = ()
) -> dict[str, LoadResult]:
    """The same load against every target present; the missing ones are skipped with a note.

    With `settings.repeat` > 1 the targets take turns, so a burst of other load on the
    machine hits them alike; the fastest run of each counts, and the losses of all.
    """
    results: dict[str, LoadResult] = {}
    skipped: set[str] = set()
    for _round in range(max(1, settings.repeat)):
        for name in ("server", "relay", *extra, *settings.irc):
            if name in skipped:
                continue
            try:
                with _start(name, clients, settings) as target:
                    result = _load(target, clients, settings, mode)
            except ServerUnavailable as exc:
                settings.skip(f"{name}: {exc}")
                skipped.add(name)
                continue
            results[name] = _best(results.get(name), result)
    return results


def _best(earlier: LoadResult | None, result: LoadResult) -> LoadResult:
    """The faster of two runs, carrying the losses and errors of both."""
    if earlier is None:
        return result
    best, other = (
        (result, earlier)
        if result.deliveries_per_s > earlier.deliveries_per_s
        else (earlier, result)
    )
    return replace(
        best,
        lost=best.lost + other.lost,
        duplicates=best.duplicates + other.duplicates,
        out_of_order=best.out_of_order + other.out_of_order,
        errors=best.errors + other.errors,
    )


def fanout(clients: int = 300, settings: Settings | None = None) -> Json:
    """One room, every client sending with `window` messages in flight, as fast as it goes."""
    settings = settings or Settings()
    # the server again with --metrics-port on: what the metrics cost on the hot path
    results = run_targets(clients, settings, extra=("metrics",))
    server = results["server"]
    relay = results["relay"]
    out: Json = {
        "clients": clients,
        "sent": server.sent,
        "deliveries": server.deliveries,
        "lost": server.lost,
        "duplicates": server.duplicates,
        "out_of_order": server.out_of_order,
        "deliveries_per_s": round(server.deliveries_per_s),
        "relay_deliveries_per_s": round(relay.deliveries_per_s),
        "ratio": round(server.deliveries_per_s / relay.deliveries_per_s, 3)
        if relay.deliveries_per_s
        else 0.0,
        "p50_ms": round(server.percentile_ms(0.5), 2),
        "p99_ms": round(server.percentile_ms(0.99), 2),
        "relay_p99_ms": round(relay.percentile_ms(0.99), 2),
        "messages_per_s": round(server.sent / server.seconds) if server.seconds else 0,
        "window": settings.window,
        "seconds": settings.seconds,
        "deliveries_counted": "to members other than the sender (IRC does not echo)",
    }
    if "metrics" in results:
        rate = results["metrics"].deliveries_per_s
        out["metrics_deliveries_per_s"] = round(rate)
        out["metrics_ratio"] = (
            round(rate / server.deliveries_per_s, 3) if server.deliveries_per_s else 0.0
        )
    for name in IRC_SERVERS:
        if name in results:
            rate = results[name].deliveries_per_s
            out[f"{name}_deliveries_per_s"] = round(rate)
            out[f"ratio_to_{name}"] = round(server.deliveries_per_s / rate, 3) if rate else 0.0
    out["checks"] = {name: _checks(result) for name, result in results.items()}
    out["notes"] = list(settings.notes)
    return out


def latency(
    clients: int = 300,
    rate: float = 0.0,
    settings: Settings | None = None,
    fanout_rate: float = 0.0,
) -> Json:
    """The fan-out shape at a fixed, smooth rate (messages/s, the clients taking turns).

    The default rate is half the messages/s that `fanout` reached (`fanout_rate`, measured
    now when not given); the server runs first, then the relay at the same rate.
    """
    settings = settings or Settings()
    if rate <= 0:
        if fanout_rate <= 0:
            note("latency: measuring the server's fan-out rate first")
            with chat_server(_queue_limit(clients, settings.window)) as target:
                probe = _load(target, clients, settings, "fanout")
            fanout_rate = probe.sent / probe.seconds if probe.seconds else 100.0
        rate = fanout_rate / 2
    with chat_server(_queue_limit(clients, settings.window)) as target:
        server = _load(target, clients, settings, "paced", rate)
    with relay_server() as target:
        relay = _load(target, clients, settings, "paced", rate)
    return {
        "offered_per_s": round(rate, 1),
        "offered_deliveries_per_s": round(rate * (clients - 1)),
        "clients": clients,
        "p50_ms": round(server.percentile_ms(0.5), 2),
        "p99_ms": round(server.percentile_ms(0.99), 2),
        "relay_p50_ms": round(relay.percentile_ms(0.5), 2),
        "relay_p99_ms": round(relay.percentile_ms(0.99), 2),
        "p99_ratio": round(server.percentile_ms(0.99) / relay.percentile_ms(0.99), 3)
        if relay.percentile_ms(0.99)
        else 0.0,
        "lost": server.lost,
        "duplicates": server.duplicates,
        "out_of_order": server.out_of_order,
        "relay_lost": relay.lost,
        "checks": {"server": _checks(server), "relay": _checks(relay)},
    }


def seed_history(target: Target, count: int) -> None:
    """Say `count` messages in the bench room and wait for their echoes (blocking client)."""
    with socket.create_connection((target.host, target.port), timeout=30) as sock:
        reader = sock.makefile("rb")

        def send(frame: Json) -> None:
            sock.sendall(json.dumps(frame).encode() + b"\n")

        def until(kind: str) -> Json:
            while True:
                line = reader.readline()
                if not line:
                    raise RuntimeError(f"server closed before {kind!r}")
                frame: Json = json.loads(line)
                if frame.get("type") == kind:
                    return frame
                if frame.get("type") in ("error", "bye"):
                    raise RuntimeError(f"seeding history: {frame}")

        send({"type": "hello", "name": "seed"})
        until("welcome")
        send({"type": "join", "room": ROOM})
        until("joined")
        for seq in range(count):
            send({"type": "say", "room": ROOM, "text": f"history {seq}"})
        for _ in range(count):
            until("message")
        send({"type": "quit"})


def joinstorm(clients: int = 1000, history: int = 50, settings: Settings | None = None) -> Json:
    """`clients` connect at once, say hello and join one room holding `history` messages."""
    settings = settings or Settings()
    with chat_server(max(100_000, clients * 4)) as target:
        seed_history(target, history)
        spec = WorkerSpec(
            dialect="chat",
            host=target.host,
            port=target.port,
            first=0,
            count=0,
            total=clients,
            mode="storm",
        )
        with joined(spec, settings.workers) as (outcome, _running):
            pass
    expected = min(history, 50)
    short = sum(1 for got in outcome.history.values() if got != expected)
    note(f"joinstorm {clients} clients: {outcome.seconds:.2f} s, {short} with short history")
    return {
        "clients": clients,
        "seconds": round(outcome.seconds, 3),
        "history": history,
        "joined": len(outcome.history),
        "wrong_history": short,
        "errors": outcome.errors[:5],
    }


def idle(connections: int = 10_000, rooms: int = 100, settings: Settings | None = None) -> Json:
    """`connections` welcomed clients spread over `rooms` rooms, doing nothing: RSS per one."""
    settings = settings or Settings()
    with chat_server(max(100_000, connections)) as target:
        time.sleep(0.5)
        before = rss_bytes(target.pid)
        spec = WorkerSpec(
            dialect="chat",
            host=target.host,
            port=target.port,
            first=0,
            count=0,
            total=connections,
            mode="idle",
            rooms=rooms,
            connect_timeout=300.0,
        )
        with joined(spec, settings.workers) as (outcome, running):
            wait_quiet(running)
            after = rss_bytes(target.pid)
    growth = after - before
    note(
        f"idle {connections} connections in {rooms} rooms: {growth / connections:,.0f} B each"
        f" (joined in {outcome.seconds:.1f} s)"
    )
    return {
        "connections": connections,
        "rss_bytes_per_conn": round(growth / connections),
        "rooms": rooms,
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "joined": len(outcome.history),
        "connect_seconds": round(outcome.seconds, 2),
        "errors": outcome.errors[:5],
    }


def store(messages: int = 200_000, tasks: int = 100, db: Path | None = None) -> Json:
    """The history store alone, through its API, from `tasks` concurrent trio tasks; and
    its reference in the same run: the same rows into a bare SQLite table from one thread."""
    from benchmarks.storebench import run_bare, run_store

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        out = run_store(db or Path(tmp) / "store.db", messages, tasks)
        bare = run_bare(Path(tmp) / "bare.db", messages)
    out["bare_sqlite_per_s"] = round(bare)
    out["bare_ratio"] = round(out["commits_per_s"] / bare, 3)
    note(
        f"store {out['messages']} messages: {out['commits_per_s']:,.0f} messages/s committed,"
        f" {out['batch_mean']:.0f} per transaction; bare SQLite {bare:,.0f}/s"
        f" ({out['bare_ratio']:.0%})"
    )
    return out


def search(
    messages: int = 1_000_000, rooms: int = 100, searches: int = 1000, db: Path | None = None
) -> Json:
    """`Store.search` over `messages` messages in `rooms` rooms: p50/p99 of one- and two-word
    queries for a member of every room, and the full-text index's size against the table's."""
    from benchmarks.searchbench import run_search

    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        out = run_search(db or Path(tmp) / "search.db", messages, rooms, searches)
    note(
        f"search {out['searches']} queries over {out['messages']:,} messages in {rooms} rooms:"
        f" p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms; index {out['index_bytes']:,} B,"
        f" table {out['table_bytes']:,} B (filled in {out['fill_seconds']} s)"
    )
    return out


def sweep(clients: tuple[int, ...] = SWEEP_CLIENTS, settings: Settings | None = None) -> Json:
    """Fan-out deliveries/s against the number of clients, for every target present."""
    settings = settings or Settings(seconds=2.0)
    series: dict[str, list[list[float]]] = {}
    faults: dict[str, int] = {}
    for count in clients:
        for name, result in run_targets(count, settings).items():
            series.setdefault(name, []).append([count, round(result.deliveries_per_s)])
            bad = result.lost + result.duplicates + result.out_of_order + len(result.errors)
            faults[name] = faults.get(name, 0) + bad
    return {
        "clients": list(clients),
        "deliveries_per_s": series,
        "faults": faults,
        "notes": list(settings.notes),
    }
