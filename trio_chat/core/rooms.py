"""Rooms' rules (PROTOCOL.md section 11): owners, ops, topics, private rooms, kicks, bans, admins.

`RULES` is the one table of who may do what: role x act x kind of room -> allowed, or
the error. `Moderation` keeps every room's record in memory (loaded from the store at
start, written through on each act) and applies the acts to the hub at once: a kicked
connection is out of the room before anything else is fanned out there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, Protocol, cast, runtime_checkable

import trio

from ..confusables import LookAlikes
from ..hub import Member, Room
from ..protocol import Bye, RequestId
from ..protocol.moderation import (
    BanInfo,
    BanList,
    Banned,
    Invited,
    Kicked,
    RoomEvent,
    RoomState,
)
from ..rooms_store import (
    Act,
    Ban,
    RoomRecord,
    RoomsStore,
    Statement,
    add_ban,
    add_role,
    log_act,
    now,
    remove_ban,
    remove_role,
    set_owner,
    set_private,
)
from ..store import Account, Draft, StoreError
from .errors import ChatError, ErrorCode
from .rules import Name, name_key

if TYPE_CHECKING:
    from .chat import Chat

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 2.0  # how often the admin command's acts are picked up

# --------------------------------------------------------------------------- the table

RoleName = Literal["admin", "owner", "op", "member", "invited", "outsider"]
ActName = Literal[
    "join", "topic", "private", "owner", "invite", "kick", "ban", "unban", "bans", "op", "deop",
    "delete",
]  # fmt: skip
Kind = Literal["public", "private", "ownerless", "ownerless_private"]
ROLES: Final[tuple[RoleName, ...]] = ("admin", "owner", "op", "member", "invited", "outsider")
KINDS: Final[tuple[Kind, ...]] = ("public", "private", "ownerless", "ownerless_private")

_OK: Final = None
_ALL_KINDS: Final = frozenset(KINDS)
_OWNED: Final = frozenset({"public", "private"})
_OWNERLESS: Final = frozenset({"ownerless", "ownerless_private"})
_PUBLIC: Final = frozenset({"public", "ownerless"})


def _row(**allowed: frozenset[str]) -> dict[RoleName, frozenset[str]]:
    return {role: allowed.get(role, frozenset()) for role in ROLES}


# act -> role -> the kinds of room where that role may do it
_MAY: Final[dict[ActName, dict[RoleName, frozenset[str]]]] = {
    "join": _row(
        admin=_ALL_KINDS,
        owner=_ALL_KINDS,
        op=_ALL_KINDS,
        member=_ALL_KINDS,
        invited=_ALL_KINDS,
        outsider=_PUBLIC,
    ),
    "topic": _row(admin=_ALL_KINDS, owner=_ALL_KINDS, op=_ALL_KINDS, member=_OWNERLESS),
    "private": _row(admin=_ALL_KINDS, owner=_OWNED),
    "owner": _row(admin=_ALL_KINDS),
    "invite": _row(admin=_ALL_KINDS, owner=_ALL_KINDS, op=_ALL_KINDS),
    "kick": _row(admin=_ALL_KINDS, owner=_ALL_KINDS, op=_ALL_KINDS),
    "ban": _row(admin=_ALL_KINDS, owner=_ALL_KINDS, op=_ALL_KINDS),
    "unban": _row(admin=_ALL_KINDS, owner=_ALL_KINDS, op=_ALL_KINDS),
    "bans": _row(admin=_ALL_KINDS, owner=_ALL_KINDS, op=_ALL_KINDS),
    "op": _row(admin=_ALL_KINDS, owner=_OWNED),
    "deop": _row(admin=_ALL_KINDS, owner=_OWNED),
    "delete": _row(admin=_ALL_KINDS, owner=_ALL_KINDS, op=_ALL_KINDS),
}


def decide(role: RoleName, act: ActName, kind: Kind) -> ErrorCode | None:
    """The rule: None when `role` may do `act` in a room of `kind`, else the error code.

    A topic from someone outside a public room without owner is `not_in_room` (the room
    shows to them); anything else refused is `forbidden`.
    """
    if kind in _MAY[act][role]:
        return _OK
    if act == "topic" and role in ("invited", "outsider") and kind == "ownerless":
        return "not_in_room"
    return "forbidden"


RULES: Final[dict[tuple[RoleName, ActName, Kind], ErrorCode | None]] = {
    (role, act, kind): decide(role, act, kind) for role in ROLES for act in _MAY for kind in KINDS
}

_RANK: Final[dict[RoleName, int]] = {
    "admin": 3, "owner": 3, "op": 2, "member": 1, "invited": 1, "outsider": 1,
}  # fmt: skip


def kind_of(record: RoomRecord | None) -> Kind:
    if record is None or record.owner is None:
        return "ownerless_private" if record is not None and record.private else "ownerless"
    return "private" if record.private else "public"


# --------------------------------------------------------------------------- delivery


@runtime_checkable
class Listener(Protocol):
    """A door's session that shows section 11's events (kicked, invited, room...)."""

    def room_event(self, event: RoomEvent) -> None:
        """Show the event to this connection in the door's words."""


def notify(member: Member, event: RoomEvent) -> None:
    owner = member.owner
    if not member.closed and isinstance(owner, Listener):
        owner.room_event(event)


@dataclass(frozen=True, slots=True)
class RoomView:
    """What `joined` shows of a room beside its members and history."""

    topic: str
    owner: str | None
    ops: tuple[str, ...]
    private: bool
    topic_by: str | None = None
    topic_ts: str | None = None


@dataclass(slots=True)
class _TempOp:
    """The first member of an empty room without owner: an op while it stays (its devices)."""

    room: Room
    key: str
    members: set[Member] = field(default_factory=set)


class Moderation:
    """Section 11 over the hub and the store: every check and act, whatever the door."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.hub = chat.hub
        self.store = chat.store
        self.db = RoomsStore(chat.store)
        self.records: dict[str, RoomRecord] = self.db.rooms
        self.server_bans: dict[str, Ban] = self.db.server_bans
        self._server_shapes = _shapes(self.server_bans.values())
        self._ban_shapes: dict[str, LookAlikes] = {}
        self._temp_ops: dict[str, _TempOp] = {}
        self._admins: tuple[tuple[str, ...], frozenset[str]] = ((), frozenset())

    # ------------------------------------------------------------------ roles

    def admins(self) -> frozenset[str]:
        """The keys of `--admin` names (read each time: SIGHUP may change them)."""
        names = tuple(self.chat.config.admin)
        if self._admins[0] != names:
            self._admins = (names, frozenset(name_key(n) for n in names))
        return self._admins[1]

    def is_admin(self, member: Member) -> bool:
        return member.account and member.name.key in self.admins()

    def role(self, member: Member, room_key: str) -> RoleName:
        """What the connection is to the room: the highest role it has."""
        record = self.records.get(room_key)
        key = member.name.key
        if member.account:
            if key in self.admins():
                return "admin"
            if record is not None and record.owner is not None:
                if name_key(record.owner) == key:
                    return "owner"
                if key in record.ops:
                    return "op"
        if (record is None or record.owner is None) and self._temp_op(room_key, key):
            return "op"
        if room_key in member.rooms:
            return "member"
        if member.account and record is not None and key in record.invited:
            return "invited"
        return "outsider"

    def _rank_of_name(self, room_key: str, name: Name) -> int:
        """How high a name (not a connection) stands in a room, for who may kick whom."""
        record = self.records.get(room_key)
        account = name.key in self.store.accounts
        if account and name.key in self.admins():
            return 3
        if record is not None and record.owner is not None:
            if name_key(record.owner) == name.key:
                return 3
            if account and name.key in record.ops:
                return 2
        elif self._temp_op(room_key, name.key):
            return 2
        return 1

    def _temp_op(self, room_key: str, key: str) -> bool:
        temp = self._temp_ops.get(room_key)
        if temp is None or temp.key != key:
            return False
        room = self.hub.rooms.get(room_key)
        if room is not temp.room or not any(m in room.members for m in temp.members):
            del self._temp_ops[room_key]
            return False
        return True

    def check(self, member: Member, act: ActName, room_key: str) -> RoleName:
        """The member's role, when it may do `act` there; else the rule's error."""
        role = self.role(member, room_key)
        error = decide(role, act, kind_of(self.records.get(room_key)))
        if error is not None:
            raise ChatError(error, _REFUSALS.get(act, "you may not do that here"))
        return role

    def moderates(self, member: Member, room_key: str | None) -> bool:
        """Owners, ops and server admins moderate a room (delete others' messages)."""
        if room_key is None:
            return False
        kind = kind_of(self.records.get(room_key))
        return decide(self.role(member, room_key), "delete", kind) is None

    def visible(self, member: Member | None, room_key: str) -> bool:
        """A private room does not exist for whoever may not join it."""
        record = self.records.get(room_key)
        if record is None or not record.private or member is None:
            return record is None or not record.private
        return self._may_join(member, room_key)

    def _may_join(self, member: Member, room_key: str) -> bool:
        role = self.role(member, room_key)
        return decide(role, "join", kind_of(self.records.get(room_key))) is None

    def banned(self, room_key: str, name: Name) -> Ban | None:
        """The room's ban on the name or on a name that looks the same."""
        record = self.records.get(room_key)
        if record is None or not record.bans:
            return None
        found = record.bans.get(name.key)
        if found is not None:
            return found
        shapes = self._ban_shapes.get(room_key)
        if shapes is None:
            shapes = self._ban_shapes[room_key] = _shapes(record.bans.values())
        if shapes.clash(name):
            return next(iter(record.bans.values()))
        return None

    def server_banned(self, name: Name) -> bool:
        return name.key in self.server_bans or self._server_shapes.clash(name)

    # ------------------------------------------------------------------ the core's hooks

    def check_login(self, name: Name) -> None:
        if self.server_banned(name):
            raise ChatError("banned", "that name is banned from this server")

    def admit(self, member: Member, room: Name) -> bool:
        """May the member join (else `forbidden` or `banned`); True when it creates the room."""
        key = room.key
        if key not in member.rooms:
            role = self.role(member, key)
            if decide(role, "join", kind_of(self.records.get(key))) is not None:
                raise ChatError("forbidden", f"{room.spelling} is private")
            if role not in ("admin", "owner") and self.banned(key, member.name) is not None:
                raise ChatError("banned", f"you are banned from {room.spelling}")
        return key not in self.hub.rooms and key not in self.store.rooms

    async def joined(self, member: Member, room: Room, *, empty: bool, fresh: bool) -> None:
        """After the hub took the member in: an account creating the room owns it; the first
        member of an empty room without owner is an op while it stays."""
        key = room.key
        record = self.records.get(key)
        if record is not None and record.owner is not None:
            return
        if fresh and member.account:
            record = self._record(key)
            record.owner = member.name.spelling
            try:
                await self._write([set_owner(key, record.owner)])
            except ChatError:
                record.owner = None
                raise
            self._temp_ops.pop(key, None)
            return
        temp = self._temp_ops.get(key)
        if empty or temp is None or not self._temp_op(key, temp.key):
            if empty:
                self._temp_ops[key] = _TempOp(room, member.name.key, {member})
        elif temp.key == member.name.key:
            temp.members.add(member)

    def parted(self, member: Member, room_key: str) -> None:
        temp = self._temp_ops.get(room_key)
        if temp is not None:
            temp.members.discard(member)

    def view(self, room_key: str) -> RoomView:
        record = self.records.get(room_key) or RoomRecord(room_key)
        owner = None if record.owner is None else name_key(record.owner)
        ops = tuple(spelling for key, spelling in record.ops.items() if key != owner)
        if record.owner is None:
            temp = self._temp_ops.get(room_key)
            if temp is not None and self._temp_op(room_key, temp.key):
                ops = (*ops, next(iter(temp.members)).name.spelling)
        return RoomView(
            record.topic, record.owner, ops, record.private, record.topic_by, record.topic_ts
        )

    def operators(self, room_key: str) -> set[str]:
        """The keys shown as `@` on IRC: the owner, the ops, a temporary op."""
        record = self.records.get(room_key)
        keys: set[str] = set()
        if record is not None and record.owner is not None:
            keys.add(name_key(record.owner))
            keys.update(record.ops)
        temp = self._temp_ops.get(room_key)
        if (record is None or record.owner is None) and temp is not None:
            keys.update([temp.key] if self._temp_op(room_key, temp.key) else [])
        return keys

    def readable_rooms(self, member: Member) -> list[str]:
        """The keys of the rooms whose messages the member may read now (search's scope)."""
        return [key for key in member.rooms if self.visible(member, key)]

    # ------------------------------------------------------------------ acts

    async def topic(
        self, member: Member, room: Name, text: str, *, re: RequestId | None = None
    ) -> None:
        """Set the topic: a `topic` entry in the log, answered with its fan-out."""
        if member.closed:
            raise ChatError("bad_state", "the connection is closing")
        self._visible_or_forbidden(member, room)
        self.check(member, "topic", room.key)
        place = self.hub.room_name(room)
        record = self._record(room.key)
        record.topic, record.topic_by, record.topic_ts = text, member.name.spelling, now()
        draft = Draft(
            member.name, text, room=place, re=re, origin=member, kind="topic",
            account=member.account,
        )  # fmt: skip
        await self.store.submit(draft)
        self._log(member, "topic", place.spelling, None, "", text)

    async def set_room(
        self,
        member: Member,
        room: Name,
        *,
        private: bool | None = None,
        owner: Name | None = None,
        re: RequestId | None = None,
    ) -> RoomState:
        """Make a room private or public (owner), or give it an owner (server admins)."""
        self._visible_or_forbidden(member, room)
        if private is not None:
            self.check(member, "private", room.key)
        if owner is not None:
            self.check(member, "owner", room.key)
            owner = self._account(owner)
        place = self.hub.room_name(room)
        record = self._record(room.key)
        statements: list[Statement] = []
        changes: list[str] = []
        if owner is not None and record.owner != owner.spelling:
            statements += [
                set_owner(room.key, owner.spelling),
                remove_role(room.key, "op", owner.spelling),
                log_act(member.name.spelling, "owner", place.spelling, owner.spelling),
            ]
        newly_private = private is True and not record.private
        invite: list[str] = []
        kick: list[Name] = []
        if private is not None and private != record.private:
            statements.append(set_private(room.key, private))
            what = "private" if private else "public"
            statements.append(log_act(member.name.spelling, what, place.spelling, None))
            changes.append("+i" if private else "-i")
        if newly_private:  # the accounts in it are invited; guests in it are kicked
            hub_room = self.hub.rooms.get(room.key)
            for m in list(hub_room.members) if hub_room is not None else []:
                if m.account:
                    if m.name.key not in record.invited and m.name.spelling not in invite:
                        invite.append(m.name.spelling)
                elif m.name not in kick:
                    kick.append(m.name)
            statements += [add_role(room.key, "invited", s) for s in invite]
        await self._write(statements)
        if owner is not None:
            record.owner = owner.spelling
            record.ops.pop(owner.key, None)
            self._temp_ops.pop(room.key, None)
            changes.append(f"+o {owner.spelling}")
        if private is not None:
            record.private = private
        for spelling in invite:
            record.invited[name_key(spelling)] = spelling
        for name in kick:
            self._eject(room.key, place.spelling, name, member.name.spelling, "the room is private")
        for what in changes:
            self._log(member, "set", place.spelling, owner.spelling if owner else None, "", what)
        return self._announce(member, place, " ".join(changes), re)

    async def invite(
        self, member: Member, room: Name, name: Name, *, re: RequestId | None = None
    ) -> Invited:
        self._visible_or_forbidden(member, room)
        self.check(member, "invite", room.key)
        name = self._account(name)
        place = self.hub.room_name(room)
        record = self._record(room.key)
        if name.key not in record.invited:
            await self._write(
                [add_role(room.key, "invited", name.spelling),
                 log_act(member.name.spelling, "invite", place.spelling, name.spelling)]
            )  # fmt: skip
            record.invited[name.key] = name.spelling
        self._log(member, "invite", place.spelling, name.spelling)
        event = Invited(place.spelling, name.spelling, member.name.spelling)
        told = {member}
        for m in self._connections(name.key) + self._moderators_in(room.key):
            if m not in told:
                told.add(m)
                notify(m, event)
        return Invited(place.spelling, name.spelling, member.name.spelling, re)

    async def kick(
        self, member: Member, room: Name, name: Name, reason: str = "",
        *, re: RequestId | None = None,
    ) -> Kicked:  # fmt: skip
        """Every device of the name leaves the room at once; a private room's invitation
        is taken back."""
        self._visible_or_forbidden(member, room)
        self.check(member, "kick", room.key)
        place = self.hub.room_name(room)
        name = self._spelled(name, room.key)
        self._may_remove(member, room.key, name)
        record = self.records.get(room.key)
        here = self.hub.rooms.get(room.key)
        present = here is not None and any(m.name.key == name.key for m in here.members)
        if not present and (record is None or name.key not in record.invited):
            raise ChatError("no_such_user", f"{name.spelling} is not in {place.spelling}")
        self._eject(room.key, place.spelling, name, member.name.spelling, reason, skip=member)
        statements = [log_act(member.name.spelling, "kick", place.spelling, name.spelling, reason)]
        if record is not None and record.private and name.key in record.invited:
            del record.invited[name.key]
            statements.append(remove_role(room.key, "invited", name.spelling))
        await self._write(statements)
        self._log(member, "kick", place.spelling, name.spelling, reason)
        return Kicked(place.spelling, name.spelling, member.name.spelling, reason, re)

    async def ban(
        self, member: Member, room: Name | None, name: Name, reason: str = "",
        *, re: RequestId | None = None,
    ) -> Banned:  # fmt: skip
        """A kick, then the name and its look-alikes cannot join; without room, server-wide."""
        if room is None:
            return await self.server_ban(member, name, reason, re=re)
        self._visible_or_forbidden(member, room)
        self.check(member, "ban", room.key)
        place = self.hub.room_name(room)
        name = self._spelled(name, room.key)
        self._may_remove(member, room.key, name)
        record = self._record(room.key)
        ban = Ban(name.spelling, member.name.spelling, reason, now())
        record.bans[name.key] = ban
        self._ban_shapes.pop(room.key, None)
        had = (record.ops.pop(name.key, None), record.invited.pop(name.key, None))
        self._eject(room.key, place.spelling, name, member.name.spelling, reason, skip=member)
        try:
            await self._write(
                [add_ban(room.key, ban), remove_role(room.key, "op", name.spelling),
                 remove_role(room.key, "invited", name.spelling),
                 log_act(member.name.spelling, "ban", place.spelling, name.spelling, reason)]
            )  # fmt: skip
        except ChatError:
            record.bans.pop(name.key, None)
            self._ban_shapes.pop(room.key, None)
            if had[0] is not None:
                record.ops[name.key] = had[0]
            if had[1] is not None:
                record.invited[name.key] = had[1]
            raise
        self._log(member, "ban", place.spelling, name.spelling, reason)
        return Banned(place.spelling, name.spelling, member.name.spelling, reason, re)

    async def unban(
        self, member: Member, room: Name | None, name: Name, *, re: RequestId | None = None
    ) -> Banned:
        if room is None:
            raise ChatError("forbidden", "a server-wide ban is lifted with the admin command")
        self._visible_or_forbidden(member, room)
        self.check(member, "unban", room.key)
        place = self.hub.room_name(room)
        record = self._record(room.key)
        ban = record.bans.get(name.key)
        if ban is not None:
            await self._write(
                [remove_ban(room.key, name.spelling),
                 log_act(member.name.spelling, "unban", place.spelling, ban.name)]
            )  # fmt: skip
            record.bans.pop(name.key, None)
            self._ban_shapes.pop(room.key, None)
            name = Name(ban.name, name.key)
        self._log(member, "unban", place.spelling, name.spelling)
        return Banned(place.spelling, name.spelling, re=re, lifted=True)

    def bans(self, member: Member, room: Name, *, re: RequestId | None = None) -> BanList:
        self._visible_or_forbidden(member, room)
        self.check(member, "bans", room.key)
        record = self.records.get(room.key)
        found = () if record is None else record.bans.values()
        infos = tuple(BanInfo(b.name, b.by, b.reason, b.ts) for b in found)
        return BanList(self.hub.room_name(room).spelling, infos, re)

    async def op(
        self, member: Member, room: Name, name: Name, *, give: bool, re: RequestId | None = None
    ) -> RoomState:
        """Make an account an op of the room, or take it back (the owner, admins)."""
        self._visible_or_forbidden(member, room)
        self.check(member, "op" if give else "deop", room.key)
        name = self._account(name)
        place = self.hub.room_name(room)
        record = self._record(room.key)
        if record.owner is not None and name_key(record.owner) == name.key:
            raise ChatError("forbidden", "the owner is more than an op")
        act = "op" if give else "deop"
        if (name.key in record.ops) != give:
            statement = add_role if give else remove_role
            await self._write(
                [statement(room.key, "op", name.spelling),
                 log_act(member.name.spelling, act, place.spelling, name.spelling)]
            )  # fmt: skip
            if give:
                record.ops[name.key] = name.spelling
            else:
                record.ops.pop(name.key, None)
        self._log(member, act, place.spelling, name.spelling)
        return self._announce(member, place, f"{'+' if give else '-'}o {name.spelling}", re)

    async def server_ban(
        self, member: Member, name: Name, reason: str = "", *, re: RequestId | None = None
    ) -> Banned:
        """Server admins: close the name's connections (and look-alikes'), refuse its hello."""
        if not self.is_admin(member):
            raise ChatError("forbidden", "only server admins ban from the server")
        if name.key in self.admins() and name.key in self.store.accounts:
            raise ChatError("forbidden", "a server admin cannot be banned")
        spelled = self._spelling(name)
        ban = Ban(spelled.spelling, member.name.spelling, reason, now())
        await self._write(
            [add_ban("", ban), log_act(member.name.spelling, "ban", None, ban.name, reason)]
        )
        self.apply_server_bans({**self.server_bans, spelled.key: ban})
        self._log(member, "ban", None, spelled.spelling, reason)
        return Banned(None, spelled.spelling, member.name.spelling, reason, re)

    def apply_server_bans(self, bans: dict[str, Ban]) -> None:
        """The server-wide bans are now `bans`: close the connections of every name banned."""
        self.server_bans = self.db.server_bans = bans
        self._server_shapes = _shapes(bans.values())
        for member in self._all_connections():
            if not member.closed and self.server_banned(member.name):
                member.owner.close(Bye("banned", "you are banned from this server"), "kicked")

    # ------------------------------------------------------------------ the admin command

    async def watch(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Pick up the admin command's acts every POLL_SECONDS (bans, accounts)."""
        task_status.started()
        while True:
            await trio.sleep(POLL_SECONDS)
            await self.poll_once()

    async def poll_once(self) -> None:
        try:
            acts, bans = await self.db.poll()
        except StoreError as exc:
            log.warning("reading the admin command's acts: %s", exc, extra={"event": "store_error"})
            return
        if bans != self.server_bans:
            self.apply_server_bans(bans)
        for act in acts:
            await self._admin_act(act)

    async def _admin_act(self, act: Act) -> None:
        log.info(
            "moderation: %s %s %s (admin command)", act.actor, act.act, act.target or "",
            extra={"event": "moderation", "actor": act.actor, "act": act.act,
                   "target": act.target, "room": act.room, "reason": act.reason,
                   "origin": "admin"},
        )  # fmt: skip
        if act.act not in ("password", "delete_account") or act.target is None:
            return
        key = name_key(act.target)
        try:
            row = await self.db.account(key)
        except StoreError:
            return
        accounts = self.store.accounts
        if row is None:
            gone = accounts.pop(key, None)
            if gone is not None:
                self.hub._account_shapes.remove(Name(gone.name, key))
        else:
            accounts[key] = Account(*row)

    # ------------------------------------------------------------------ helpers

    def _record(self, key: str) -> RoomRecord:
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = RoomRecord(key)
        return record

    async def _write(self, statements: list[Statement]) -> None:
        if not statements:
            return
        try:
            await self.db.write(statements)
        except StoreError as exc:
            self.store.errors += 1
            log.warning("%s", exc, extra={"event": "store_error"})
            raise ChatError("unavailable", str(exc)) from None

    def _visible_or_forbidden(self, member: Member, room: Name) -> None:
        if not self.visible(member, room.key):
            raise ChatError("forbidden", f"{room.spelling} is private")

    def _account(self, name: Name) -> Name:
        account = self.store.accounts.get(name.key)
        if account is None:
            raise ChatError("no_such_user", f"{name.spelling} has no account")
        return Name(account.name, account.key)

    def _spelling(self, name: Name) -> Name:
        account = self.store.accounts.get(name.key)
        if account is not None:
            return Name(account.name, account.key)
        online = self._connections(name.key)
        return online[0].name if online else name

    def _spelled(self, name: Name, room_key: str) -> Name:
        room = self.hub.rooms.get(room_key)
        for m in room.members if room is not None else ():
            if m.name.key == name.key:
                return m.name
        return self._spelling(name)

    def _may_remove(self, member: Member, room_key: str, name: Name) -> None:
        """The owner and admins cannot be kicked or banned; ops only by the owner or admins."""
        record = self.records.get(room_key)
        if record is not None and record.owner is not None and name_key(record.owner) == name.key:
            raise ChatError("forbidden", "the owner cannot be kicked or banned")
        mine = _RANK[self.role(member, room_key)]
        if self._rank_of_name(room_key, name) >= mine:
            raise ChatError("forbidden", f"you may not remove {name.spelling}")

    def _eject(
        self, room_key: str, room: str, name: Name, by: str, reason: str,
        *, skip: Member | None = None,
    ) -> None:  # fmt: skip
        """Out of the room now (its pending items first), then `kicked` to each device."""
        gone = self.hub.kick(room_key, name.key)
        event = Kicked(room, name.spelling, by, reason)
        for m in gone:
            self.parted(m, room_key)
            if m is not skip:
                notify(m, event)

    def _announce(
        self, member: Member, place: Name, change: str, re: RequestId | None
    ) -> RoomState:
        """`room` to every member of the room but the actor, who gets the answer (with re)."""
        view = self.view(place.key)
        state = RoomState(
            place.spelling, view.owner, view.ops, view.private, None, change, member.name.spelling
        )
        room = self.hub.rooms.get(place.key)
        for m in list(room.members) if room is not None else []:
            if m is not member:
                notify(m, state)
        return RoomState(
            place.spelling, view.owner, view.ops, view.private, re, change, member.name.spelling
        )

    def _moderators_in(self, room_key: str) -> list[Member]:
        room = self.hub.rooms.get(room_key)
        if room is None:
            return []
        return [m for m in room.members if _RANK[self.role(m, room_key)] >= 2]

    def _connections(self, key: str) -> list[Member]:
        """Every connection of a name (one, or its devices)."""
        held: object = self.hub.users.get(key)
        if held is None:
            return []
        if isinstance(held, Member):
            return [held]
        return list(cast(Iterable[Member], held))

    def _all_connections(self) -> list[Member]:
        found: list[Member] = []
        for key in list(self.hub.users):
            found += self._connections(key)
        return found

    def _log(
        self, member: Member, act: str, room: str | None, target: str | None,
        reason: str = "", detail: str = "",
    ) -> None:  # fmt: skip
        log.info(
            "moderation: %s %s %s%s", member.name.spelling, act, target or "",
            f" in {room}" if room else "",
            extra={"event": "moderation", "actor": member.name.spelling, "act": act,
                   "room": room, "target": target, "reason": reason, "detail": detail},
        )  # fmt: skip


_REFUSALS: Final[dict[str, str]] = {
    "join": "that room is private",
    "topic": "only the room's ops set its topic",
    "private": "only the room's owner makes it private or public",
    "owner": "only server admins give rooms an owner",
    "op": "only the room's owner makes ops",
    "deop": "only the room's owner makes ops",
}


def _shapes(bans: Iterable[Ban]) -> LookAlikes:
    shapes = LookAlikes()
    for ban in bans:
        shapes.add(Name(ban.name, name_key(ban.name)))
    return shapes
