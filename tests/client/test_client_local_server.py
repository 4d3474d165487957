"""`--serve`: the client starts a server beside itself and stops it with SIGTERM."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from textual_client.local_server import LocalServer, LocalServerError


def test_local_server_serves_and_stops_cleanly(tmp_path: Path) -> None:
    db, log = tmp_path / "chat.db", tmp_path / "chat.log"
    with LocalServer(0, db, log) as server:
        assert server.port > 0
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b'{"type":"hello","name":"Souvik"}\n')
            assert json.loads(sock.makefile().readline())["type"] == "welcome"
        proc = server.proc
    assert proc is not None and proc.returncode == 0  # SIGTERM: an orderly stop
    assert "stopped" in log.read_text()


def test_local_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    with pytest.raises(LocalServerError, match="exited"):
        LocalServer(0, tmp_path / "missing" / "chat.db", tmp_path / "chat.log").__enter__()
