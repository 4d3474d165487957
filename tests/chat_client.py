"""A test client over trio streams that speaks PROTOCOL.md as a stranger would: raw JSON dicts."""

from __future__ import annotations

import json
from typing import Any

import trio

from trio_chat.protocol import parse_server_frame

TIMEOUT = 5.0


class Closed(Exception):
    """The server closed the connection."""


class ChatClient:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = b""
        self.seen: list[dict[str, Any]] = []
        self.autopong = True

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> ChatClient:
        return cls(await trio.open_tcp_stream(host, port))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send(self, **frame: Any) -> None:
        await self.send_raw(json.dumps(frame).encode() + b"\n")

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame, checked against the protocol's own parser on the way."""
        with trio.fail_after(timeout):
            while b"\n" not in self.buf:
                try:
                    chunk = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    raise Closed("connection reset") from None
                if not chunk:
                    raise Closed("server closed the connection")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        parse_server_frame(line)  # every server frame is well-formed
        frame: dict[str, Any] = json.loads(line)
        self.seen.append(frame)
        if frame["type"] == "ping" and self.autopong:
            await self.send(type="pong")
        return frame

    async def expect(self, type_: str, timeout: float = TIMEOUT, **match: Any) -> dict[str, Any]:
        """Skip frames until one of `type_` whose fields equal `match`."""
        with trio.fail_after(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items()):
                    return frame

    async def closed(self, timeout: float = TIMEOUT) -> bool:
        """True once the server closed the connection (frames before that are skipped)."""
        try:
            while True:
                await self.recv(timeout)
        except Closed:
            return True

    async def hello(self, name: str, **extra: Any) -> dict[str, Any]:
        await self.send(type="hello", name=name, **extra)
        return await self.recv()

    async def join(self, room: str, **extra: Any) -> dict[str, Any]:
        await self.send(type="join", room=room, **extra)
        return await self.expect("joined")

    async def say(self, room: str, text: str, **extra: Any) -> dict[str, Any]:
        """Say in a room and wait for the sender's own copy."""
        await self.send(type="say", room=room, text=text, id=f"s-{text}"[:64], **extra)
        return await self.expect("message", re=f"s-{text}"[:64])

    async def aclose(self) -> None:
        await self.stream.aclose()


async def login(port: int, name: str, *rooms: str, **hello: Any) -> ChatClient:
    client = await ChatClient.connect(port)
    welcome = await client.hello(name, **hello)
    assert welcome["type"] == "welcome", welcome
    for room in rooms:
        await client.join(room)
    return client
