"""The client over TLS (`--tls --cafile`) against a real server serving a certificate."""

from __future__ import annotations

import argparse
import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from client_fakes import RealServer, until

from textual_client import connection as c
from textual_client.__main__ import build_parser, make_ssl_context, probe
from trio_chat import protocol as p


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RealServer, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    server = RealServer(
        tmp_path / "chat.db", flags=("--certfile", str(certfile), "--keyfile", str(keyfile))
    )
    server.start()
    try:
        yield server, cafile
    finally:
        server.stop()


def tls_args(server: RealServer, cafile: Path | None) -> argparse.Namespace:
    argv = ["--port", str(server.port), "--tls"]
    return build_parser().parse_args([*argv, "--cafile", str(cafile)] if cafile else argv)


@pytest.mark.asyncio
async def test_the_client_chats_over_tls(tls_server: tuple[RealServer, Path]) -> None:
    server, cafile = tls_server
    context = make_ssl_context(tls_args(server, cafile))
    assert context is not None
    await probe("127.0.0.1", server.port, context)
    events: list[object] = []
    client = c.ChatClient("127.0.0.1", server.port, events.append, ssl_context=context)
    welcome = await client.login("Souvik")
    assert welcome.name == "Souvik"
    runner = asyncio.create_task(client.run())
    try:
        client.join("lobby")
        await until(lambda: any(isinstance(e, p.Joined) for e in events))
        client.say("over TLS", room="lobby")
        await until(lambda: any(isinstance(e, c.Sent) for e in events))
        sent = next(e for e in events if isinstance(e, c.Sent))
        assert sent.message.text == "over TLS" and sent.message.room == "lobby"
    finally:
        await client.quit()
        await asyncio.wait_for(runner, 10)


@pytest.mark.asyncio
async def test_a_server_certificate_nobody_vouches_for_is_refused(
    tls_server: tuple[RealServer, Path],
) -> None:
    server, _ = tls_server
    context = make_ssl_context(tls_args(server, None))  # the system's CAs: not ours
    assert context is not None
    with pytest.raises(ssl.SSLCertVerificationError):
        await probe("127.0.0.1", server.port, context)
