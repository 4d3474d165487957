"""The IRC dialect of the load generator: NICK/USER, JOIN, PRIVMSG, PING/PONG.

The same fan-out shape as trio-chat's, so ngircd, InspIRCd and miniircd run the same
load with the same checks. IRC does not echo a PRIVMSG to its sender.
"""

from __future__ import annotations

import re

from benchmarks.dialects import Delivery, Dialect, HandshakeError, name_of, text_of

_PRIVMSG = re.compile(rb"()PRIVMSG #\S+ :k(\d+)\.(\d+)\.(\d+)")
_FATAL = (b"432", b"433", b"436", b"465", b"471", b"473", b"474", b"475", b"ERROR")


class IrcDialect(Dialect):
    """RFC 1459 client lines; deliveries are the PRIVMSGs to the channel."""

    name = "irc"
    echoes = False
    checks_ids = False
    newline = b"\r\n"

    def greet(self, index: int) -> bytes:
        nick = name_of(index)
        return f"NICK {nick}\r\nUSER {nick} 0 * :bench\r\n".encode()

    def handshake(self, index: int, line: bytes) -> tuple[bytes, bool]:
        parts = line.split()
        if not parts:
            return b"", False
        if parts[0] == b"PING":
            return b"PONG " + b" ".join(parts[1:]) + b"\r\n", False
        command = parts[1] if parts[0].startswith(b":") and len(parts) > 1 else parts[0]
        if command == b"001":
            return f"JOIN #{self.room_of(index)}\r\n".encode(), False
        if command == b"366":
            return b"", True
        if command in _FATAL:
            raise HandshakeError(f"{name_of(index)}: {line.decode(errors='replace')}")
        return b"", False

    def say(self, sender: int, seq: int, t_us: int) -> bytes:
        return f"PRIVMSG #{self.room_of(sender)} :{text_of(sender, seq, t_us)}\r\n".encode()

    def deliveries(self, block: bytes) -> list[Delivery]:
        found: list[Delivery] = _PRIVMSG.findall(block)
        return found

    def keepalive(self, block: bytes) -> bytes:
        if b"PING" not in block:
            return b""
        return b"".join(
            b"PONG " + line.split(b" ", 1)[1].strip() + b"\r\n"
            for line in block.splitlines()
            if line.startswith(b"PING ")
        )

    def trouble(self, block: bytes) -> list[str]:
        if b"ERROR" not in block:
            return []
        return [
            line.decode(errors="replace")
            for line in block.splitlines()
            if line.startswith(b"ERROR")
        ]


def dialect_named(name: str, rooms: int = 1) -> Dialect:
    """The dialect for `name` (chat, relay or irc), its clients spread over `rooms` rooms."""
    from benchmarks.dialects import ChatDialect, RelayDialect

    dialects: dict[str, type[Dialect]] = {
        "chat": ChatDialect,
        "relay": RelayDialect,
        "irc": IrcDialect,
    }
    return dialects[name](rooms)
