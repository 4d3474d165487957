"""The real-client harness (irc_clients) against miniircd, a server we did not write.

miniircd is a benchmark-only dependency, so outside `nox -s bench`'s set this module skips.
miniircd has no SASL: a small scripted peer checks the clients' SASL PLAIN settings.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from irc_clients import Irssi, Weechat, require_clients

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("miniircd") is None,
        reason="miniircd (the bench dependency group) is not installed",
    ),
    pytest.mark.timeout(30),
]

HOST = "127.0.0.1"


@pytest.fixture
def clients() -> None:
    """Skip (or fail under CI=true) when irssi, weechat-headless or tmux is missing."""
    require_clients()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> bool:
    """Whether `proc` accepts connections on `port` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1.0).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture
def miniircd(tmp_path: Path) -> Iterator[int]:
    """miniircd on a free port of 127.0.0.1 (it has no port 0): the port."""
    for attempt in range(3):
        port = free_port()
        command = [sys.executable, "-u", "-m", "miniircd", "--listen", HOST, "--ports", str(port)]
        if os.geteuid() == 0:
            command += ["--setuid", "root"]  # else it refuses to run as root
        log = tmp_path / f"miniircd-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*command, "--debug"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if listening(port, proc):
            break
        proc.kill()
        proc.wait()
    else:
        raise AssertionError(f"miniircd did not start:\n{log.read_text()}")
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_require_clients_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="irssi weechat-headless tmux"):
        require_clients()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"irssi weechat-headless tmux.*\.ci/run"):
        require_clients()


def test_irssi_and_weechat_see_each_other(clients: None, miniircd: int, tmp_path: Path) -> None:
    with (
        Irssi(HOST, miniircd, "alice", home=tmp_path / "irssi") as irssi,
        Weechat(HOST, miniircd, "bob", home=tmp_path / "weechat") as weechat,
    ):
        irssi.join("#lobby")
        weechat.join("#lobby")
        irssi.wait_for(r"bob \[[^]]*\] has joined #lobby")

        irssi.say("hello; from irssi ✓;")
        weechat.wait_for(weechat.message_pattern("alice", "hello; from irssi ✓;"), log="#lobby")
        weechat.say("hi from weechat, é 日本", buffer="#lobby")
        irssi.wait_for(irssi.message_pattern("bob", "hi from weechat, é 日本"))

        # each shows its own line too, and irssi's log has what scrolled or not
        irssi.wait_for(irssi.message_pattern("alice", "hello; from irssi ✓;"))
        weechat.wait_for(weechat.message_pattern("bob", "hi from weechat, é 日本"), log="#lobby")
        irssi.wait_for(irssi.message_pattern("bob", "hi from weechat, é 日本"), log="#lobby")

        # a line that starts with / is said, not run
        weechat.say("/not a command", buffer="#lobby")
        irssi.say("/also not one")
        irssi.wait_for(irssi.message_pattern("bob", "/not a command"))
        weechat.wait_for(weechat.message_pattern("alice", "/also not one"), log="#lobby")

        # a private message opens a query on both sides
        irssi.command("/msg bob psst")
        weechat.wait_for(weechat.message_pattern("alice", "psst"), log="alice")


def test_a_wait_that_times_out_shows_the_text(clients: None, miniircd: int) -> None:
    with Irssi(HOST, miniircd, "carol") as irssi, Weechat(HOST, miniircd, "dave") as weechat:
        irssi.wait_registered()
        weechat.wait_registered()
        with pytest.raises(AssertionError, match=r"(?s)no 'never said'.*Irssi v"):
            irssi.wait_for("never said", timeout=0.2)
        with pytest.raises(AssertionError, match=r"(?s)no 'never said'.*connected to"):
            weechat.wait_for("never said", timeout=0.2)
    assert not irssi._alive()
    assert weechat.proc.returncode is not None


@pytest.mark.trio
async def test_async_waits_inside_trio(clients: None, miniircd: int) -> None:
    with Irssi(HOST, miniircd, "erin") as irssi, Weechat(HOST, miniircd, "frank") as weechat:
        with pytest.raises(RuntimeError, match="wait_for_async"):
            irssi.wait_for("anything")
        await irssi.join_async("#async")
        await weechat.join_async("#async")
        weechat.say("over trio", buffer="#async")
        await irssi.wait_for_async(irssi.message_pattern("frank", "over trio"))
        await weechat.wait_for_async(weechat.message_pattern("frank", "over trio"), log="#async")
        await trio.lowlevel.checkpoint()


class SaslPeer(socketserver.ThreadingTCPServer):
    """Just enough of a server for registration with SASL PLAIN: records what clients send."""

    daemon_threads = True
    allow_reuse_address = True
    CAPS = "sasl=PLAIN server-time message-tags echo-message batch draft/chathistory multi-prefix"

    def __init__(self) -> None:
        super().__init__((HOST, 0), SaslHandler)
        self.lines: list[str] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def seen(self) -> list[str]:
        with self.lock:
            return list(self.lines)


class SaslHandler(socketserver.StreamRequestHandler):
    server: SaslPeer

    def send(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        nick, user, capping = "*", False, False
        for raw in self.rfile:
            line = raw.decode(errors="replace").rstrip("\r\n")
            with self.server.lock:
                self.server.lines.append(line)
            verb, _, rest = line.partition(" ")
            verb = verb.upper()
            if verb == "CAP" and rest.startswith("LS"):
                capping = True
                self.send(f":peer CAP * LS :{self.server.CAPS}")
            elif verb == "CAP" and rest.startswith("REQ"):
                self.send(f":peer CAP * ACK :{rest.partition(':')[2]}")
            elif verb == "CAP" and rest.startswith("END"):
                capping = False
            elif verb == "AUTHENTICATE" and rest == "PLAIN":
                self.send("AUTHENTICATE +")
            elif verb == "AUTHENTICATE":
                _authzid, authcid, password = base64.b64decode(rest).split(b"\0")
                ok = authcid == b"acct" and password == b"s3cret ok"
                self.send(f":peer {'900' if ok else '904'} {nick} {nick}!u@h acct :SASL result")
                self.send(f":peer {'903' if ok else '904'} {nick} :SASL done")
            elif verb == "NICK":
                nick = rest
            elif verb == "USER":
                user = True
            elif verb == "PING":
                self.send(f":peer PONG peer {rest}")
            elif verb == "QUIT":
                return
            if nick != "*" and user and not capping:
                user = False
                self.send(f":peer 001 {nick} :Welcome to the peer")
                self.send(f":peer 422 {nick} :No MOTD")


def test_sasl_plain(clients: None, tmp_path: Path) -> None:
    peer = SaslPeer()
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    try:
        sasl = ("acct", "s3cret ok")
        with Irssi(HOST, peer.port, "gina", sasl=sasl) as irssi:
            irssi.wait_registered()
            irssi.wait_for("SASL authentication succeeded")
        with Weechat(HOST, peer.port, "hank", sasl=sasl) as weechat:
            weechat.wait_registered()
            weechat.wait_for("SASL result", log="server")
    finally:
        peer.shutdown()
        peer.server_close()
    lines = peer.seen()
    payload = base64.b64encode(b"acct\0acct\0s3cret ok").decode()
    assert lines.count("AUTHENTICATE PLAIN") == 2, lines
    assert lines.count(f"AUTHENTICATE {payload}") == 2, lines
    requested = [line for line in lines if line.startswith("CAP REQ")]
    assert len(requested) == 2 and all("sasl" in line for line in requested), requested
