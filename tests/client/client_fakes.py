"""Test doubles and fixtures for the Textual client's tests: a fake server and a real one."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

import pytest
import pytest_asyncio

from trio_chat import protocol as p

_F = TypeVar("_F", bound=p.ClientFrame)


@dataclass
class FakePeer:
    """One client connection as the fake server sees it: read its frames, write ours."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: p.Connection[p.ClientFrame] = field(default_factory=lambda: p.Connection(p.Role.SERVER))

    @overload
    async def expect(self, kind: type[_F], wait: float = 5.0) -> _F: ...
    @overload
    async def expect(self, kind: None = None, wait: float = 5.0) -> p.ClientFrame: ...
    async def expect(self, kind: type[Any] | None = None, wait: float = 5.0) -> p.ClientFrame:
        """The client's next frame (of type `kind`, skipping pings and pongs otherwise)."""
        async with asyncio.timeout(wait):
            while True:
                event = self.conn.next_event()
                if event is p.NEED_DATA:
                    data = await self.reader.read(65536)
                    if not data:
                        raise EOFError("client closed")
                    self.conn.receive_data(data)
                    continue
                assert not isinstance(event, p.NeedData)
                if kind is None or isinstance(event, kind):
                    return event
                if not isinstance(event, p.Ping | p.Pong):
                    raise AssertionError(f"expected {kind.__name__}, got {event!r}")

    def send(self, *frames: p.Frame) -> None:
        for frame in frames:
            self.writer.write(p.encode(frame))

    def close(self) -> None:
        self.writer.close()


class FakeServer:
    """A loopback server whose connections the test script drives one frame at a time."""

    def __init__(self) -> None:
        self.peers: asyncio.Queue[FakePeer] = asyncio.Queue()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self.peers.put(FakePeer(reader, writer))

        self._server = await asyncio.start_server(handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def accept(self, wait: float = 5.0) -> FakePeer:
        async with asyncio.timeout(wait):
            return await self.peers.get()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


def welcome(name: str, re: p.RequestId | None = None) -> p.Welcome:
    return p.Welcome(name=name, account=False, server="fake/0", re=re)


def message(
    id: int, sender: str, text: str, room: str | None = "lobby", re: p.RequestId | None = None
) -> p.Message:
    minute, second = divmod(id, 60)
    return p.Message(
        id=id,
        sender=sender,
        text=text,
        ts=f"2026-11-24T21:{minute % 60:02d}:{second:02d}.000Z",
        room=room,
        re=re,
    )


# ----------------------------------------------------------------------------- real server

LISTENING = re.compile(rb"listening on (\S+):(\d+)")


@dataclass
class RealServer:
    """A `python -m trio_chat` subprocess on loopback, restartable on the same database.

    Its log goes to a file (a pipe nobody reads would fill up and stall the server).
    """

    db: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    flags: tuple[str, ...] = ()  # more of the server's flags (TLS, say)

    @property
    def log_path(self) -> Path:
        return self.db.with_name(f"server-{self.starts}.log")

    def start(self, wait: float = 20.0) -> None:
        self.starts += 1
        args = [sys.executable, "-m", "trio_chat", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--db", str(self.db), "--flood-rate", "0", *self.flags]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(args, stderr=log, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log_path.read_bytes())
            if found:
                self.port = int(found.group(2))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the server did not start: {self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- helpers


async def until(predicate: Callable[[], object], wait: float = 10.0, step: float = 0.05) -> None:
    """Wait (letting the app run) until `predicate()` is true; fail after `wait` seconds."""
    deadline = asyncio.get_running_loop().time() + wait
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', '?')}")
        await asyncio.sleep(step)


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel a task and wait for it: an exception it raised (but not the cancel) fails the test."""
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Peer:
    """Another user, driven by the client's connection layer without a UI (a 'bot')."""

    def __init__(self, port: int, name: str, rooms: tuple[str, ...] = ("lobby",)) -> None:
        from textual_client.connection import ChatClient

        self.events: list[object] = []
        self.client = ChatClient(
            "127.0.0.1", port, self.events.append, backoff_min=0.05, backoff_max=0.2
        )
        self.name = name
        for room in rooms:
            self.client.rooms[p.name_key(room)] = room
        self.task: asyncio.Task[None] | None = None

    async def start(self, password: str | None = None) -> Peer:
        await self.client.login(self.name, password)
        self.task = asyncio.create_task(self.client.run())
        await until(lambda: all(k in self.joined() for k in self.client.rooms))
        return self

    def joined(self) -> set[str]:
        return {p.name_key(e.room) for e in self.events if isinstance(e, p.Joined)}

    def texts(self) -> list[str]:
        out: list[str] = []
        for e in self.events:
            if isinstance(e, p.Joined):
                out += [m.text for m in e.history if isinstance(m, p.Message)]
            elif isinstance(e, p.Message):
                out.append(e.text)
        return out

    async def say(self, text: str, room: str = "lobby") -> None:
        from textual_client.connection import Sent

        nonce = self.client.say(text, room=room)
        await until(lambda: any(isinstance(e, Sent) and e.nonce == nonce for e in self.events))

    async def stop(self) -> None:
        await self.client.quit(grace=0.5)
        if self.task is not None:
            await stop_task(self.task)


# ----------------------------------------------------------------------------- fixtures
# (here, not in a conftest.py: tests/ has its own conftest module, imported by name)


@pytest_asyncio.fixture
async def fake_server() -> AsyncIterator[FakeServer]:
    server = FakeServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def real_server(tmp_path: Path) -> Iterator[RealServer]:
    server = RealServer(tmp_path / "chat.db")
    server.start()
    try:
        yield server
    finally:
        server.stop()
