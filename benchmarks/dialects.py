"""What the load generator says on the wire: trio-chat (PROTOCOL.md) and the bare relay.

A dialect turns (sender, sequence, send time) into the bytes to send and finds the
deliveries in a block of received lines with one regular expression (C speed), so a
worker can check every delivery without parsing JSON per message.
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

ROOM = "bench"

Delivery = tuple[bytes, bytes, bytes, bytes]
"""(message id, sender index, sequence, send time in µs), as the digits received."""

_TEXT = rb'"text": ?"k(\d+)\.(\d+)\.(\d+)"'
_MESSAGE_FAST = re.compile(rb'"id":(\d+),"room":"[^"]*","from":"[^"]*",' + _TEXT)
"""trio-chat's own field order (and the relay's): the fast path."""
_MESSAGE = re.compile(rb'"id": ?(\d+),[^\n]*' + _TEXT)
"""Any order with `id` before `text`."""


class HandshakeError(Exception):
    """The server refused or broke the handshake of one client."""


def text_of(sender: int, seq: int, t_us: int) -> str:
    """The unique text of one message: it names its sender, its sequence and its send time."""
    return f"k{sender}.{seq}.{t_us}"


def name_of(index: int) -> str:
    """The user name (or IRC nick) of client `index`."""
    return f"b{index}"


class Dialect:
    """Base of the wire formats; subclasses fill in the frames and the parsing."""

    name: ClassVar[str] = ""
    echoes: ClassVar[bool] = True
    """Whether the sender receives its own message (trio-chat and the relay do, IRC doesn't)."""
    checks_ids: ClassVar[bool] = False
    """Whether deliveries carry server ids that must increase for each member."""
    newline: ClassVar[bytes] = b"\n"

    def __init__(self, rooms: int = 1) -> None:
        self.rooms = rooms
        self.history: dict[int, int] = {}
        """Length of the history each client got when it joined (trio-chat only)."""

    def room_of(self, index: int) -> str:
        """The room client `index` joins: all in one, or spread over `rooms` rooms."""
        return ROOM if self.rooms == 1 else f"{ROOM}{index % self.rooms}"

    def greet(self, index: int) -> bytes:
        """Bytes sent right after connecting."""
        return b""

    def handshake(self, index: int, line: bytes) -> tuple[bytes, bool]:
        """React to one line before the client is ready: (bytes to send, ready now)."""
        raise NotImplementedError

    def say(self, sender: int, seq: int, t_us: int) -> bytes:
        """The line that sends message `seq` of `sender`."""
        raise NotImplementedError

    def deliveries(self, block: bytes) -> list[Delivery]:
        """Every message delivered in `block` (whole lines), in order."""
        found: list[Delivery] = _MESSAGE_FAST.findall(block)
        expected = block.count(b'"message"')
        if len(found) == expected:
            return found
        found = _MESSAGE.findall(block)
        if len(found) == expected:
            return found
        return self._slow_deliveries(block)

    def _slow_deliveries(self, block: bytes) -> list[Delivery]:
        """Parse `block` line by line with json: used only when the fast path is unsure."""
        found: list[Delivery] = []
        for line in block.splitlines():
            if b'"message"' not in line:
                continue
            try:
                frame = json.loads(line)
            except ValueError:
                continue
            if not isinstance(frame, dict) or frame.get("type") != "message":
                continue
            match = re.fullmatch(r"k(\d+)\.(\d+)\.(\d+)", str(frame.get("text", "")))
            if match is not None:
                ident = str(frame.get("id", 0)).encode()
                sender, seq, t_us = (g.encode() for g in match.groups())
                found.append((ident, sender, seq, t_us))
        return found

    def keepalive(self, block: bytes) -> bytes:
        """The answers owed to the server's pings found in `block`."""
        return b""

    def trouble(self, block: bytes) -> list[str]:
        """Errors and goodbyes the server sent in `block`, as short descriptions."""
        return []


class ChatDialect(Dialect):
    """trio-chat as PROTOCOL.md defines it: hello, join, say; message frames back."""

    name = "chat"
    checks_ids = True

    def greet(self, index: int) -> bytes:
        return _frame({"type": "hello", "name": name_of(index), "client": "benchmarks"})

    def handshake(self, index: int, line: bytes) -> tuple[bytes, bool]:
        if b'"joined"' not in line and (b'"presence"' in line or b'"message"' in line):
            return b"", False
        frame = json.loads(line)
        kind = frame.get("type")
        if kind == "welcome":
            return _frame({"type": "join", "room": self.room_of(index)}), False
        if kind == "joined":
            self.history[index] = len(frame.get("history", []))
            return b"", True
        if kind == "ping":
            return _frame({"type": "pong"}), False
        if kind in ("error", "bye"):
            raise HandshakeError(f"{name_of(index)}: {line.decode(errors='replace')}")
        return b"", False

    def say(self, sender: int, seq: int, t_us: int) -> bytes:
        text = text_of(sender, seq, t_us)
        return f'{{"type":"say","room":"{self.room_of(sender)}","text":"{text}"}}\n'.encode()

    def keepalive(self, block: bytes) -> bytes:
        if b'"ping"' not in block:
            return b""
        count = sum(1 for line in block.splitlines() if b'"type":"ping"' in line)
        return b'{"type":"pong"}\n' * count

    def trouble(self, block: bytes) -> list[str]:
        if b'"error"' not in block and b'"bye"' not in block:
            return []
        return [
            line.decode(errors="replace")
            for line in block.splitlines()
            if b'"type":"error"' in line or b'"type":"bye"' in line
        ]


class RelayDialect(Dialect):
    """The bare relay: the client sends the very frame the chat server would deliver.

    So each delivery carries the same bytes as trio-chat's `message` frame (the id is 0
    and not checked: the relay assigns none); order is checked by sequence per sender.
    """

    name = "relay"

    def handshake(self, index: int, line: bytes) -> tuple[bytes, bool]:
        return b"", line.startswith(b'{"type":"relay"')

    def say(self, sender: int, seq: int, t_us: int) -> bytes:
        text = text_of(sender, seq, t_us)
        return (
            f'{{"type":"message","id":0,"room":"{self.room_of(sender)}","from":"{name_of(sender)}",'
            f'"text":"{text}","ts":"2026-01-01T00:00:00.000Z"}}\n'
        ).encode()


def _frame(obj: dict[str, object]) -> bytes:
    """One JSON frame, compact, with its LF."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"
