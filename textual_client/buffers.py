"""What the client shows, without Textual: one buffer per room or direct conversation.

A buffer (weechat's word) holds its lines in order: confirmed messages, topic
changes, presence and notices; below them the user's pending messages, until each
one's echo comes. It also keeps the unread count, the mention mark, the member list
and the topic. Edits and deletions (section 9) change the message they name in place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, TypeAlias

from trio_chat import protocol as p

EntryKind: TypeAlias = Literal[
    "message", "pending", "failed", "presence", "info", "error", "topic", "marker"
]
BufferKind: TypeAlias = Literal["room", "dm"]
QUOTE_CHARS = 60  # how much of a replied-to message its reply quotes
MARKER_TEXT = "new since you last read"  # the read marker's line (section 10)


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
    reply_to: int | None = None  # the id of the message this one answers
    action: bool = False  # a `/me`
    edited: bool = False
    deleted: bool = False
    as_of: int = 0  # the newest entry id its state includes: older edits do not apply
    hit: bool = False  # the search hit a context view is about
    render_cache: Any = None  # the widget's rendered lines, keyed by width


@dataclass(eq=False)
class Buffer:
    """A room (`#lobby`) or a direct conversation (`@bob`) and everything shown for it."""

    kind: BufferKind
    key: str  # the name_key of the room or of the other person
    name: str  # its spelling
    entries: list[Entry] = field(default_factory=list)
    pending: list[Entry] = field(default_factory=list)
    ids: set[int] = field(default_factory=set)  # every entry id seen, of every kind
    by_id: dict[int, Entry] = field(default_factory=dict)  # the messages shown, by id
    members: list[str] = field(default_factory=list)
    unread: int = 0
    mention: bool = False
    more: bool = False  # older history exists on the server
    loading_older: bool = False
    joined: bool = False
    offline: bool = False  # a direct conversation whose other side is not online
    topic: str = ""
    topic_id: int = 0  # the id of the topic entry `topic` came from
    read: int | None = None  # the account's read marker (section 10); None: no markers
    marking: int = 0  # the `upto` of the last `mark` sent
    owner: str | None = None  # section 11: the room's owner, ops and privacy
    ops: list[str] = field(default_factory=list)
    private: bool = False

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

    @property
    def newest_id(self) -> int:
        """The id of the newest message shown (0: none)."""
        return max(self.by_id, default=0)

    def unread_after(self, upto: int) -> int:
        """Messages shown newer than `upto`, not the user's own."""
        return sum(1 for i, e in self.by_id.items() if i > upto and not e.own and not e.deleted)

    def place_marker(self) -> bool:
        """Put the "new since you last read" line before the first unread message; True if shown."""
        self.entries = [e for e in self.entries if e.kind != "marker"]
        if self.read is None:
            return False
        read = self.read
        for i, entry in enumerate(self.entries):
            if entry.kind == "message" and entry.id and entry.id > read and not entry.own:
                self.entries.insert(i, Entry("marker", MARKER_TEXT))
                return True
        return False

    def mark_of(self, name: str) -> str:
        """A member's mark in the member list, as weechat shows it: `~` owner, `@` op."""
        key = p.name_key(name)
        if self.owner is not None and p.name_key(self.owner) == key:
            return "~"
        return "@" if any(p.name_key(o) == key for o in self.ops) else ""


def mentions(text: str, name: str) -> bool:
    """Whether `text` names `name` as a word (case-insensitive)."""
    if not name:
        return False
    key = p.name_key(name)
    pattern = rf"(?<![\w\-.]){re.escape(key)}(?![\w\-])"
    return re.search(pattern, p.name_key(text)) is not None


def _local(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return None


def local_time(ts: str | None, with_date: bool = False) -> str:
    """A protocol timestamp (UTC, ISO 8601) as local wall-clock time, HH:MM."""
    when = _local(ts)
    if when is None:
        return "--:--"
    return when.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def local_day(ts: str | None) -> date | None:
    """The local calendar day of a protocol timestamp (None when it has none)."""
    when = _local(ts)
    return when.date() if when is not None else None


def day_title(day: date) -> str:
    """`Sunday 29 November 2026`."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def quote_of(buf: Buffer, reply_to: int) -> str:
    """The one-line quote a reply shows: `↳ Souvik: the first 60 chars…`."""
    target = buf.by_id.get(reply_to)
    if target is None:
        return "↳ a message not loaded"
    if target.deleted:
        return f"↳ {target.sender}: (message deleted)"
    text = " ".join(target.text.split())
    if len(text) > QUOTE_CHARS:
        text = text[:QUOTE_CHARS] + "…"
    return f"↳ {target.sender}: {'* ' if target.action else ''}{text}"


def topic_line(entry: p.TopicEntry) -> str:
    return (
        f"{entry.by} set the topic: {entry.text}" if entry.text else f"{entry.by} cleared the topic"
    )


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

    def find_message(self, message: int) -> tuple[Buffer, Entry] | None:
        """The buffer and line of a message shown, by id."""
        for buf in self.order:
            entry = buf.by_id.get(message)
            if entry is not None:
                return buf, entry
        return None

    def buffer_of_entry(self, entry: p.Entry) -> Buffer:
        """The buffer an entry belongs to; an edit or deletion goes where its message is."""
        if isinstance(entry, p.Message):
            return self.buffer_of(entry)
        if isinstance(entry, p.EditEntry | p.DeleteEntry):
            found = self.find_message(entry.message)
            if found is not None:
                return found[0]
        if entry.room is not None:
            return self.get("room", entry.room)
        author = entry.by if isinstance(entry, p.DeleteEntry) else entry.sender
        other = entry.to if p.name_key(author) == p.name_key(self.me) else author
        return self.get("dm", other or "?")

    def entry_of(self, message: p.Message, as_of: int = 0) -> Entry:
        own = p.name_key(message.sender) == p.name_key(self.me)
        return Entry(
            "message",
            "" if message.deleted else message.text,
            sender=message.sender,
            ts=message.ts,
            id=message.id,
            own=own,
            mention=not own
            and not message.deleted
            and (message.room is None or mentions(message.text, self.me)),
            reply_to=message.reply_to,
            action=message.action,
            edited=message.edited is not None,
            deleted=message.deleted,
            as_of=max(as_of, message.id),
        )

    def add_messages(
        self, buf: Buffer, messages: list[p.Message], *, older: bool = False
    ) -> list[Entry]:
        """Add messages not shown yet (at the top when `older`); returns the new entries."""
        return self.add_entries(buf, messages, older=older)[0]

    def add_entries(
        self, buf: Buffer, entries: Sequence[p.Entry], *, older: bool = False, page: bool = False
    ) -> tuple[list[Entry], list[Entry]]:
        """Take entries of every kind, in id order: (the new lines, the lines changed in place).

        A page's messages are in their state at the page's newest id (section 9), so an
        edit or deletion changes a message only when it is newer than the message's state.
        """
        as_of = max((e.id for e in entries), default=0) if page else 0
        lines: list[Entry] = []
        changed: list[Entry] = []
        for item in entries:
            if item.id in buf.ids:
                continue
            buf.ids.add(item.id)
            if isinstance(item, p.Message):
                line = self.entry_of(item, as_of)
                buf.by_id[item.id] = line
                lines.append(line)
            elif isinstance(item, p.TopicEntry):
                lines.append(
                    Entry("topic", topic_line(item), sender=item.by, ts=item.ts, id=item.id)
                )
                if item.id > buf.topic_id:
                    buf.topic, buf.topic_id = item.text, item.id
            else:
                target = buf.by_id.get(item.message)
                if target is not None and apply_change(target, item):
                    changed.append(target)
        if older:
            buf.entries[:0] = lines
        else:
            buf.entries.extend(lines)
        touched = {e.id for e in changed} | ({e.id for e in lines} if older else set())
        if touched:
            for line in buf.entries:
                if line.reply_to in touched:  # its quote shows the change
                    line.render_cache = None
        return lines, changed

    def note(
        self, buf: Buffer, text: str, kind: EntryKind = "info", ts: str | None = None
    ) -> Entry:
        entry = Entry(kind, text, ts=ts)
        buf.entries.append(entry)
        return entry

    def add_pending(
        self,
        buf: Buffer,
        nonce: str,
        text: str,
        *,
        reply_to: int | None = None,
        action: bool = False,
    ) -> Entry:
        entry = Entry(
            "pending", text, sender=self.me, nonce=nonce, own=True, reply_to=reply_to, action=action
        )
        buf.pending.append(entry)
        return entry

    def last_own(self, buf: Buffer) -> Entry | None:
        """The user's newest message in a buffer that can still be edited or deleted."""
        for entry in reversed(buf.entries):
            if entry.kind == "message" and entry.own and not entry.deleted and entry.id:
                return entry
        return None

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


def apply_change(target: Entry, change: p.EditEntry | p.DeleteEntry) -> bool:
    """Apply an edit or deletion to the line of its message; False when it changes nothing."""
    if target.deleted or change.id <= target.as_of:
        return False
    target.as_of = change.id
    if isinstance(change, p.DeleteEntry) or change.deleted:
        target.deleted, target.text, target.mention = True, "", False
    else:
        target.text, target.edited = change.text, True
    target.render_cache = None
    return True
