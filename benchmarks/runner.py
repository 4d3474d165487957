"""The parent side of the load generator: spawn workers, steer them, add up their results.

Workers are separate processes (never the server's interpreter); each gets a slice of
the clients. Every step has a time limit, and the workers are ended on the way out.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from benchmarks.loadgen import LATENCY_BUCKET_US, WorkerResult, WorkerSpec, worker_main


class WorkerFailed(RuntimeError):
    """A worker crashed or did not answer in time."""


@dataclass
class LoadResult:
    """One load run against one target, added up over its workers."""

    clients: int
    sent: int
    deliveries: int
    echoes: int
    lost: int
    duplicates: int
    out_of_order: int
    seconds: float
    """From the first send to the last delivery."""
    hist: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def deliveries_per_s(self) -> float:
        """Deliveries to members other than the sender, per second."""
        return self.deliveries / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, fraction: float) -> float:
        """Latency percentile of the deliveries to others, in ms (bucket upper bound)."""
        total = sum(self.hist.values())
        if not total:
            return 0.0
        rank = fraction * total
        seen = 0
        for bucket in sorted(self.hist):
            seen += self.hist[bucket]
            if seen >= rank:
                return (bucket + 1) * LATENCY_BUCKET_US / 1000
        return 0.0


class Pool:
    """Worker processes and their control pipes."""

    def __init__(self, specs: list[WorkerSpec]) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for spec in specs:
            parent, child = context.Pipe()
            proc = context.Process(target=worker_main, args=(spec, child), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    def send(self, kind: str, payload: Any = None) -> None:
        """Send the same message to every worker."""
        for pipe in self.pipes:
            pipe.send((kind, payload))

    def gather(self, kind: str, timeout: float) -> list[Any]:
        """One `kind` message from each worker, in order; raise if one fails or is late."""
        end = time.monotonic() + timeout
        out: list[Any] = []
        for at, pipe in enumerate(self.pipes):
            if not pipe.poll(max(0.0, end - time.monotonic())):
                raise WorkerFailed(f"worker {at} sent no {kind!r} within {timeout:.0f} s")
            try:
                got, payload = pipe.recv()
            except EOFError as exc:
                raise WorkerFailed(f"worker {at} exited before {kind!r}") from exc
            if got == "failed":
                raise WorkerFailed(f"worker {at} failed:\n{payload}")
            if got != kind:
                raise WorkerFailed(f"worker {at} sent {got!r}, expected {kind!r}")
            out.append(payload)
        return out

    def close(self) -> None:
        """Tell the workers to close their connections, then end any that linger."""
        for pipe in self.pipes:
            with suppress(OSError, ValueError):
                pipe.send(("close", None))
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for pipe in self.pipes:
            pipe.close()


@contextmanager
def pool(base: WorkerSpec, workers: int) -> Iterator[Pool]:
    """Split `base.total` clients over `workers` processes; close them all on exit."""
    workers = max(1, min(workers, base.total // 2 or 1))
    specs = []
    for at in range(workers):
        first = base.total * at // workers
        last = base.total * (at + 1) // workers
        specs.append(replace(base, first=first, count=last - first))
    running = Pool(specs)
    try:
        yield running
    finally:
        running.close()


def run_load(base: WorkerSpec, workers: int, drain: float = 30.0) -> LoadResult:
    """Connect everyone, run `base.mode` (fanout or paced), drain, and add the results up."""
    with pool(base, workers) as running:
        running.gather("ready", base.connect_timeout + 30)
        start = time.monotonic() + 0.2
        running.send("start", start)
        sent_parts: list[list[int]] = running.gather("sent", base.seconds + 60)
        sent = [n for part in sent_parts for n in part]
        running.send("expect", (sent, drain))
        results: list[WorkerResult] = running.gather("result", drain + 30)
    return _add_up(base.total, start, sum(sent), results)


def _add_up(clients: int, start: float, sent: int, results: list[WorkerResult]) -> LoadResult:
    hist: dict[int, int] = {}
    for part in results:
        for bucket, count in part.latency_hist.items():
            hist[bucket] = hist.get(bucket, 0) + count
    last = max((r.last_delivery_us for r in results), default=0)
    return LoadResult(
        clients=clients,
        sent=sent,
        deliveries=sum(r.deliveries for r in results),
        echoes=sum(r.echoes for r in results),
        lost=sum(r.lost for r in results),
        duplicates=sum(r.duplicates for r in results),
        out_of_order=sum(r.out_of_order for r in results),
        seconds=max(0.0, last / 1e6 - start),
        hist=hist,
        errors=[e for r in results for e in r.errors],
    )


@dataclass
class JoinResult:
    """A connect-and-join run: how long until the last client joined, and what it got."""

    clients: int
    seconds: float
    history: dict[int, int]
    errors: list[str]


@contextmanager
def joined(base: WorkerSpec, workers: int) -> Iterator[tuple[JoinResult, Pool]]:
    """Connect and join every client at once (timed); keep them connected in the block."""
    with pool(base, workers) as running:
        storm = base.mode == "storm"
        if storm:
            running.gather("armed", 60)
            start = time.monotonic() + 0.2
            running.send("go", start)
        else:
            start = time.monotonic()
        results: list[WorkerResult] = running.gather("ready", base.connect_timeout + 30)
        last = max(r.ready_us for r in results) / 1e6
        history: dict[int, int] = {}
        for part in results:
            history.update(part.history)
        outcome = JoinResult(
            clients=base.total,
            seconds=last - start,
            history=history,
            errors=[e for r in results for e in r.errors],
        )
        yield outcome, running


def wait_quiet(running: Pool, quiet: float = 1.0, timeout: float = 60.0) -> None:
    """Wait until no worker has received a byte for `quiet` s (the joins' presence is done)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        running.send("status")
        last = max(last_rx for last_rx, _bytes in running.gather("status", 30))
        if time.monotonic() - last >= quiet:
            return
        time.sleep(quiet / 2)
