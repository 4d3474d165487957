"""What the client shows, without Textual: one buffer per room or direct conversation.

A buffer (weechat's word) holds its lines in order: confirmed messages, presence
and notices; below them the user's pending messages, until each one's echo comes.
It also keeps the unread count, the mention mark and the member list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias

from trio_chat import protocol as p

EntryKind: TypeAlias = Literal["message", "pending", "failed", "presence", "info", "error"]
BufferKind: TypeAlias = Literal["room", "dm"]


@dataclass(eq=False, slots=True)
class Entry:
    """One line (or a few, for multi-line text) of a buffer's history pane."""

    kind: EntryKind
    text: str
    sender: str = ""
    ts: str | None = None
    id: int | None = None
    nonce: str | None = None
    own: bool = False
    mention: bool = False
    render_cache: Any = None  # the widget's rendered lines, keyed by width


@dataclass(eq=False)
class Buffer:
    """A room (`#lobby`) or a direct conversation (`@bob`) and everything shown for it."""

    kind: BufferKind
    key: str  # the name_key of the room or of the other person
    name: str  # its spelling
    entries: list[Entry] = field(default_factory=list)
    pending: list[Entry] = field(default_factory=list)
    ids: set[int] = field(default_factory=set)
    members: list[str] = field(default_factory=list)
    unread: int = 0
    mention: bool = False
    more: bool = False  # older history exists on the server
    loading_older: bool = False
    joined: bool = False
    offline: bool = False  # a direct conversation whose other side is not online

    @property
    def ident(self) -> str:
        """A unique id for widgets: `room:lobby`, `dm:bob`."""
        return f"{self.kind}:{self.key}"

    @property
    def title(self) -> str:
        return ("#" if self.kind == "room" else "@") + self.name

    @property
    def oldest_id(self) -> int | None:
        return min(self.ids) if self.ids else None


def mentions(text: str, name: str) -> bool:
    """Whether `text` names `name` as a word (case-insensitive)."""
    if not name:
        return False
    key = p.name_key(name)
    pattern = rf"(?<![\w\-.]){re.escape(key)}(?![\w\-])"
    return re.search(pattern, p.name_key(text)) is not None


def local_time(ts: str | None, with_date: bool = False) -> str:
    """A protocol timestamp (UTC, ISO 8601) as local wall-clock time, HH:MM."""
    if not ts:
        return "--:--"
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return "--:--"
    return when.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


class Buffers:
    """All buffers, in the order shown in the room list, and the rules for adding lines."""

    def __init__(self) -> None:
        self.me = ""
        self.order: list[Buffer] = []
        self.by_ident: dict[str, Buffer] = {}

    def get(self, kind: BufferKind, name: str) -> Buffer:
        """The buffer of a room or person, created (at the end of the list) when new."""
        key = p.name_key(name)
        buf = self.by_ident.get(f"{kind}:{key}")
        if buf is None:
            buf = Buffer(kind, key, name)
            self.order.append(buf)
            self.by_ident[buf.ident] = buf
        return buf

    def find(self, kind: BufferKind, name: str) -> Buffer | None:
        return self.by_ident.get(f"{kind}:{p.name_key(name)}")

    def remove(self, buf: Buffer) -> None:
        if self.by_ident.pop(buf.ident, None) is not None:
            self.order.remove(buf)

    def buffer_of(self, message: p.Message) -> Buffer:
        if message.room is not None:
            return self.get("room", message.room)
        other = message.to if p.name_key(message.sender) == p.name_key(self.me) else message.sender
        return self.get("dm", other or "?")

    def entry_of(self, message: p.Message) -> Entry:
        own = p.name_key(message.sender) == p.name_key(self.me)
        return Entry(
            "message",
            message.text,
            sender=message.sender,
            ts=message.ts,
            id=message.id,
            own=own,
            mention=not own and (message.room is None or mentions(message.text, self.me)),
        )

    def add_messages(
        self, buf: Buffer, messages: list[p.Message], *, older: bool = False
    ) -> list[Entry]:
        """Add messages not shown yet (at the top when `older`); returns the new entries."""
        fresh = [m for m in messages if m.id not in buf.ids]
        entries = [self.entry_of(m) for m in fresh]
        buf.ids.update(m.id for m in fresh)
        if older:
            buf.entries[:0] = entries
        else:
            buf.entries.extend(entries)
        return entries

    def note(
        self, buf: Buffer, text: str, kind: EntryKind = "info", ts: str | None = None
    ) -> Entry:
        entry = Entry(kind, text, ts=ts)
        buf.entries.append(entry)
        return entry

    def add_pending(self, buf: Buffer, nonce: str, text: str) -> Entry:
        entry = Entry("pending", text, sender=self.me, nonce=nonce, own=True)
        buf.pending.append(entry)
        return entry

    def take_pending(self, buf: Buffer, nonce: str) -> Entry | None:
        """Remove and return the pending entry of `nonce`, if this buffer has it."""
        for i, entry in enumerate(buf.pending):
            if entry.nonce == nonce:
                return buf.pending.pop(i)
        return None

    def find_pending(self, nonce: str) -> Buffer | None:
        for buf in self.order:
            if any(e.nonce == nonce for e in buf.pending):
                return buf
        return None
