"""TLS (`--certfile`/`--keyfile`): TLS 1.2+ through trio.SSLStream, with a certificate made here.

The certificate comes from `trustme` when it is installed, else from the
`openssl` command line; with neither, these tests are skipped.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from chat_client import ChatClient, Closed
from harness import RunningServer, StartServer

pytestmark = pytest.mark.trio


@dataclass(frozen=True)
class Cert:
    certfile: Path  # also the CA file the clients trust: it is self-signed
    keyfile: Path
    cafile: Path


def _make_cert(directory: Path) -> Cert:
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    try:
        import trustme
    except ImportError:
        trustme = None  # type: ignore[assignment]
    if trustme is not None:
        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1", "localhost")
        issued.cert_chain_pems[0].write_to_path(str(certfile))
        issued.private_key_pem.write_to_path(str(keyfile))
        cafile = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(cafile))
        return Cert(certfile, keyfile, cafile)
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs trustme or the openssl command line to make a certificate")
    subprocess.run(
        [
            openssl, "req", "-x509", "-nodes", "-days", "2",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(keyfile), "-out", str(certfile),
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return Cert(certfile, keyfile, certfile)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    return _make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def tls_server(start_server: StartServer, cert: Cert) -> RunningServer:
    return await start_server(certfile=cert.certfile, keyfile=cert.keyfile)


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A failed handshake is the client's problem: the server logs no error for it."""
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def client_context(cert: Cert) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert.cafile))


async def tls_connect(port: int, context: ssl.SSLContext) -> ChatClient:
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    stream = trio.SSLStream(tcp, context, server_hostname="127.0.0.1")
    with trio.fail_after(5):
        await stream.do_handshake()
    return ChatClient(stream)


async def tls_login(port: int, context: ssl.SSLContext, name: str, *rooms: str) -> ChatClient:
    client = await tls_connect(port, context)
    assert (await client.hello(name))["type"] == "welcome"
    for room in rooms:
        await client.join(room)
    return client


async def wait_closed(stream: trio.abc.ReceiveStream, timeout: float) -> bytes:
    """Read until the peer closes (EOF or reset); what came before the close."""
    got = b""
    with trio.fail_after(timeout):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return got
            if not chunk:
                return got
            got += chunk


# ------------------------------------------------------------------ a TLS conversation


async def test_tls_clients_chat(tls_server: RunningServer, cert: Cert) -> None:
    context = client_context(cert)
    a = await tls_login(tls_server.port, context, "Souvik", "lobby")
    b = await tls_login(tls_server.port, context, "Ritam", "lobby")
    assert isinstance(a.stream, trio.SSLStream)
    version = a.stream.version()
    assert version in ("TLSv1.2", "TLSv1.3")
    sent = await a.say("lobby", "over TLS")
    got = await b.expect("message", text="over TLS")
    assert got["id"] == sent["id"] and got["from"] == "Souvik"
    await a.send(type="quit")
    assert (await a.expect("bye"))["reason"] == "quit"
    assert await a.closed()
    await b.aclose()


async def test_plain_tcp_clients_are_not_served_on_the_tls_port(
    tls_server: RunningServer, cert: Cert
) -> None:
    context = client_context(cert)
    plain = await trio.open_tcp_stream("127.0.0.1", tls_server.port)
    await plain.send_all(b'{"type":"hello","name":"Plain"}\n')
    got = await wait_closed(plain, timeout=3)  # at once, not after the handshake timeout
    assert b"welcome" not in got
    # the plaintext client cost only its own connection
    c = await tls_login(tls_server.port, context, "Secure")
    await c.send(type="ping", id=1)
    assert await c.expect("pong") == {"type": "pong", "re": 1}


async def test_a_client_that_does_not_trust_the_cert_costs_only_itself(
    tls_server: RunningServer, cert: Cert
) -> None:
    with pytest.raises(trio.BrokenResourceError):
        await tls_connect(tls_server.port, ssl.create_default_context())  # system CAs only
    c = await tls_login(tls_server.port, client_context(cert), "After")
    await c.send(type="ping")
    assert (await c.expect("pong"))["type"] == "pong"


# ------------------------------------------------------------------ versions


def versioned_context(cert: Cert, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = client_context(cert)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that this client can offer it at all
    return context


OLD = [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1]


@pytest.mark.parametrize("version", OLD, ids=lambda v: v.name)
async def test_tls_older_than_1_2_is_refused(
    tls_server: RunningServer,
    cert: Cert,
    version: ssl.TLSVersion,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trio_chat")
    context = versioned_context(cert, version)
    with pytest.raises(trio.BrokenResourceError) as info:
        await tls_connect(tls_server.port, context)
    cause = info.value.__cause__
    assert isinstance(cause, ssl.SSLError)
    # refused by the server (a protocol-version alert), not by this client's own OpenSSL
    assert "NO_PROTOCOLS_AVAILABLE" not in str(cause).upper(), cause
    await trio.sleep(0.05)  # the server's side of the story reaches its log
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "UNSUPPORTED_PROTOCOL" in logged.upper(), logged
    c = await tls_login(tls_server.port, client_context(cert), "Modern")
    await c.aclose()


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=lambda v: v.name
)
async def test_tls_1_2_and_1_3_are_served(
    tls_server: RunningServer, cert: Cert, version: ssl.TLSVersion
) -> None:
    c = await tls_connect(tls_server.port, versioned_context(cert, version))
    assert isinstance(c.stream, trio.SSLStream)
    assert c.stream.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
    assert (await c.hello("Versioned"))["type"] == "welcome"


# ------------------------------------------------------------------ the handshake timeout


async def test_no_tls_handshake_is_closed_after_the_handshake_timeout(
    start_server: StartServer, cert: Cert
) -> None:
    server = await start_server(certfile=cert.certfile, keyfile=cert.keyfile, handshake_timeout=0.5)
    start = trio.current_time()
    silent = await trio.open_tcp_stream("127.0.0.1", server.port)
    await wait_closed(silent, timeout=3)
    elapsed = trio.current_time() - start
    assert 0.45 <= elapsed < 1.5, elapsed
    c = await tls_login(server.port, client_context(cert), "Prompt")  # the server is fine
    await c.aclose()


async def test_the_tls_handshake_counts_against_the_handshake_timeout(
    start_server: StartServer, cert: Cert
) -> None:
    """A slow TLS handshake and no hello: closed 0.5 s after connecting, not 0.5 s after TLS."""
    server = await start_server(certfile=cert.certfile, keyfile=cert.keyfile, handshake_timeout=0.5)
    start = trio.current_time()
    tcp = await trio.open_tcp_stream("127.0.0.1", server.port)
    await trio.sleep(0.3)  # dawdle before the TLS handshake
    stream = trio.SSLStream(tcp, client_context(cert), server_hostname="127.0.0.1")
    with trio.fail_after(2):
        await stream.do_handshake()
    c = ChatClient(stream)
    with pytest.raises(Closed):
        frame = await c.recv(timeout=3)
        assert frame["type"] == "bye" and frame["reason"] == "timeout"
        await c.recv(timeout=3)
    elapsed = trio.current_time() - start
    assert elapsed >= 0.45, elapsed
    assert elapsed < 0.5 + 0.2, f"closed {elapsed:.2f} s after connecting, deadline was 0.5 s"
