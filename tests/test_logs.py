"""The log: JSON lines with their connection, one line per open and close, no secrets in it."""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from chat_client import login

from trio_chat import logs

pytestmark = pytest.mark.trio

SERVER = [sys.executable, "-m", "trio_chat"]
PASSWORD = "pw-Zebra-Quartz-1234"
TEXT = "text-Marmalade-Obelisk"


async def run_server(tmp_path: Path, *flags: str) -> list[str]:
    """Start a server, log in with a password, say something, quit, stop: its log lines."""
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = await trio.lowlevel.open_process(
            [*SERVER, "--port", "0", "--db", str(tmp_path / "c.db"), "--flood-rate", "0", *flags],
            stdout=subprocess.DEVNULL,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )
    try:
        with trio.fail_after(20):
            while not (found := re.search(r"listening on \S+:(\d+)", log.read_text())):
                assert proc.poll() is None, log.read_text()
                await trio.sleep(0.02)
        port = int(found.group(1))
        alice = await login(port, "Alice", "lobby", password=PASSWORD)
        await alice.say("lobby", TEXT)
        await alice.send(type="quit")
        assert await alice.closed()
        wrong = await login(port, "Bob", "lobby")
        await wrong.send(type="hello", name="Alice", password=PASSWORD + "x")
        await wrong.aclose()
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            assert await proc.wait() == 0
    return log.read_text().splitlines()


async def test_json_lines(tmp_path: Path) -> None:
    lines = await run_server(tmp_path, "--log-format", "json", "--log-level", "debug")
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"ts", "level", "event", "logger", "msg"} <= record.keys()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])
    events = [r["event"] for r in records]
    assert events.count("open") == 2 and events.count("close") == 2
    welcome = next(r for r in records if r["event"] == "welcome")
    assert welcome["user"] == "Alice" and welcome["peer"].startswith("127.0.0.1:")
    closes = [r for r in records if r["event"] == "close"]
    assert closes[0]["reason"] == "quit" and closes[0]["user"] == "Alice"
    assert closes[0]["door"] == "json" and closes[0]["seconds"] >= 0
    assert closes[1]["reason"] == "gone" and closes[1]["user"] == "Bob"
    assert "listening" in events and "stopped" in events
    everything = "\n".join(lines)
    assert PASSWORD not in everything and TEXT not in everything


async def test_text_lines_hold_no_secrets_either(tmp_path: Path) -> None:
    lines = await run_server(tmp_path, "--log-level", "debug")
    everything = "\n".join(lines)
    assert PASSWORD not in everything and TEXT not in everything
    assert any("connection closed (quit)" in line for line in lines)
    assert not any(line.startswith("{") for line in lines)


async def test_info_is_not_per_message(tmp_path: Path) -> None:
    lines = await run_server(tmp_path)
    assert not any("message" in line.lower() and "Alice" in line for line in lines)


def _record(msg: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("trio_chat.x", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


async def test_the_formatter_names_the_connection() -> None:
    formatter = logs.JsonFormatter()
    session = SimpleNamespace(peer="10.0.0.1:5000", member=None)
    token = logs.CONNECTION.set(session)
    try:
        line = json.loads(formatter.format(_record("%s: slow consumer, closing", "10.0.0.1:5000")))
        assert line["peer"] == "10.0.0.1:5000" and "user" not in line
        assert line["event"] == "slow_consumer"
        session.member = SimpleNamespace(name=SimpleNamespace(spelling="Zoë"))
        line = json.loads(formatter.format(_record("x", event="kick", room="lobby")))
        assert (line["user"], line["event"], line["room"]) == ("Zoë", "kick", "lobby")
    finally:
        logs.CONNECTION.reset(token)
    assert "peer" not in json.loads(formatter.format(_record("%s received", "SIGHUP")))


async def test_configure_twice_replaces_its_handler() -> None:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    try:
        logs.configure("warning", "json", stream)
        logs.configure("info", "json", stream)
        assert sum(isinstance(h, logs._Handler) for h in root.handlers) == 1
        logging.getLogger("trio_chat.test").info("hello %s", "there")
        assert json.loads(stream.getvalue())["msg"] == "hello there"
    finally:
        for handler in [h for h in root.handlers if isinstance(h, logs._Handler)]:
            root.removeHandler(handler)
        root.setLevel(level)
