"""Rooms, members and names online; fan-out of committed messages and presence to outboxes.

Everything here is synchronous and runs in trio's thread, so no other task sees
a half-done change. Fan-out works per batch: a room's pending frames (committed
messages, presence) are joined once and handed to each member as one item;
only a sender whose `say` had an `id` gets its own copy with `re`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Protocol

import trio

from .confusables import LookAlikes
from .outbox import Outbox
from .protocol import Bye, LeaveReason, Name, Presence, RequestId, encode
from .store import Stored, format_ts

log = logging.getLogger(__name__)


class Owner(Protocol):
    """The connection behind a member (the session)."""

    def close(self, bye: Bye | None = None, leave: LeaveReason | None = None) -> None:
        """End the connection, leaving the hub (used when another login replaces it)."""

    def overflow(self) -> None:
        """The outbox is full. Runs mid fan-out, so it must not change the hub."""


class Member:
    """One welcomed connection as the hub sees it."""

    __slots__ = ("account", "closed", "holds", "name", "outbox", "owner", "rooms")

    def __init__(self, name: Name, outbox: Outbox, owner: Owner, *, account: bool = False) -> None:
        self.name = name
        self.outbox = outbox
        self.owner = owner
        self.account = account
        self.rooms: dict[str, Room] = {}
        # room key -> items (and their frame counts) that arrived while a join reads history
        self.holds: dict[str, list[tuple[bytes, int]]] = {}
        self.closed = False

    def deliver(self, data: bytes, frames: int) -> None:
        if not self.outbox.put(data, frames):
            self.owner.overflow()

    def deliver_to_room(self, room: Room, data: bytes, frames: int) -> None:
        held = self.holds.get(room.key)
        if held is None:
            self.deliver(data, frames)
        else:
            held.append((data, frames))

    def __repr__(self) -> str:
        return f"<Member {self.name.spelling}>"


class Room:
    """A room with members online, and the frames waiting to be fanned out to them."""

    __slots__ = ("key", "members", "name", "pending", "starts", "variants")

    def __init__(self, name: Name) -> None:
        self.name = name
        self.key = name.key
        self.members: dict[Member, None] = {}  # an ordered set, in join order
        self.pending: list[bytes] = []  # one encoded frame each
        self.starts: dict[Member, int] = {}  # members who must not see pending[:start]
        self.variants: dict[Member, dict[int, bytes]] = {}  # a sender's copies with `re`

    def names(self) -> list[str]:
        return [m.name.spelling for m in self.members]

    def flush(self) -> None:
        """Hand each member the pending frames it should see, joined into one item."""
        pending = self.pending
        count = len(pending)
        if not count:
            return
        blobs: dict[int, bytes] = {0: b"".join(pending)}
        starts, variants = self.starts, self.variants
        for member in self.members:
            start = starts.get(member, 0) if starts else 0
            if start >= count:
                continue
            copies = variants.get(member) if variants else None
            if copies is None:
                blob = blobs.get(start)
                if blob is None:
                    blob = blobs[start] = b"".join(pending[start:])
            else:
                blob = b"".join([copies.get(i, pending[i]) for i in range(start, count)])
            member.deliver_to_room(self, blob, count - start)
        self.pending = []
        if starts:
            starts.clear()
        if variants:
            variants.clear()


def with_re(data: bytes, re: RequestId | None) -> bytes:
    """An encoded frame with `re` added, without encoding it again."""
    if re is None:
        return data
    return data[:-2] + b',"re":' + json.dumps(re, ensure_ascii=False).encode() + b"}\n"


class Hub:
    """Who is online, who is in which room, and the way every frame reaches them."""

    def __init__(
        self,
        *,
        known_rooms: dict[str, str] | None = None,
        last_id: int = 0,
        max_batch: int = 256,
        presence_delay: float = 0.0,
    ) -> None:
        self.users: dict[str, Member] = {}  # name key -> the connection holding that name
        self.creating: set[str] = set()  # names whose account is being created
        self._online_shapes = LookAlikes()  # skeletons of the names online
        self._account_shapes = LookAlikes()  # skeletons of the names with an account
        self.rooms: dict[str, Room] = {}  # rooms with members online
        self.known_rooms = known_rooms if known_rooms is not None else {}  # key -> spelling
        self.last_id = last_id  # the newest message id fanned out: the join boundary
        self.max_batch = max(1, max_batch)  # frames a room gathers before it must flush
        self.presence_delay = presence_delay  # how long presence waits to be batched
        self._dirty: dict[Room, None] = {}
        self._flush_soon = trio.Event()

    # ------------------------------------------------------------------ names

    def claim(self, member: Member) -> Member | None:
        """Give the member its name; returns the member that held it before, if any."""
        previous = self.users.get(member.name.key)
        self.users[member.name.key] = member
        if previous is None:
            self._online_shapes.add(member.name)
        return previous

    def add_account(self, name: Name) -> None:
        self._account_shapes.add(name)

    def looks_taken(self, name: Name) -> bool:
        """True when a different name online or with an account looks the same (TR39)."""
        return self._online_shapes.clash(name) or self._account_shapes.clash(name)

    def online(self, name: Name) -> Member | None:
        return self.users.get(name.key)

    def disconnect(self, member: Member, reason: LeaveReason | None) -> None:
        """The member is gone: out of every room (presence `left` with `reason`) and offline."""
        if member.closed:
            return
        member.closed = True
        for room in list(member.rooms.values()):
            self._leave(member, room, reason)
        if self.users.get(member.name.key) is member:
            del self.users[member.name.key]
            self._online_shapes.remove(member.name)

    # ------------------------------------------------------------------ rooms

    def room_name(self, name: Name) -> Name:
        """The spelling a room keeps: the first used, as long as it has members or history."""
        room = self.rooms.get(name.key)
        if room is not None:
            return room.name
        spelling = self.known_rooms.get(name.key)
        return name if spelling is None else Name(spelling, name.key)

    def join(self, member: Member, name: Name) -> tuple[Room, list[str], int]:
        """Put the member in the room and hold its live frames until `release`.

        Returns the room, the members as the joined answer lists them, and the
        boundary: history up to it is read from the store, everything after it
        arrives live (held until then).
        """
        room = self.rooms.get(name.key)
        if room is None:
            room = self.rooms[name.key] = Room(self.room_name(name))
        if member not in room.members:
            self.flush_if_full(room)
            self._publish(room, presence(room.name.spelling, member.name.spelling, "joined"))
            room.members[member] = None
            room.starts[member] = len(room.pending)  # not its own presence, nor anything older
            member.rooms[room.key] = room
        member.holds[room.key] = []
        return room, room.names(), self.last_id

    def release(self, member: Member, room: Room) -> None:
        """The join's answer is queued: now send what arrived for the room meanwhile."""
        held = member.holds.pop(room.key, None)
        if held:
            member.deliver(b"".join(data for data, _ in held), sum(n for _, n in held))

    def part(self, member: Member, room_key: str) -> Room | None:
        """Take the member out of a room; None when it was not in it."""
        room = member.rooms.get(room_key)
        if room is None:
            return None
        self._leave(member, room, "part")
        return room

    def _leave(self, member: Member, room: Room, reason: LeaveReason | None) -> None:
        del room.members[member]
        del member.rooms[room.key]
        member.holds.pop(room.key, None)
        room.starts.pop(member, None)
        room.variants.pop(member, None)
        if not room.members:
            del self.rooms[room.key]
            self._dirty.pop(room, None)
        elif reason is not None:
            self.flush_if_full(room)
            self._publish(room, presence(room.name.spelling, member.name.spelling, "left", reason))

    def members(self, name: Name) -> tuple[str, list[str]]:
        room = self.rooms.get(name.key)
        if room is None:
            return self.room_name(name).spelling, []
        return room.name.spelling, room.names()

    def room_list(self) -> list[tuple[str, int]]:
        """Every room with members online or history, sorted by name, with its member count."""
        listing = {key: (spelling, 0) for key, spelling in self.known_rooms.items()}
        for key, room in self.rooms.items():
            listing[key] = (room.name.spelling, len(room.members))
        return [listing[key] for key in sorted(listing)]

    # ------------------------------------------------------------------ fan-out

    def _publish(self, room: Room, data: bytes) -> None:
        room.pending.append(data)
        if room not in self._dirty:
            self._dirty[room] = None
            self._flush_soon.set()

    def flush_if_full(self, room: Room) -> None:
        """Keep each fan-out item below the outbox bound (PROTOCOL.md guarantee 4)."""
        if len(room.pending) >= self.max_batch:
            room.flush()

    def flush(self) -> None:
        """Fan out everything pending, room by room."""
        dirty, self._dirty = self._dirty, {}
        for room in dirty:
            room.flush()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fan out presence shortly after it happens, a burst of it as one item per member.

        A storm of N joins into a room costs N^2/2 presence frames; waiting
        `presence_delay` first turns them into a few items per member instead
        of one per join. A committed message flushes its room at once, and
        the presence pending there goes out before it, so order is kept.
        """
        task_status.started()
        while True:
            await self._flush_soon.wait()
            if self.presence_delay > 0:
                await trio.sleep(self.presence_delay)
            self._flush_soon = trio.Event()
            self.flush()

    def publish(self, batch: Iterable[Stored]) -> None:
        """Fan out one committed batch, in id order, then flush it at once."""
        direct: dict[Member, list[bytes]] = {}
        for stored in batch:
            draft, message = stored.draft, stored.message
            origin = draft.origin if isinstance(draft.origin, Member) else None
            if stored.duplicate:
                if origin is not None and not origin.closed:
                    data = with_re(encode(message), draft.re)
                    direct.setdefault(origin, []).append(data)
                continue
            self.last_id = message.id
            data = encode(message)
            if message.room is not None:
                assert draft.room is not None
                room = self.rooms.get(draft.room.key)
                if room is not None:
                    self.flush_if_full(room)
                    index = len(room.pending)
                    self._publish(room, data)
                if origin is None or origin.closed:
                    continue
                if room is not None and origin in room.members:
                    if draft.re is not None:
                        room.variants.setdefault(origin, {})[index] = with_re(data, draft.re)
                else:  # the sender left the room meanwhile: its answer still comes
                    direct.setdefault(origin, []).append(with_re(data, draft.re))
            else:
                assert draft.to is not None
                recipient = self.users.get(draft.to.key)
                if recipient is not None and recipient is not origin:
                    direct.setdefault(recipient, []).append(data)
                if origin is not None and not origin.closed:
                    direct.setdefault(origin, []).append(with_re(data, draft.re))
        self.flush()
        for member, frames in direct.items():
            member.deliver(b"".join(frames), len(frames))


def presence(room: str, name: str, state: str, reason: str | None = None) -> bytes:
    """A presence frame, encoded once for every member."""
    frame = Presence(
        room=room,
        name=name,
        state=state,  # type: ignore[arg-type]
        ts=format_ts(time.time()),
        reason=reason,  # type: ignore[arg-type]
    )
    return encode(frame)
