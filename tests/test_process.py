"""The server as a process: kill -9 under load, SIGTERM/SIGINT, the command line."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from chat_client import ChatClient, Closed, login

pytestmark = pytest.mark.trio

SERVER = [sys.executable, "-m", "trio_chat"]


class ServerProcess:
    """`python -m trio_chat` on 127.0.0.1, port 0, its log in a file beside the database."""

    def __init__(self, db: Path, *flags: str) -> None:
        self.db = db
        self.flags = flags
        self.log = db.with_suffix(".log")
        self.proc: trio.Process | None = None
        self.port = 0

    async def start(self) -> ServerProcess:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = await trio.lowlevel.open_process(
                [*SERVER, "--port", "0", "--db", str(self.db), "--flood-rate", "0", *self.flags],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        with trio.fail_after(20):
            while True:
                found = re.search(rb"listening on \S+:(\d+)", self.log.read_bytes()[offset:])
                if found:
                    self.port = int(found.group(1))
                    return self
                assert self.proc.poll() is None, self.log.read_text()
                await trio.sleep(0.02)

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        with trio.move_on_after(10):
            return await self.proc.wait()
        raise AssertionError(f"the server did not stop: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


async def all_history(port: int, room: str) -> list[dict[str, Any]]:
    """Every message of a room, paging back from the newest."""
    reader = await login(port, "Auditor")
    joined = await reader.join(room, limit=500)
    messages: list[dict[str, Any]] = joined["history"]
    more = joined["more"]
    while more:
        await reader.send(type="history", room=room, before=messages[0]["id"], limit=500)
        page = await reader.expect("history")
        messages, more = page["messages"] + messages, page["more"]
    await reader.aclose()
    return messages


async def send_until_closed(client: ChatClient, prefix: str) -> None:
    try:
        for n in range(1_000_000):
            await client.send(type="say", room="lobby", text=f"{prefix}-{n}")
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def record_until_closed(
    client: ChatClient, seen: dict[int, str], enough: trio.Event, target: int
) -> None:
    """Every message the client receives, in increasing id order, until the server dies."""
    last = 0
    try:
        while True:
            frame = await client.recv(timeout=10)
            if frame["type"] == "message":
                assert frame["id"] > last
                last = frame["id"]
                seen[frame["id"]] = frame["text"]
                if len(seen) >= target:
                    enough.set()
    except Closed:
        pass


async def test_kill_9_under_load_loses_nothing_anyone_saw(tmp_path: Path) -> None:
    """Guarantee 3: rounds of kill -9 during load from several senders, then a restart."""
    db = tmp_path / "chat.db"
    seen: dict[int, str] = {}
    for round_ in range(3):
        server = await ServerProcess(db).start()
        try:
            clients = [await login(server.port, f"c{round_}x{i}", "lobby") for i in range(4)]
            enough = trio.Event()
            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    for i, client in enumerate(clients):
                        nursery.start_soon(send_until_closed, client, f"{round_}-{i}")
                        target = len(seen) + 400
                        nursery.start_soon(record_until_closed, client, seen, enough, target)
                    await enough.wait()
                    server.kill()  # SIGKILL, mid-load
        finally:
            server.kill()
        with sqlite3.connect(db) as check:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    server = await ServerProcess(db).start()
    try:
        history: dict[int, str] = {
            m["id"]: m["text"] for m in await all_history(server.port, "lobby")
        }
    finally:
        server.kill()
    missing = {i: t for i, t in seen.items() if history.get(i) != t}
    assert not missing, f"{len(missing)} seen messages are not in the history"
    assert list(history) == sorted(history)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_commits_says_bye_and_exits_0(tmp_path: Path, signum: int) -> None:
    server = await ServerProcess(tmp_path / "chat.db").start()
    try:
        a = await login(server.port, "Souvik", "lobby")
        b = await login(server.port, "Ritam", "lobby")
        for n in range(200):
            await a.send(type="say", room="lobby", text=f"t{n}")
        await a.expect("message", text="t0")
        assert await server.stop(signum) == 0
        for client in (a, b):
            assert await client.closed()
            assert client.seen[-1]["type"] == "bye" and client.seen[-1]["reason"] == "shutdown"
    finally:
        server.kill()
    delivered = [f["text"] for f in b.seen if f["type"] == "message"]
    with sqlite3.connect(tmp_path / "chat.db") as db:
        stored = [row[0] for row in db.execute("SELECT text FROM messages ORDER BY id")]
    assert stored == delivered  # everything accepted was committed and delivered before bye
    assert delivered == [f"t{n}" for n in range(len(delivered))]
    assert "Traceback" not in server.log.read_text()


async def run_cli(*args: str, cwd: Path) -> tuple[int, str]:
    """The server's exit status and standard error, for a run that must end by itself."""
    with trio.fail_after(30):
        result = await trio.run_process(
            [*SERVER, *args], capture_stdout=True, capture_stderr=True, cwd=cwd, check=False
        )
    return result.returncode, result.stderr.decode()


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "http"],
        ["--port", "70000"],
        ["--idle-timeout", "-1"],
        ["--flood-rate", "nan"],
        ["--queue-limit", "0"],
        ["--max-conns", "many"],
        ["--certfile", "missing.pem"],
        ["--certfile", "missing.pem", "--keyfile", "missing.key"],
        ["--no-such-flag"],
    ],
)
async def test_a_bad_flag_is_a_short_error(tmp_path: Path, args: list[str]) -> None:
    status, stderr = await run_cli(*args, cwd=tmp_path)
    assert status != 0
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("trio-chat: error:")


@pytest.mark.parametrize("kind", ["missing-dir", "directory", "not-a-database", "newer-schema"])
async def test_an_unusable_db_is_one_line_and_exit_2(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "chat.db"
    if kind == "missing-dir":
        path = tmp_path / "nowhere" / "chat.db"
    elif kind == "directory":
        path.mkdir()
    elif kind == "not-a-database":
        path.write_bytes(b"this is not SQLite" * 100)
    else:
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA user_version = 99")
    status, stderr = await run_cli("--port", "0", "--db", str(path), cwd=tmp_path)
    assert status == 2
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("trio-chat:")]
    assert len(lines) == 1 and str(path.name) in lines[0]


async def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, stderr = await run_cli(
            "--port", str(port), "--db", str(tmp_path / "c.db"), cwd=tmp_path
        )
    assert status == 2
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("trio-chat:")]
    # one plain line naming the port and the cause, not "Exceptions from Trio nursery"
    assert "cannot listen on" in line and str(port) in line and "in use" in line
    assert "nursery" not in line and "sub-exception" not in line


async def test_the_console_script_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "trio-chat"
    if not script.exists():
        pytest.skip("the package is not installed with its scripts in this interpreter")
    result = await trio.run_process([str(script), "--version"], capture_stdout=True, check=False)
    assert result.returncode == 0 and result.stdout.startswith(b"trio-chat ")
