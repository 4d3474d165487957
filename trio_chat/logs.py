"""The server's log: text or JSON lines on standard error, each tagged with its connection.

A connection's task sets `CONNECTION` (DoorSession.run), so every line logged
while serving it, in any module, carries the client's address (`peer`) and its
name once welcomed (`user`). A JSON line holds `ts`, `level`, `event`, `logger`,
`msg`, and `peer`, `user` and the line's `extra` fields where there are some.
Nothing here adds message text or passwords, and no caller may log them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, Final, Protocol, TextIO


class Connection(Protocol):
    """What a log line needs of a connection (a DoorSession)."""

    @property
    def peer(self) -> str: ...

    @property
    def member(self) -> Any: ...


CONNECTION: ContextVar[Connection | None] = ContextVar("trio_chat_connection", default=None)

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
                 "error": logging.ERROR}  # fmt: skip
# What every LogRecord holds: anything else on a record came from `extra`.
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "event",
}


def _event(record: logging.LogRecord) -> str:
    """The line's event name: its `extra` "event", else the first words of its template."""
    event = record.__dict__.get("event")
    if isinstance(event, str):
        return event
    words: list[str] = []
    for word in str(record.msg).split():
        if "%" in word and not words:
            continue  # a leading argument (the peer, a signal's name)
        bare = word.rstrip(",.:;")
        if not bare.isalpha() or len(words) == 3:
            break
        words.append(bare.lower())
        if bare != word:  # the end of a clause
            break
    return "_".join(words) or record.name


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": _event(record),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        conn = CONNECTION.get()
        if conn is not None:
            line["peer"] = conn.peer
            member = conn.member
            if member is not None:
                line["user"] = member.name.spelling
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs (so a second call replaces it, not adds one)."""


def configure(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Log to `stream` (standard error) at `level`, as text or JSON; again: change them."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Handler)), None)
    if handler is None:
        handler = _Handler(sys.stderr if stream is None else stream)
        root.addHandler(handler)
    elif stream is not None:
        handler.setStream(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.setLevel(LEVELS[level])


def configured() -> bool:
    """True when `configure` runs this process's log (the command line), not a test's."""
    return any(isinstance(h, _Handler) for h in logging.getLogger().handlers)
