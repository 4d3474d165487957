"""`--serve`: the client starts a server beside itself and stops it with SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from textual_client import __main__ as client_main
from textual_client import settings
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


def test_local_server_has_a_session_of_its_own(tmp_path: Path) -> None:
    """The terminal's Ctrl+C and hang-up reach the client, which stops the server in order."""
    with LocalServer(0, tmp_path / "chat.db", tmp_path / "chat.log") as server:
        assert server.proc is not None
        assert os.getsid(server.proc.pid) != os.getsid(0)


def test_local_server_interrupted_while_starting_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LocalServer(0, tmp_path / "chat.db", tmp_path / "chat.log")

    real_sleep, calls = time.sleep, []

    def interrupted(seconds: float) -> None:  # Ctrl+C in the first wait for "listening"
        calls.append(seconds)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", interrupted)  # local_server's wait loop
    try:
        with pytest.raises(KeyboardInterrupt):
            server.__enter__()
        assert server.proc is not None and server.proc.poll() is not None
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def test_client_crash_keeps_the_messages_and_stops_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "chat.db"
    servers: list[int] = []

    def crashing_run(args: argparse.Namespace) -> int:
        servers.append(args.port)
        with socket.create_connection(("127.0.0.1", args.port), timeout=5) as sock:
            lines = sock.makefile()
            for frame in (
                {"type": "hello", "name": "Souvik"},
                {"type": "join", "room": "lobby"},
                {"type": "say", "room": "lobby", "text": "kept", "id": 1},
            ):
                sock.sendall(json.dumps(frame).encode() + b"\n")
            while json.loads(lines.readline()).get("type") != "message":
                pass
        raise RuntimeError("the client crashed")

    monkeypatch.setattr(client_main, "run", crashing_run)
    config = tmp_path / "client.toml"  # not the user's: main() writes it on a first run
    monkeypatch.setattr(settings, "default_config_path", lambda: config)
    with pytest.raises(RuntimeError):
        client_main.main(["--serve", "--port", "0", "--db", str(db)])
    assert servers and "stopped" in db.with_suffix(".log").read_text()
    with LocalServer(0, db, tmp_path / "again.log") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with sock, sock.makefile() as lines:
            sock.sendall(b'{"type":"hello","name":"Ritam"}\n{"type":"join","room":"lobby"}\n')
            while (frame := json.loads(lines.readline()))["type"] != "joined":
                pass
            assert [m["text"] for m in frame["history"]] == ["kept"]


SIGNALLED_CLIENT = """
import sys, time
from pathlib import Path
from textual_client.local_server import LocalServer
with LocalServer(0, Path(sys.argv[1]), Path(sys.argv[2])) as server, server.stopped_on_signals():
    print(server.proc.pid, flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_client_killed_by_a_signal_stops_its_server_in_order(tmp_path: Path, sig: int) -> None:
    log = tmp_path / "chat.log"
    client = subprocess.Popen(
        [sys.executable, "-c", SIGNALLED_CLIENT, str(tmp_path / "chat.db"), str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None
        server_pid = int(client.stdout.readline())
        client.send_signal(sig)
        assert client.wait(20) == -sig
        assert "stopped" in log.read_text()
        with pytest.raises(ProcessLookupError):
            os.kill(server_pid, 0)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
