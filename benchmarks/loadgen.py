"""Load-generator worker: one process, many clients on one epoll loop, every delivery checked.

The parent (`benchmarks.runner`) spawns workers in separate processes and steers them
through a pipe: ready -> start -> sent -> expect -> result -> close. A worker never
parses JSON per delivery: the dialect finds deliveries with one regex per read.
"""

from __future__ import annotations

import contextlib
import resource
import select
import socket
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from benchmarks.dialects import Delivery, Dialect, HandshakeError, name_of
from benchmarks.irc import dialect_named

READ_SIZE = 1 << 18
LATENCY_BUCKET_US = 32
"""Latency histogram resolution, in µs."""

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT


def now_us() -> int:
    """CLOCK_MONOTONIC in µs: system-wide on Linux, so comparable across processes."""
    return time.monotonic_ns() // 1000


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker does: which clients it runs, against what, in which mode."""

    dialect: str
    host: str
    port: int
    first: int
    """Index of this worker's first client; its clients are first .. first+count-1."""
    count: int
    total: int
    """Clients in the whole run, over all workers (the senders are 0 .. total-1)."""
    mode: str
    """fanout (closed loop, `window` messages in flight per sender), paced (open loop at
    `rate` messages/s, the clients taking turns), storm (connect and join, timed), or idle."""
    window: int = 2
    seconds: float = 3.0
    rate: float = 0.0
    rooms: int = 1
    connect_batch: int = 256
    connect_timeout: float = 120.0


@dataclass
class WorkerResult:
    """What one worker saw; `runner` adds these up over workers."""

    sent: list[int] = field(default_factory=list)
    deliveries: int = 0
    """Unique deliveries of other members' messages."""
    echoes: int = 0
    """Unique deliveries of a member's own message back to it."""
    duplicates: int = 0
    lost: int = 0
    out_of_order: int = 0
    last_delivery_us: int = 0
    latency_hist: dict[int, int] = field(default_factory=dict)
    """Bucket (latency µs // LATENCY_BUCKET_US) -> count, deliveries to others only."""
    errors: list[str] = field(default_factory=list)
    ready_us: int = 0
    """When the last client of this worker became ready (joined)."""
    history: dict[int, int] = field(default_factory=dict)


class Client:
    """One connection and what it has received so far."""

    __slots__ = (
        "closed",
        "expected",
        "index",
        "last_id",
        "missing",
        "out",
        "ready",
        "rest",
        "sock",
    )

    def __init__(self, index: int, sock: socket.socket, total: int) -> None:
        self.index = index
        self.sock = sock
        self.rest = b""
        self.out = bytearray()
        self.ready = False
        self.closed = False
        self.expected = [0] * total
        """Next sequence number expected from each sender."""
        self.last_id = 0
        self.missing: set[tuple[int, int]] = set()
        """(sender, seq) skipped over: lost unless they turn up late."""


class Worker:
    """Runs the clients of one `WorkerSpec` and talks to the parent through `control`."""

    def __init__(self, spec: WorkerSpec, control: Connection) -> None:
        self.spec = spec
        self.control = control
        self.dialect: Dialect = dialect_named(spec.dialect, spec.rooms)
        self.epoll = select.epoll()
        self.epoll.register(control.fileno(), _IN)
        self.inbox: deque[tuple[str, Any]] = deque()
        self.clients: list[Client] = []
        self.by_fd: dict[int, Client] = {}
        self.result = WorkerResult(sent=[0] * spec.count)
        self.measuring = spec.mode in ("fanout", "paced")
        """Whether deliveries are checked: from the handshake on, so that none slips by
        a worker that gets its start signal late."""
        self.deadline = 0.0
        self.handshaking = 0
        self.unique = 0
        self.needed = -1
        self.last_rx = time.monotonic()
        self.rx_bytes = 0
        self.acker: list[int] = []
        """For each local sender, the local client whose receipts pace it."""

    # -- the loop ---------------------------------------------------------------------

    def poll(self, timeout: float) -> None:
        """Wait up to `timeout` s for I/O and handle whatever is ready."""
        for fd, events in self.epoll.poll(timeout):
            if fd == self.control.fileno():
                self.inbox.append(self.control.recv())
                continue
            client = self.by_fd.get(fd)
            if client is None:
                continue
            if events & _OUT:
                self._flush(client)
            if events & ~_OUT:
                self._read(client)

    def expect(self, kind: str, timeout: float = 3600.0) -> Any:
        """Serve the clients until the parent sends a `kind` message; return its payload."""
        end = time.monotonic() + timeout
        while True:
            while self.inbox:
                got, payload = self.inbox.popleft()
                if got == kind:
                    return payload
                if got == "status":
                    self.control.send(("status", (self.last_rx, self.rx_bytes)))
            if time.monotonic() > end:
                raise TimeoutError(f"no {kind!r} from the parent")
            self.poll(0.1)

    # -- connections ------------------------------------------------------------------

    def connect_all(self) -> None:
        """Open every client (at most `connect_batch` in handshake at once) until all joined."""
        spec = self.spec
        todo = deque(range(spec.first, spec.first + spec.count))
        end = time.monotonic() + spec.connect_timeout
        while todo or self.handshaking:
            while todo and self.handshaking < spec.connect_batch:
                self._open(todo.popleft())
            self.poll(0.05)
            if time.monotonic() > end:
                raise TimeoutError(f"{self.handshaking + len(todo)} clients not joined in time")
        if self.result.errors:
            raise HandshakeError("; ".join(self.result.errors[:5]))

    def _open(self, index: int) -> None:
        sock = socket.create_connection((self.spec.host, self.spec.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        client = Client(index, sock, self.spec.total)
        self.clients.append(client)
        self.by_fd[sock.fileno()] = client
        self.epoll.register(sock.fileno(), _IN)
        self.handshaking += 1
        self.send(client, self.dialect.greet(index))

    def send(self, client: Client, data: bytes) -> None:
        """Send now what the socket takes; keep the rest for when it is writable."""
        if client.closed or not data:
            return
        if client.out:
            client.out += data
            return
        try:
            sent = client.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._drop(client, f"send failed: {exc}")
            return
        if sent < len(data):
            client.out += data[sent:]
            self.epoll.modify(client.sock.fileno(), _IN | _OUT)

    def _flush(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.out)
        except BlockingIOError:
            return
        except OSError as exc:
            self._drop(client, f"send failed: {exc}")
            return
        del client.out[:sent]
        if not client.out:
            self.epoll.modify(client.sock.fileno(), _IN)

    def _drop(self, client: Client, why: str) -> None:
        if client.closed:
            return
        client.closed = True
        self.result.errors.append(f"{name_of(client.index)}: {why}")
        if not client.ready:
            self.handshaking -= 1
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(client.sock.fileno())
        self.by_fd.pop(client.sock.fileno(), None)
        client.sock.close()

    def close_all(self) -> None:
        """Close every connection (the server sees them go) and the epoll object."""
        for client in self.clients:
            if not client.closed:
                client.closed = True
                client.sock.close()
        self.epoll.close()

    # -- receiving --------------------------------------------------------------------

    def _read(self, client: Client) -> None:
        if client.closed:
            return
        try:
            data = client.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._drop(client, f"receive failed: {exc}")
            return
        if not data:
            self._drop(client, "closed by the server")
            return
        self.rx_bytes += len(data)
        self.last_rx = time.monotonic()
        if client.rest:
            data = client.rest + data
        cut = data.rfind(b"\n") + 1
        if not cut:
            client.rest = data
            return
        client.rest = data[cut:]
        block = data[:cut]
        if client.ready:
            self._on_block(client, block)
        else:
            self._on_handshake(client, block)

    def _on_handshake(self, client: Client, block: bytes) -> None:
        lines = block.splitlines(keepends=True)
        for at, line in enumerate(lines):
            try:
                reply, ready = self.dialect.handshake(client.index, line)
            except (HandshakeError, ValueError) as exc:
                self._drop(client, f"handshake: {exc}")
                return
            self.send(client, reply)
            if ready:
                client.ready = True
                self.handshaking -= 1
                self.result.ready_us = max(self.result.ready_us, now_us())
                rest = b"".join(lines[at + 1 :])
                if rest:
                    self._on_block(client, rest)
                return

    def _on_block(self, client: Client, block: bytes) -> None:
        dialect = self.dialect
        pongs = dialect.keepalive(block)
        if pongs:
            self.send(client, pongs)
        trouble = dialect.trouble(block)
        if trouble:
            self.result.errors.extend(f"{name_of(client.index)}: {t}" for t in trouble[:3])
        if self.measuring:
            found = dialect.deliveries(block)
            if found:
                self._check(client, found)
                if self.spec.mode == "fanout" and client.index - self.spec.first < 2:
                    self._top_up_from(client, found)

    def _check(self, client: Client, found: list[Delivery]) -> None:
        """Check each delivery: per sender in sequence, per member ids increasing."""
        expected = client.expected
        hist = self.result.latency_hist
        own = client.index
        check_ids = self.dialect.checks_ids
        last_id = client.last_id
        now = now_us()
        unique = 0
        echoes = 0
        for ident, s, q, t in found:
            sender = int(s)
            seq = int(q)
            if seq == expected[sender]:
                expected[sender] = seq + 1
            elif not self._anomaly(client, sender, seq):
                continue
            unique += 1
            # the same work for every dialect (the relay's ids are the sender's, not
            # ordered): the generator is often the bottleneck, so it must cost alike
            mid = int(ident or 0)  # IRC deliveries carry no id
            if mid <= last_id:
                if check_ids:
                    self.result.out_of_order += 1
            else:
                last_id = mid
            if sender == own:
                echoes += 1
            else:
                bucket = (now - int(t)) // LATENCY_BUCKET_US
                hist[bucket] = hist.get(bucket, 0) + 1
        client.last_id = last_id
        self.unique += unique
        self.result.echoes += echoes
        self.result.deliveries += unique - echoes
        self.result.last_delivery_us = now

    def _anomaly(self, client: Client, sender: int, seq: int) -> bool:
        """A delivery out of sequence: count it; True when it is new (not a duplicate)."""
        expected = client.expected[sender]
        if seq > expected:
            client.missing.update((sender, gap) for gap in range(expected, seq))
            client.expected[sender] = seq + 1
            self.result.out_of_order += 1
            return True
        key = (sender, seq)
        if key in client.missing:
            client.missing.discard(key)
            self.result.out_of_order += 1
            return True
        self.result.duplicates += 1
        return False

    # -- sending ----------------------------------------------------------------------

    def _top_up_from(self, witness: Client, found: list[Delivery]) -> None:
        """After a witness read: refill the window of each local sender it paces."""
        first = self.spec.first
        count = self.spec.count
        position = witness.index - first
        for sender in {int(f[1]) for f in found}:
            local = sender - first
            if 0 <= local < count and self.acker[local] == position:
                self._top_up(local)

    def _top_up(self, local: int) -> None:
        if time.monotonic() >= self.deadline:
            return
        spec = self.spec
        sender = spec.first + local
        client = self.clients[local]
        acked = self.clients[self.acker[local]].expected[sender]
        sent = self.result.sent[local]
        if sent - acked >= spec.window:
            return
        t = now_us()
        data = b"".join(
            self.dialect.say(sender, seq, t) for seq in range(sent, acked + spec.window)
        )
        self.result.sent[local] = acked + spec.window
        self.send(client, data)

    def run_fanout(self, start: float) -> None:
        """Closed loop: each sender keeps `window` messages in flight until the deadline.

        A message counts as landed when a witness client of this same worker receives it
        (the worker's first client, or its second for the first's own messages), so the
        pacing is the same for servers that echo to the sender and for IRC, which doesn't.
        """
        count = self.spec.count
        self.acker = [1 if local == 0 else 0 for local in range(count)]
        if count < 2:
            self.acker = [0]
        self.deadline = start + self.spec.seconds
        self._sleep_until(start)
        for local in range(count):
            self._top_up(local)
        while time.monotonic() < self.deadline:
            self.poll(min(0.05, max(0.0, self.deadline - time.monotonic())))

    def run_paced(self, start: float) -> None:
        """Open loop: message k goes at start + k/rate from client k mod total."""
        spec = self.spec
        slots = [
            k
            for k in range(int(spec.rate * spec.seconds))
            if spec.first <= k % spec.total < spec.first + spec.count
        ]
        self._sleep_until(start)
        for k in slots:
            due = start + k / spec.rate
            while (wait := due - time.monotonic()) > 0:
                self.poll(wait)
            local = k % spec.total - spec.first
            seq = self.result.sent[local]
            self.result.sent[local] = seq + 1
            self.send(self.clients[local], self.dialect.say(spec.first + local, seq, now_us()))
        self.deadline = start + spec.seconds

    def _sleep_until(self, when: float) -> None:
        while (wait := when - time.monotonic()) > 0:
            self.poll(wait)

    def drain(self, sent: list[int], timeout: float) -> None:
        """Receive until every local client has every message in `sent`, or `timeout`."""
        total = sum(sent)
        echoes = self.dialect.echoes
        self.needed = sum(
            total - (0 if echoes else sent[client.index])
            for client in self.clients
            if not client.closed
        )
        end = time.monotonic() + timeout
        while self.unique < self.needed and time.monotonic() < end:
            self.poll(0.05)
        result = self.result
        for client in self.clients:
            for sender, count in enumerate(sent):
                if sender == client.index and not echoes:
                    continue
                result.lost += max(0, count - client.expected[sender])
            result.lost += len(client.missing)
        if self.unique < self.needed:
            result.errors.append(
                f"drain timed out after {timeout:.0f} s: {self.needed - self.unique} missing"
            )


def worker_main(spec: WorkerSpec, control: Connection) -> None:
    """Process entry point: run one worker as the parent steers it; report any crash."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    worker: Worker | None = None
    try:
        worker = Worker(spec, control)
        _steer(worker)
    except Exception:
        control.send(("failed", traceback.format_exc()))
    finally:
        if worker is not None:
            worker.close_all()
        control.close()


def _steer(worker: Worker) -> None:
    """The worker's side of the conversation with `runner`, by mode."""
    spec = worker.spec
    control = worker.control
    if spec.mode == "storm":
        control.send(("armed", None))
        worker._sleep_until(worker.expect("go"))
    worker.connect_all()
    result = worker.result
    result.history = dict(worker.dialect.history)
    control.send(("ready", result if spec.mode in ("storm", "idle") else None))
    if spec.mode in ("fanout", "paced"):
        start = worker.expect("start")
        if spec.mode == "fanout":
            worker.run_fanout(start)
        else:
            worker.run_paced(start)
        control.send(("sent", result.sent))
        sent, timeout = worker.expect("expect")
        worker.drain(sent, timeout)
        control.send(("result", result))
    worker.expect("close")
