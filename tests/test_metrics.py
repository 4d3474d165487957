"""The metrics endpoint: Prometheus' text format after real traffic, /healthz, the HTTP edges."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from chat_client import ChatClient, login

from trio_chat.config import Config
from trio_chat.metrics import Endpoint, Histogram, render
from trio_chat.server import Ports, serve
from trio_chat.store import StoreUnavailable

pytestmark = pytest.mark.trio

_SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one raw request; the status, headers and body of the answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    with trio.fail_after(10):
        await stream.send_all(request)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    await stream.aclose()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    return await http(port, f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())


def parse(text: str) -> tuple[dict[tuple[str, frozenset[tuple[str, str]]], float], dict[str, str]]:
    """Samples by (name, labels), and each family's TYPE; every line must be well-formed."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        found = _SAMPLE.match(line)
        assert found, line
        name, labels, value = found.groups()
        assert name.startswith("trio_chat_"), name
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        samples[(name, pairs)] = float(value)
    return samples, types


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
async def metrics_server(nursery: trio.Nursery, config: Config) -> Ports:
    settings = dataclasses.replace(config, metrics_port=0)
    ports: Ports = await nursery.start(functools.partial(serve, settings, shutdown=trio.Event()))
    return ports


async def scrape(port: int) -> tuple[dict[Any, float], dict[str, str]]:
    status, headers, body = await get(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    return parse(body.decode())


async def test_metrics_after_some_traffic(metrics_server: Ports) -> None:
    port, mport = metrics_server.json[0], metrics_server.metrics[0]
    samples, types = await scrape(mport)
    assert value(samples, "trio_chat_connections", door="json") == 0
    assert value(samples, "trio_chat_messages_committed_total") == 0

    alice = await login(port, "Alice", "lobby", password="correct horse")
    bob = await login(port, "Bob", "lobby")
    carol = await login(port, "Carol", "lobby")
    guesser = await ChatClient.connect(port)
    refused = await guesser.hello("Alice", password="wrong password")
    assert refused["type"] == "error" and refused["code"] == "auth_failed"
    for n in range(5):
        await alice.say("lobby", f"hello {n}")
    await bob.expect("message", text="hello 4")
    await carol.expect("message", text="hello 4")
    await carol.send(type="quit")
    assert await carol.closed()

    with trio.fail_after(5):  # the quit is counted once the connection has closed
        while True:
            samples, types = await scrape(mport)
            if value(samples, "trio_chat_closes_total", reason="quit") == 1:
                break
            await trio.sleep(0.01)
    assert value(samples, "trio_chat_connections", door="json") == 3  # two users, one guesser
    assert value(samples, "trio_chat_connections", door="irc") == 0
    assert value(samples, "trio_chat_users") == 2
    assert value(samples, "trio_chat_rooms") == 1
    assert value(samples, "trio_chat_messages_committed_total") == 5
    assert value(samples, "trio_chat_commit_batch_size_sum") == 5
    commits = value(samples, "trio_chat_commit_batch_size_count")
    assert 1 <= commits <= 5
    assert value(samples, "trio_chat_commit_seconds_count") == commits
    assert value(samples, "trio_chat_commit_seconds_bucket", le="+Inf") == commits
    assert value(samples, "trio_chat_commit_seconds_sum") > 0
    # each commit reached the three members (messages), besides presence
    assert value(samples, "trio_chat_fanout_deliveries_total") >= 3 * commits
    assert value(samples, "trio_chat_login_failures_total", reason="password") == 1
    assert value(samples, "trio_chat_login_failures_total", reason="throttled") == 0
    assert value(samples, "trio_chat_store_errors_total") == 0
    assert value(samples, "trio_chat_outbox_bytes") >= 0
    assert value(samples, "trio_chat_outbox_bytes_max") <= value(samples, "trio_chat_outbox_bytes")
    assert types["trio_chat_connections"] == "gauge"
    assert types["trio_chat_messages_committed_total"] == "counter"
    assert types["trio_chat_commit_seconds"] == "histogram"
    assert types["trio_chat_closes_total"] == "counter"
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == "trio_chat_commit_batch_size_bucket"
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    assert buckets[-1][0] == math.inf

    status, _, body = await get(mport, "/healthz")
    assert (status, body) == (200, b"ok\n")
    for client in (alice, bob, guesser):
        await client.aclose()


async def test_the_text_format_parses_with_prometheus_client(metrics_server: Ports) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    await login(metrics_server.json[0], "Dana", "lobby")
    _, _, body = await get(metrics_server.metrics[0], "/metrics")
    families = {f.name: f for f in parser.text_string_to_metric_families(body.decode())}
    assert families["trio_chat_commit_seconds"].type == "histogram"
    assert families["trio_chat_messages_committed"].type == "counter"


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (b"GET /nowhere HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"nonsense\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX: " + b"x" * 10000 + b"\r\n\r\n", 431),
    ],
    ids=["404", "405", "400", "431"],
)
async def test_http_edges(metrics_server: Ports, request_: bytes, status: int) -> None:
    got, headers, _ = await http(metrics_server.metrics[0], request_)
    assert got == status and headers["connection"] == "close"


async def test_head_has_no_body(metrics_server: Ports) -> None:
    status, headers, body = await http(metrics_server.metrics[0], b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert status == 200 and int(headers["content-length"]) > 0 and body == b""


async def test_a_silent_client_is_dropped(metrics_server: Ports, autojump_clock: Any) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", metrics_server.metrics[0])
    with trio.fail_after(60):
        assert await stream.receive_some(100) == b""  # closed after REQUEST_TIMEOUT


def _fake_server(page: Any, commit_error: str | None = None) -> Any:
    return SimpleNamespace(
        store=SimpleNamespace(page=page), stats=SimpleNamespace(commit_error=commit_error)
    )


async def test_health_reports_a_failing_store(nursery: trio.Nursery) -> None:
    async def unavailable(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("disk I/O error")

    endpoint = Endpoint(_fake_server(unavailable), nursery)
    assert endpoint.health is not None
    problem = await endpoint.health()
    assert problem is not None and "disk I/O error" in problem


async def test_health_reports_a_failed_commit(nursery: trio.Nursery) -> None:
    async def fine(*args: Any, **kwargs: Any) -> None:
        return None

    endpoint = Endpoint(_fake_server(fine, "database or disk is full"), nursery)
    assert await endpoint.health() == "the last commit failed: database or disk is full"


async def test_health_times_out_on_a_stuck_store(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    async def stuck(*args: Any, **kwargs: Any) -> None:
        await trio.sleep_forever()

    endpoint = Endpoint(_fake_server(stuck), nursery)
    assert await endpoint.health() == "the store did not answer within 2 s"
    nursery.cancel_scope.cancel()


async def test_histogram_buckets_are_inclusive() -> None:
    h = Histogram((1, 2))
    for x in (0.5, 1, 1.5, 2, 3):
        h.observe(x)
    assert h.counts == [2, 2, 1] and h.count == 5 and h.sum == 8.0


async def test_render_walks_sessions_at_scrape_time() -> None:
    outbox = SimpleNamespace(nbytes=10)
    sessions = [SimpleNamespace(door="irc", outbox=outbox), SimpleNamespace(door="json",
                outbox=SimpleNamespace(nbytes=30))]  # fmt: skip
    from trio_chat.metrics import Stats

    server: Any = SimpleNamespace(
        stats=Stats(),
        hub=SimpleNamespace(users={}, rooms={}, delivered=7),
        store=SimpleNamespace(pending=0, errors=2),
        chat=SimpleNamespace(guard=SimpleNamespace(failures=0, refusals=1)),
        sessions=sessions,
    )
    samples, _ = parse(render(server).decode())
    assert value(samples, "trio_chat_connections", door="irc") == 1
    assert value(samples, "trio_chat_outbox_bytes") == 40
    assert value(samples, "trio_chat_outbox_bytes_max") == 30
    assert value(samples, "trio_chat_store_errors_total") == 2
    assert value(samples, "trio_chat_fanout_deliveries_total") == 7
