"""Prometheus metrics and a health check, served over HTTP on trio (`--metrics-port`).

Why not prometheus-client: its metric objects take a lock per increment, and
its HTTP server runs in a thread, from where walking the open sessions (a set
the event loop changes) is a race. So the hot path only bumps plain ints
(`Stats`, `Hub.delivered`, `Store.errors`, the login guard's counts), per
batch where it can; gauges are computed at scrape time in the trio thread by
walking the server; and the text format (version 0.0.4: HELP, TYPE, samples,
cumulative histogram buckets) is rendered here, which needs no extra package.
The endpoint is a tiny HTTP/1.1 server: one request per connection (GET or
HEAD), a bounded request, a timeout, `Connection: close`.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

import trio

from . import __version__
from .store import StoreError

if TYPE_CHECKING:
    from .server import Server
    from .store import Stored

log = logging.getLogger(__name__)

COMMIT_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
MAX_REQUEST: Final = 8192  # bytes of a request's head
REQUEST_TIMEOUT: Final = 5.0  # seconds to send the request and read the answer
MAX_CLIENTS: Final = 16  # scrapes served at once; more are closed at once
HEALTH_TIMEOUT: Final = 2.0  # seconds the store has to answer /healthz
LINGER: Final = 1.0  # seconds to wait for the client's close after the answer


class ListenError(OSError):
    """The metrics endpoint cannot listen; its str is one line."""


class Histogram:
    """Counts per bucket (an observation lands in the first bucket whose bound is >= it)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1


class Stats:
    """The server's counters that nothing else keeps: plain ints, bumped per batch or per close."""

    __slots__ = ("batch_size", "closes", "commit_error", "commit_seconds", "committed")

    def __init__(self) -> None:
        self.committed = 0  # messages stored (a re-sent nonce is not stored again)
        self.commit_seconds = Histogram(COMMIT_BUCKETS)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.closes: Counter[str] = Counter()  # connections closed, by reason
        self.commit_error: str | None = None  # why the last commit failed, until one succeeds

    def commit(self, batch: list[Stored], seconds: float) -> None:
        """One committed batch: its size, how long its commit took, the messages stored."""
        self.committed += sum(not stored.duplicate for stored in batch)
        self.batch_size.observe(len(batch))
        self.commit_seconds.observe(seconds)
        self.commit_error = None

    def failed(self, error: Exception) -> None:
        self.commit_error = str(error)


# ---------------------------------------------------------------------- the text format


def _value(x: float) -> str:
    if isinstance(x, int):
        return str(x)
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(x)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class Exposition:
    """Metric families in Prometheus' text format, one after the other."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help: str, samples: Iterable[tuple[dict[str, str], float]]
    ) -> None:
        self.lines.append(f"# HELP {name} {help}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_value(value)}")

    def one(self, name: str, kind: str, help: str, value: float) -> None:
        self.family(name, kind, help, [({}, value)])

    def histogram(self, name: str, help: str, h: Histogram) -> None:
        self.lines.append(f"# HELP {name} {help}")
        self.lines.append(f"# TYPE {name} histogram")
        total = 0
        for bound, count in zip((*h.bounds, math.inf), h.counts, strict=True):
            total += count
            self.lines.append(f'{name}_bucket{{le="{_value(float(bound))}"}} {total}')
        self.lines.append(f"{name}_sum {_value(h.sum)}")
        self.lines.append(f"{name}_count {h.count}")

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def render(server: Server) -> bytes:
    """Every metric of a running server; the gauges are counted now, by walking it."""
    stats, hub, store, guard = server.stats, server.hub, server.store, server.chat.guard
    doors: Counter[str] = Counter({"json": 0, "irc": 0})
    queued = largest = 0
    for session in server.sessions:
        doors[session.door] += 1
        nbytes = session.outbox.nbytes
        queued += nbytes
        largest = max(largest, nbytes)
    out = Exposition()
    out.family("trio_chat_info", "gauge", "The server's version.", [({"version": __version__}, 1)])
    out.family(
        "trio_chat_connections",
        "gauge",
        "Connections open, by door (after any TLS handshake).",
        (({"door": door}, n) for door, n in sorted(doors.items())),
    )
    out.one("trio_chat_users", "gauge", "Welcomed users online.", len(hub.users))
    out.one("trio_chat_rooms", "gauge", "Rooms with members online.", len(hub.rooms))
    out.one("trio_chat_messages_committed_total", "counter", "Messages stored.", stats.committed)
    out.histogram(
        "trio_chat_commit_seconds", "How long each commit (one batch) took.", stats.commit_seconds
    )
    out.histogram("trio_chat_commit_batch_size", "Messages per commit.", stats.batch_size)
    out.one("trio_chat_store_pending", "gauge", "Messages waiting for a commit.", store.pending)
    out.one(
        "trio_chat_store_errors_total",
        "counter",
        "Commits and reads the store could not do (disk full, locked, I/O errors).",
        store.errors,
    )
    out.one(
        "trio_chat_fanout_deliveries_total",
        "counter",
        "Fan-out items (messages, presence) handed to outboxes, one per member per flush.",
        hub.delivered,
    )
    out.one("trio_chat_outbox_bytes", "gauge", "Bytes queued for all connections.", queued)
    out.one("trio_chat_outbox_bytes_max", "gauge", "Bytes queued for the most behind one.", largest)
    out.family(
        "trio_chat_closes_total",
        "counter",
        "Connections closed, by reason.",
        (({"reason": reason}, n) for reason, n in sorted(stats.closes.items())),
    )
    out.family(
        "trio_chat_login_failures_total",
        "counter",
        "Logins refused: a wrong password, or too many failures from the address.",
        [({"reason": "password"}, guard.failures), ({"reason": "throttled"}, guard.refusals)],
    )
    return out.text()


# ---------------------------------------------------------------------- the endpoint


class Endpoint:
    """Answers GET /metrics and GET /healthz for one server."""

    def __init__(self, server: Server, nursery: trio.Nursery) -> None:
        self.server = server
        self.nursery = nursery  # where health probes run, so a stuck one is not waited for
        self.clients = trio.Semaphore(MAX_CLIENTS)
        self._probe: trio.Event | None = None
        self._problem: str | None = None

    async def health(self) -> str | None:
        """None when the store answers a read in time and the last commit did not fail."""
        if self._probe is None:
            self._probe = trio.Event()
            self.nursery.start_soon(self._read_store, self._probe)
        probe = self._probe
        with trio.move_on_after(HEALTH_TIMEOUT):
            await probe.wait()
            if self._problem is not None:
                return self._problem
            error = self.server.stats.commit_error
            return None if error is None else f"the last commit failed: {error}"
        return f"the store did not answer within {HEALTH_TIMEOUT:g} s"

    async def _read_store(self, done: trio.Event) -> None:
        try:
            await self.server.store.page("#", upto=0, limit=1)  # a read through the readers
        except StoreError as exc:
            self._problem = str(exc)
        else:
            self._problem = None
        finally:
            self._probe = None
            done.set()

    async def handle(self, stream: trio.SocketStream) -> None:
        """One request, one answer, then close."""
        if self.clients.value == 0:
            await trio.aclose_forcefully(stream)
            return
        async with self.clients:
            try:
                with trio.move_on_after(REQUEST_TIMEOUT):
                    await self._answer(stream)
                with trio.move_on_after(LINGER):  # a close with unread bytes could reset
                    await stream.send_eof()  # the connection before the answer is read
                    while await stream.receive_some(4096):
                        pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                await trio.aclose_forcefully(stream)

    async def _answer(self, stream: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head and b"\n\n" not in head:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            head += chunk
            if len(head) > MAX_REQUEST:
                await _send(stream, 431, b"request too large\n")
                return
        parts = head.split(b"\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            await _send(stream, 400, b"bad request\n")
            return
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            await _send(stream, 405, b"only GET and HEAD\n", head_only=False, allow=True)
            return
        head_only = method == b"HEAD"
        if target == b"/metrics":
            body = render(self.server)
            kind = "text/plain; version=0.0.4; charset=utf-8"
            await _send(stream, 200, body, head_only=head_only, content_type=kind)
        elif target == b"/healthz":
            problem = await self.health()
            if problem is None:
                await _send(stream, 200, b"ok\n", head_only=head_only)
            else:
                await _send(stream, 503, problem.encode() + b"\n", head_only=head_only)
        else:
            await _send(stream, 404, b"not found: try /metrics or /healthz\n", head_only=head_only)


_REASONS: Final = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                   431: "Request Header Fields Too Large", 503: "Service Unavailable"}  # fmt: skip


async def _send(
    stream: trio.SocketStream,
    status: int,
    body: bytes,
    *,
    head_only: bool = False,
    content_type: str = "text/plain; charset=utf-8",
    allow: bool = False,
) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        + ("Allow: GET, HEAD\r\n" if allow else "")
        + "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    await stream.send_all(head.encode() + (b"" if head_only else body))


async def serve_metrics(
    server: Server,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[list[int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the endpoint until cancelled; `task_status.started` gets the ports listened on."""
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port} for metrics: {exc}") from None
    ports = []
    for listener in listeners:
        sockname = listener.socket.getsockname()
        ports.append(sockname[1])
        where = f"[{sockname[0]}]" if ":" in sockname[0] else sockname[0]
        log.info("metrics at http://%s:%d/metrics", where, sockname[1])
    async with trio.open_nursery() as nursery:
        endpoint = Endpoint(server, nursery)
        task_status.started(ports)
        await trio.serve_listeners(endpoint.handle, listeners, handler_nursery=nursery)
