"""Rooms, members and names online; fan-out of committed messages and presence to outboxes.

Everything here is synchronous and runs in trio's thread, so no other task sees
a half-done change. Fan-out works per batch: a room's pending items (committed
messages, presence) are encoded once per wire variant (JSON; IRC with or
without tags), joined once per variant, and handed to each member as one item;
only a sender whose door wants its own copy (`re`, an IRC label) gets one.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable
from typing import Protocol

import trio

from .confusables import LookAlikes
from .core.errors import ChatError
from .core.timestamps import now_ts
from .outbox import Outbox
from .protocol import JSON_WIRE, Bye, Entry, LeaveReason, Name, Presence, RequestId
from .protocol.markers import Marked
from .store import Account, Draft, Stored

Item = Entry | Presence  # what the hub fans out: log entries and presence


class Wire(Protocol):
    """How one door (and variant of it) encodes fan-out items; members of a variant share one."""

    def encode(self, item: Item) -> bytes:
        """The item as every member of this variant sees it."""

    def own(self, message: Entry, re: RequestId | None) -> bytes | None:
        """The sender's own copy of its entry; None when the shared one will do."""

    def marker(self, marked: Marked, ts: str | None) -> bytes:
        """A read marker that moved, for another device of the account (b"": not shown);
        `ts` is the time of its entry, for doors that mark by time."""


log = logging.getLogger(__name__)


class Owner(Protocol):
    """The connection behind a member (the session)."""

    def close(self, bye: Bye | None = None, leave: LeaveReason | None = None) -> None:
        """End the connection, leaving the hub (used when another login replaces it)."""

    def overflow(self) -> None:
        """The outbox is full. Runs mid fan-out, so it must not change the hub."""

    def refuse(self, re: RequestId | None, error: ChatError) -> None:
        """Answer a request accepted earlier with an error (its commit failed)."""


class Member:
    """One welcomed connection as the hub sees it."""

    __slots__ = (
        "account",
        "closed",
        "device",
        "holds",
        "name",
        "outbox",
        "owner",
        "rooms",
        "sent",
        "wire",
    )

    def __init__(
        self,
        name: Name,
        outbox: Outbox,
        owner: Owner,
        *,
        account: bool = False,
        wire: Wire = JSON_WIRE,
        device: str | None = None,
    ) -> None:
        self.name = name
        self.outbox = outbox
        self.owner = owner
        self.account = account
        self.wire = wire
        self.device = device  # section 10: an account's device label (None is one label too)
        self.rooms: dict[str, Room] = {}
        # room key -> items (and their frame counts) that arrived while a join reads history
        self.holds: dict[str, list[tuple[bytes, int]]] = {}
        self.closed = False
        # a guest's messages sent from this connection: only it may edit or delete them
        # (made at the first one: ten thousand idle connections hold no empty sets)
        self.sent: set[int] | None = None

    def wrote(self, message_id: int) -> bool:
        """Whether this connection sent that message (a guest's authorship)."""
        return self.sent is not None and message_id in self.sent

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

    __slots__ = ("key", "members", "name", "pending", "people", "spellings", "starts", "variants")

    def __init__(self, name: Name) -> None:
        self.name = name
        self.key = name.key
        self.members: dict[Member, None] = {}  # an ordered set, in join order
        # name key -> its devices in the room: a name is in it while one of them is
        self.people: dict[str, list[Member]] = {}
        # name key -> its spelling, in join order: `names` is one C-level copy of it (a join
        # storm asks for every name once per join)
        self.spellings: dict[str, str] = {}
        self.pending: list[Item] = []
        self.starts: dict[Member, int] = {}  # members who must not see pending[:start]
        self.variants: dict[Member, dict[int, bytes]] = {}  # a sender's own copies

    def names(self) -> list[str]:
        """The names in the room, each once however many of its devices are in it."""
        return list(self.spellings.values())

    def flush(self) -> int:
        """Hand each member the pending items it should see, joined into one blob; how many got one.

        Each item is encoded once per wire variant among the members, and each
        variant's blob joined once per starting point, never once per member.
        """
        pending = self.pending
        count = len(pending)
        if not count:
            return 0
        encoded: dict[Wire, tuple[list[bytes], dict[int, bytes]]] = {}
        starts, variants = self.starts, self.variants
        handed = 0  # metrics: fan-out deliveries
        for member in self.members:
            start = starts.get(member, 0) if starts else 0
            if start >= count:
                continue
            wire = member.wire
            cached = encoded.get(wire)
            if cached is None:
                frames = [wire.encode(item) for item in pending]
                cached = encoded[wire] = (frames, {0: b"".join(frames)})
            frames, blobs = cached
            copies = variants.get(member) if variants else None
            if copies is None:
                blob = blobs.get(start)
                if blob is None:
                    blob = blobs[start] = b"".join(frames[start:])
            else:
                blob = b"".join([copies.get(i, frames[i]) for i in range(start, count)])
            if blob:
                member.deliver_to_room(self, blob, count - start)
                handed += 1
        self.pending = []
        if starts:
            starts.clear()
        if variants:
            variants.clear()
        return handed


class Hub:
    """Who is online, who is in which room, and the way every item reaches them."""

    def __init__(
        self,
        *,
        known_rooms: dict[str, str] | None = None,
        last_id: int = 0,
        max_batch: int = 256,
        presence_delay: float = 0.0,
    ) -> None:
        # name key -> the connections online under that name: a guest's one, or an account's
        # devices (section 10), oldest first
        self.users: dict[str, list[Member]] = {}
        self.creating: set[str] = set()  # names whose account is being created
        self._online_shapes = LookAlikes()  # skeletons of the names online
        self._account_shapes = LookAlikes()  # skeletons of the names with an account
        self._creating_shapes = LookAlikes()  # skeletons of the accounts being created
        self.rooms: dict[str, Room] = {}  # rooms with members online
        self.known_rooms = known_rooms if known_rooms is not None else {}  # key -> spelling
        # every room with members online or history, by key, kept sorted for `rooms` pages
        self._listed: list[str] = sorted(self.known_rooms)
        self.last_id = last_id  # the newest message id fanned out: the join boundary
        self.max_batch = max(1, max_batch)  # frames a room gathers before it must flush
        self.presence_delay = presence_delay  # how long presence waits to be batched
        self._dirty: dict[Room, None] = {}
        self._flush_soon = trio.Event()
        self.delivered = 0  # items handed to outboxes by fan-out (metrics)

    # ------------------------------------------------------------------ names

    def claim(self, member: Member) -> Member | None:
        """Give the member its name; returns the member it replaces, if any (see `take`)."""
        replaced = self.take(member)
        return replaced[0] if replaced else None

    def take(self, member: Member) -> list[Member]:
        """Give the member its name; returns the members it replaces, to be closed.

        An account's device replaces only the one with the same device label (no
        label is one label too); a guest has one connection, so it replaces any.
        """
        if member.closed:
            raise ChatError("bad_state", "the connection is closing")
        devices = self.users.get(member.name.key)
        if devices is None:
            self.users[member.name.key] = [member]
            self._online_shapes.add(member.name)
            return []
        kept: list[Member] = []
        replaced: list[Member] = []
        for device in devices:
            same = not (member.account and device.account) or device.device == member.device
            (replaced if same else kept).append(device)
        kept.append(member)
        self.users[member.name.key] = kept
        return replaced

    def add_account(self, name: Name) -> None:
        self._account_shapes.add(name)

    def reserve(self, name: Name) -> None:
        """Hold a name while its account is made: taken, look-alikes too, until `unreserve`."""
        self.creating.add(name.key)
        self._creating_shapes.add(name)

    def unreserve(self, name: Name) -> None:
        self.creating.discard(name.key)
        self._creating_shapes.remove(name)

    def looks_taken(self, name: Name) -> bool:
        """True when a different name online, with an account or being made looks the same."""
        return (
            self._online_shapes.clash(name)
            or self._account_shapes.clash(name)
            or self._creating_shapes.clash(name)
        )

    def online(self, name: Name) -> Member | None:
        """One connection online under the name (its oldest device), or None."""
        devices = self.users.get(name.key)
        return devices[0] if devices else None

    def devices(self, name: Name) -> list[Member]:
        """Every connection online under the name, oldest first (a guest has one)."""
        return list(self.users.get(name.key, ()))

    def disconnect(
        self, member: Member, reason: LeaveReason | None, message: str | None = None
    ) -> None:
        """The member is gone: out of every room (presence `left` with `reason`, and the
        user's own words for a quit) and offline."""
        if member.closed:
            return
        member.closed = True
        for room in list(member.rooms.values()):
            self._leave(member, room, reason, message)
        devices = self.users.get(member.name.key)
        if devices is not None and member in devices:
            devices.remove(member)
            if not devices:
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
        arrives live (held until then). A closed member joins nothing: what a
        connection sent after its end must not change shared state.
        """
        if member.closed:
            raise ChatError("bad_state", "the connection is closing")
        room = self.rooms.get(name.key)
        if room is None:
            room = self.rooms[name.key] = Room(self.room_name(name))
            self._list(room.key)
        if member not in room.members:
            devices = room.people.get(member.name.key)
            if devices is None:  # the name's first device in the room: it joins
                self.flush_if_full(room)
                self._publish(room, presence(room.name.spelling, member.name.spelling, "joined"))
                room.people[member.name.key] = [member]
                room.spellings[member.name.key] = member.name.spelling
            else:
                devices.append(member)
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

    def kick(self, room_key: str, name_key: str) -> list[Member]:
        """Take every connection of a name out of a room at once (section 11): what is
        pending there reaches them first, nothing after; the others see `left` `kicked`."""
        room = self.rooms.get(room_key)
        if room is None:
            return []
        gone = [m for m in room.members if m.name.key == name_key]
        if gone:
            self.delivered += room.flush()
        for member in gone:
            self._leave(member, room, "kicked")
        return gone

    def _leave(
        self, member: Member, room: Room, reason: LeaveReason | None, message: str | None = None
    ) -> None:
        del room.members[member]
        del member.rooms[room.key]
        member.holds.pop(room.key, None)
        room.starts.pop(member, None)
        room.variants.pop(member, None)
        devices = room.people.get(member.name.key)
        if devices is not None:
            devices.remove(member)
            if devices:
                return  # another device of the name is still in the room
            del room.people[member.name.key]
            del room.spellings[member.name.key]
        if not room.members:
            del self.rooms[room.key]
            self._dirty.pop(room, None)
            if room.key not in self.known_rooms:
                self._unlist(room.key)
        elif reason is not None:
            self.flush_if_full(room)
            self._publish(
                room, presence(room.name.spelling, member.name.spelling, "left", reason, message)
            )

    def members(self, name: Name) -> tuple[str, list[str]]:
        room = self.rooms.get(name.key)
        if room is None:
            return self.room_name(name).spelling, []
        return room.name.spelling, room.names()

    def _list(self, key: str) -> None:
        at = bisect.bisect_left(self._listed, key)
        if at == len(self._listed) or self._listed[at] != key:
            self._listed.insert(at, key)

    def _unlist(self, key: str) -> None:
        at = bisect.bisect_left(self._listed, key)
        if at < len(self._listed) and self._listed[at] == key:
            del self._listed[at]

    def room_list(
        self, *, after: str | None = None, limit: int | None = None
    ) -> tuple[list[tuple[str, int]], bool]:
        """A page of the rooms with members online or history, by key, with member counts.

        The keys are kept sorted as rooms appear, so a page costs its own
        length, not the number of rooms ever used. `after` is a room key.
        """
        listed = self._listed
        start = 0 if after is None else bisect.bisect_right(listed, after)
        end = len(listed) if limit is None else min(len(listed), start + limit)
        page = []
        for key in listed[start:end]:
            room = self.rooms.get(key)
            if room is not None:
                page.append((room.name.spelling, len(room.people)))
            else:
                page.append((self.known_rooms.get(key, key), 0))
        return page, end < len(listed)

    # ------------------------------------------------------------------ fan-out

    def _publish(self, room: Room, item: Item) -> None:
        room.pending.append(item)
        if room not in self._dirty:
            self._dirty[room] = None
            self._flush_soon.set()

    def flush_if_full(self, room: Room) -> None:
        """Keep each fan-out item below the outbox bound (PROTOCOL.md guarantee 4)."""
        if len(room.pending) >= self.max_batch:
            self.delivered += room.flush()

    def flush(self) -> None:
        """Fan out everything pending, room by room."""
        dirty, self._dirty = self._dirty, {}
        for room in dirty:
            self.delivered += room.flush()

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

    def _recipient(self, draft_recipient: object) -> list[Member]:
        """Who a direct message goes to: the connection it was addressed to, if still open.

        An account's messages (the draft names its Account, or a member of it) go
        to every device online with that account now (the same person); a guest's
        only to the very connection that was online when the message was accepted,
        never to a later holder of the name.
        """
        if isinstance(draft_recipient, Account):
            return self._account_devices(draft_recipient.key)
        if not isinstance(draft_recipient, Member):
            return []
        if draft_recipient.account:
            return self._account_devices(draft_recipient.name.key)
        return [] if draft_recipient.closed else [draft_recipient]

    def _account_devices(self, key: str) -> list[Member]:
        """The devices online with the account of this name key."""
        return [m for m in self.users.get(key, ()) if m.account]

    def publish(self, batch: Iterable[Stored]) -> None:
        """Fan out one committed batch, in id order, then flush it at once."""
        direct: dict[Member, list[bytes]] = {}
        for stored in batch:
            draft, message = stored.draft, stored.message
            origin = draft.origin if isinstance(draft.origin, Member) else None
            if origin is not None and origin.closed:
                origin = None
            if stored.duplicate:
                if origin is not None:
                    direct.setdefault(origin, []).append(_own(origin, message, draft.re))
                continue
            self.last_id = message.id
            if origin is not None and not origin.account and message.type == "message":
                if origin.sent is None:
                    origin.sent = set()
                origin.sent.add(message.id)
            if message.room is not None:
                assert draft.room is not None
                room = self.rooms.get(draft.room.key)
                if room is not None:
                    self.flush_if_full(room)
                    index = len(room.pending)
                    self._publish(room, message)
                else:  # nobody online there: it may be a new room, listed from now on
                    self._list(draft.room.key)
                if origin is None:
                    continue
                if room is not None and origin in room.members:
                    copy = origin.wire.own(message, draft.re)
                    if copy is not None:
                        room.variants.setdefault(origin, {})[index] = copy
                else:  # the sender left the room meanwhile: its answer still comes
                    direct.setdefault(origin, []).append(_own(origin, message, draft.re))
            else:
                reached = self._recipient(draft.recipient)
                if draft.account:  # the sender's other devices see what it sent (section 10)
                    reached += self._account_devices(draft.sender.key)
                for recipient in dict.fromkeys(reached):
                    if recipient is not origin:
                        direct.setdefault(recipient, []).append(recipient.wire.encode(message))
                if origin is not None:
                    direct.setdefault(origin, []).append(_own(origin, message, draft.re))
        self.flush()
        for member, frames in direct.items():
            blob = b"".join(frames)
            if blob:
                member.deliver(blob, len(frames))
                self.delivered += 1

    def fail(self, batch: Iterable[Draft], error: Exception) -> None:
        """A batch could not be committed: each sender still online gets an error, nobody else
        anything (nothing of the batch was stored, so nothing of it is delivered)."""
        refusal = ChatError("unavailable", f"not stored, send it again later: {error}")
        for draft in batch:
            origin = draft.origin
            if isinstance(origin, Member) and not origin.closed:
                origin.owner.refuse(draft.re, refusal)


def _own(member: Member, message: Entry, re: RequestId | None) -> bytes:
    """The sender's copy of its message, as its door wants it."""
    copy = member.wire.own(message, re)
    return member.wire.encode(message) if copy is None else copy


def presence(
    room: str, name: str, state: str, reason: str | None = None, message: str | None = None
) -> Presence:
    """A presence item, encoded once per wire variant at its flush."""
    return Presence(
        room=room,
        name=name,
        state=state,  # type: ignore[arg-type]
        ts=now_ts(),
        reason=reason,  # type: ignore[arg-type]
        message=message,
    )
