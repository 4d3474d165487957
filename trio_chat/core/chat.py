"""The chat's rules: logins and accounts, joining and parting, saying, history, who, rooms.

No wire format here: a door decodes a request, calls one of these methods with
typed values, and encodes the typed result, or the `ChatError` it raises.
Whatever door a request came through, the same rule answers it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..accounts import PasswordHasher
from ..config import Config
from ..hub import Hub, Member, Owner, Wire
from ..logins import LoginGuard, client_key, refusal_message
from ..outbox import Outbox
from ..protocol import Bye, Entry, Message, RequestId
from ..protocol.markers import DirectInfo, Marked
from ..store import (
    Account,
    Draft,
    Original,
    SearchTooBroad,
    Store,
    StoreError,
    direct_conv,
    room_conv,
)
from .errors import ChatError
from .rooms import Moderation, RoomView
from .rules import Name, name_key
from .search import SEARCH_DEFAULT_LIMIT, match_expression

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JoinResult:
    """What a join answers: the room as it is spelled, its members, and the history page."""

    room: str
    members: tuple[str, ...]
    history: tuple[Entry, ...]
    more: bool
    read: int | None = None  # section 10: an account's read marker of the room
    view: RoomView | None = None  # section 11: topic, owner, ops, private
    read_ts: str | None = None  # section 10: the time of the marker's entry (IRC marks by time)


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """A page of a room (`room`) or of a direct conversation (`with_`), oldest first."""

    messages: tuple[Entry, ...]
    more: bool
    room: str | None = None
    with_: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What a search answers: the messages found, newest first; `more`: older ones exist."""

    messages: tuple[Message, ...]
    more: bool


class Chat:
    """The rules every door shares, over the hub (who is online) and the store (what was said)."""

    def __init__(
        self,
        config: Config,
        hub: Hub,
        store: Store,
        hasher: PasswordHasher,
        guard: LoginGuard | None = None,
    ) -> None:
        self.config = config
        self.hub = hub
        self.store = store
        self.hasher = hasher
        self.guard = LoginGuard() if guard is None else guard
        # the additions of PROTOCOL.md sections 9 to 13 this server speaks (welcome.features)
        irc = config.irc_port is not None or config.irc_tls_port is not None
        self.features: tuple[str, ...] = ("edit", "search", "devices", "markers", "moderation") + (
            ("irc",) if irc else ()
        )
        self.moderation = Moderation(self)

    # ------------------------------------------------------------------ names

    async def login(
        self,
        name: Name,
        password: str | None,
        *,
        owner: Owner,
        outbox: Outbox,
        wire: Wire,
        peer: str,
        host: str,
        device: str | None = None,
    ) -> Member | None:
        """Check the name and password, make the account if asked, and take the name.

        Returns the member online under the name, or None when the connection
        closed while the password was checked. An older connection of the
        same account and `device` label is replaced (section 10). `host` is the
        client's address: failed logins are limited per address, and hash slots
        shared fairly by it.
        """
        address = client_key(host)
        self.moderation.check_login(name)  # a server-wide ban (section 11)
        account = self.store.accounts.get(name.key)
        if account is not None:
            if password is None:
                raise ChatError("auth_failed", "wrong or missing password for this name")
            await self._verify(address, account, password)
            name = Name(account.name, account.key)
        elif password is not None:
            account = await self._create_account(name, password, address)
        else:
            self.check_free(name)
        if outbox.closed:
            return None  # closed (a timeout, say) while the password was checked
        member = Member(name, outbox, owner, account=account is not None, wire=wire, device=device)
        for previous in self.hub.take(member):
            previous.owner.close(Bye("replaced", "you logged in from somewhere else"), "replaced")
        log.info(
            "%s: welcome %s%s", peer, name.spelling, " (account)" if account else "",
            extra={"event": "welcome", "user": name.spelling},
        )  # fmt: skip
        return member

    async def _verify(self, address: str, account: Account, password: str) -> None:
        """The password is right, or `auth_failed`; an address that keeps failing waits first."""
        wait = self.guard.check(address, account.key)
        if wait:
            raise ChatError("auth_failed", refusal_message(wait))
        right = False
        try:
            right = await self.hasher.verify(password, account.hash, who=address)
        finally:  # a connection dropped mid-hash counts as a failure
            (self.guard.succeeded if right else self.guard.failed)(address, account.key)
        if not right:
            raise ChatError("auth_failed", "wrong or missing password for this name")

    async def _create_account(self, name: Name, password: str, address: str) -> Account:
        """Make an account for a free name; its look-alikes stay taken while the hash runs.

        Its direct-message history starts after every message accepted for the
        name before the account existed (a guest's mail is not the account's).
        """
        hub = self.hub
        self.check_free(name)
        hub.reserve(name)
        try:
            digest = await self.hasher.hash(password, who=address)
            await self.store.barrier()  # everything sent to the guest name is committed first
            account = Account(name.key, name.spelling, digest, self.store.last_id + 1)
            if not await self._guard(self.store.create_account(account)):
                raise ChatError("auth_failed", "that name has an account")
        finally:
            hub.unreserve(name)
        hub.add_account(name)
        return account

    def check_free(self, name: Name) -> None:
        """A name without an account may be taken unless it, or a look-alike, is in use."""
        hub = self.hub
        if hub.online(name) is not None or name.key in hub.creating:
            raise ChatError("name_taken", "that name is online")
        if hub.looks_taken(name):
            raise ChatError("name_taken", "that name looks like a name in use")

    def account_of(self, member: Member) -> Account | None:
        return self.store.accounts.get(member.name.key) if member.account else None

    # ------------------------------------------------------------------ rooms

    async def join(
        self,
        member: Member,
        room: Name,
        *,
        since: int | None,
        limit: int,
        answer: Callable[[JoinResult], None],
    ) -> None:
        """Join (or resume in) a room: `answer` gets the page, then live items follow.

        The answer is queued before anything that arrived for the room while
        the history was read, so history and live delivery are seamless.
        """
        read, read_ts = await self._marker(member, room_conv(room.key))
        resumed = room.key in member.rooms
        fresh = self.moderation.admit(member, room)  # forbidden, banned; True: a new room
        empty = room.key not in self.hub.rooms
        hub_room, names, boundary = self.hub.join(member, room)
        try:
            await self.moderation.joined(member, hub_room, empty=empty, fresh=fresh)
            page = await self._guard(
                self.store.page(
                    room_conv(hub_room.key), after=since or 0, upto=boundary, limit=limit
                )
            )
        except ChatError:
            if resumed:  # still in the room: what came meanwhile goes out as usual
                self.hub.release(member, hub_room)
            else:  # a refused request changes nothing: the new member goes again
                self.hub.part(member, hub_room.key)
            raise
        try:
            answer(
                JoinResult(
                    hub_room.name.spelling,
                    tuple(names),
                    tuple(page.messages),
                    page.more,
                    read,
                    self.moderation.view(hub_room.key),
                    read_ts=read_ts,
                )
            )
        finally:
            self.hub.release(member, hub_room)

    def part(self, member: Member, room: Name) -> str:
        """Leave a room; its spelling."""
        hub_room = self.hub.part(member, room.key)
        if hub_room is None:
            raise ChatError("not_in_room", f"you are not in {room.spelling}")
        self.moderation.parted(member, hub_room.key)
        return hub_room.name.spelling

    def who(self, room: Name, member: Member | None = None) -> tuple[str, list[str]]:
        """A room's members; none of a private room the member may not join (section 11)."""
        if not self.moderation.visible(member, room.key):
            return room.spelling, []
        return self.hub.members(room)

    def rooms(
        self, *, after: str | None = None, limit: int | None = None, member: Member | None = None
    ) -> tuple[list[tuple[str, int]], bool]:
        """A page of the room list, without the private rooms the member may not join."""
        listing, more = self.hub.room_list(after=after, limit=limit)
        if member is not None and self.moderation.records:
            visible = self.moderation.visible
            listing = [r for r in listing if visible(member, name_key(r[0]))]
        return listing, more

    # ------------------------------------------------------------------ messages

    async def say(
        self,
        member: Member,
        text: str,
        *,
        room: Name | None = None,
        to: Name | None = None,
        nonce: str | None = None,
        re: RequestId | None = None,
        reply_to: int | None = None,
        action: bool = False,
    ) -> Message | None:
        """Accept a message for the next commit; its answer comes with the fan-out.

        Returns the message stored earlier under the same nonce when the `say`
        is a repeat that can no longer be delivered (the room was left, the
        recipient went away): the door sends it to the sender alone.
        """
        if member.closed:
            raise ChatError("bad_state", "the connection is closing")
        if room is not None:
            hub_room = member.rooms.get(room.key)
            if hub_room is None:
                if (earlier := await self._resent(member, nonce)) is not None:
                    return earlier
                raise ChatError("not_in_room", f"join {room.spelling} first")
            conv, place, recipient = room_conv(hub_room.key), hub_room.name, None
        else:
            assert to is not None
            recipient = self._addressee(to)
            if recipient is None:
                if (earlier := await self._resent(member, nonce)) is not None:
                    return earlier
                raise ChatError("no_such_user", f"{to.spelling} is neither online nor an account")
            conv = direct_conv(member.name.key, to.key)
            if isinstance(recipient, Member):
                place = recipient.name
            else:  # the account's own spelling
                place = Name(recipient.name, recipient.key)
        if reply_to is not None:
            answered = await self._guard(self.store.original(reply_to))
            if answered is None or answered.deleted or answered.conv != conv:
                raise ChatError("no_such_message", "reply_to is not a message of this conversation")
        # a direct message is addressed to this very connection (or account), never to a
        # later holder of the name
        draft = Draft(
            member.name,
            text,
            room=place if room is not None else None,
            to=place if room is None else None,
            nonce=nonce,
            re=re,
            origin=member,
            recipient=recipient,
            reply_to=reply_to,
            action=action,
            account=member.account,
        )
        await self.store.submit(draft)
        return None

    async def edit(
        self, member: Member, message_id: int, text: str, *, re: RequestId | None = None
    ) -> None:
        """Change one's own message: an `edit` entry in the log; its answer comes with it."""
        original = await self._readable(member, message_id)
        if not self._wrote(member, original):
            raise ChatError("forbidden", "only its author may edit a message")
        await self.store.submit(self._change(member, original, "edit", text, re))

    async def delete(self, member: Member, message_id: int, *, re: RequestId | None = None) -> None:
        """Take a message back: its text and its edits' texts are erased from the store."""
        original = await self._readable(member, message_id)
        if not self._wrote(member, original) and not self.moderates(member, original.room_key):
            raise ChatError("forbidden", "only its author or the room's moderators may delete it")
        await self.store.submit(self._change(member, original, "delete", "", re))

    def moderates(self, member: Member, room_key: str | None) -> bool:
        """Whether the member may moderate a room (section 11): its owner, ops, server admins."""
        return self.moderation.moderates(member, room_key)

    def readable_rooms(self, member: Member) -> list[str]:
        """The keys of the rooms the member may read now (search's scope, section 11)."""
        return self.moderation.readable_rooms(member)

    async def _readable(self, member: Member, message_id: int) -> Original:
        """A message of a conversation the member can read, not deleted: else no_such_message."""
        if member.closed:
            raise ChatError("bad_state", "the connection is closing")
        original = await self._guard(self.store.original(message_id))
        if original is None or original.deleted or not self._reads(member, original):
            raise ChatError("no_such_message", f"no message {message_id} here")
        return original

    def _reads(self, member: Member, original: Original) -> bool:
        if original.room_key is not None:
            return original.room_key in member.rooms
        keys = original.conv[1:].split(" ", 1)
        if member.name.key not in keys:
            return False
        account = self.account_of(member)
        if account is not None:
            return original.id >= account.first_id
        return member.wrote(original.id)  # a guest reads only what this connection sent

    @staticmethod
    def _wrote(member: Member, original: Original) -> bool:
        """The author: the account that sent it, or for a guest the very connection."""
        if original.account:
            return member.account and member.name.key == original.sender_key
        return member.wrote(original.id)

    def _change(
        self, member: Member, original: Original, kind: str, text: str, re: RequestId | None
    ) -> Draft:
        """The draft of an edit or deletion, placed in the original's conversation."""
        room = to = recipient = None
        if original.room_key is not None:
            room = self.hub.room_name(Name(original.room or original.room_key, original.room_key))
        else:
            first, second = original.conv[1:].split(" ", 1)
            other_key = second if first == member.name.key else first
            to = Name(original.to or other_key, original.to_key or other_key)
            # a guest holding the other name now may not be the one written to: only an
            # account is surely the same person (every device of it)
            recipient = self.store.accounts.get(other_key)
        return Draft(
            member.name,
            text,
            room=room,
            to=to,
            re=re,
            origin=member,
            recipient=recipient,
            kind=kind,
            target=original.id,
            account=member.account,
            conv=original.conv,
        )

    def _addressee(self, to: Name) -> Account | Member | None:
        """Who a direct message is for: an account, online or not, reaches all its devices
        (section 10); a guest, the very connection holding the name now; else None."""
        account = self.store.accounts.get(to.key)
        return account if account is not None else self.hub.online(to)

    async def _resent(self, member: Member, nonce: str | None) -> Message | None:
        """The message stored earlier under this sender's nonce, for a `say` sent again."""
        if nonce is None:
            return None
        return await self._guard(self.store.find_nonce(member.name.key, nonce))

    async def history(
        self,
        member: Member,
        *,
        room: Name | None = None,
        with_: Name | None = None,
        before: int | None = None,
        after: int | None = None,
        limit: int,
        newest: bool | None = None,
    ) -> HistoryResult:
        """A page of a room the member is in, or of its direct conversation with a name.

        The entries with after < id < before, oldest first: the newest `limit` of
        them, or the oldest when `after` is given (unless `newest` says otherwise).
        """
        upto = self.hub.last_id
        if before is not None:
            upto = min(upto, before - 1)
        newest = after is None if newest is None else newest
        conv, first, shown = self._conversation(member, room, with_)
        page = await self._guard(
            self.store.page(
                conv, after=max(first - 1, after or 0), upto=upto, limit=limit, newest=newest
            )
        )
        if room is not None:
            return HistoryResult(tuple(page.messages), page.more, room=shown)
        return HistoryResult(tuple(page.messages), page.more, with_=shown)

    def _conversation(
        self, member: Member, room: Name | None, with_: Name | None
    ) -> tuple[str, int, str]:
        """A conversation the member may read: its store key, its first id, its spelling."""
        if room is not None:
            hub_room = member.rooms.get(room.key)
            if hub_room is None:
                raise ChatError("not_in_room", f"join {room.spelling} first")
            return room_conv(hub_room.key), 1, hub_room.name.spelling
        assert with_ is not None
        account = self.account_of(member)
        if account is None:
            raise ChatError("auth_required", "direct-message history needs an account")
        spelling = self.spelling(with_)
        return direct_conv(member.name.key, with_.key), account.first_id, spelling

    async def search(
        self,
        member: Member,
        query: str,
        *,
        room: Name | None = None,
        with_: Name | None = None,
        from_: Name | None = None,
        before: int | None = None,
        limit: int = SEARCH_DEFAULT_LIMIT,
    ) -> SearchResult:
        """Messages with every word of `query`, id < before, newest first (section 9): in the
        given conversation (refused as `history` refuses), else in every one the member may
        read now. A query without any word finds nothing."""
        if room is not None or with_ is not None:
            conv, first, _ = self._conversation(member, room, with_)
            convs, party = [conv], None
        else:
            convs = [room_conv(key) for key in member.rooms]
            account = self.account_of(member)
            party = None if account is None else member.name.key
            first = 1 if account is None else account.first_id
        match = match_expression(query)
        if match is None or (not convs and party is None):
            return SearchResult((), False)
        upto = self.hub.last_id + 1 if before is None else min(before, self.hub.last_id + 1)
        try:
            found, more = await self._guard(
                self.store.search(
                    convs,
                    party,
                    match,
                    before=upto,
                    limit=limit,
                    first_id=first,
                    sender=None if from_ is None else from_.key,
                )
            )
        except SearchTooBroad:
            raise ChatError(
                "invalid_field", "query is too broad to answer in time: use longer words"
            ) from None
        return SearchResult(tuple(m for m in found if isinstance(m, Message)), more)

    async def first_id_at(self, ts: str, *, inclusive: bool = True) -> int:
        """The first id committed at (or after) a timestamp, for references by time."""
        return await self._guard(self.store.first_id_at(ts, inclusive=inclusive))

    async def conversations(
        self, member: Member, *, after: int, before: int, limit: int
    ) -> list[tuple[str | None, str | None, int, str]]:
        """The member's conversations with messages with after < id < before, most recent
        first: (room, with, last id, its ts); direct ones only for an account."""
        rooms = {room_conv(key): room.name.spelling for key, room in member.rooms.items()}
        account = self.account_of(member)
        party = member.name.key if account is not None else None
        found = await self._guard(
            self.store.conversations(
                list(rooms),
                party,
                after=max(after, 0),
                upto=min(before - 1, self.hub.last_id),
                limit=limit,
            )
        )
        listing: list[tuple[str | None, str | None, int, str]] = []
        for conv, last, ts in found:
            if conv in rooms:
                listing.append((rooms[conv], None, last, ts))
            elif account is not None and last >= account.first_id:
                first, second = conv[1:].split(" ", 1)
                other_key = second if first == member.name.key else first
                online = self.hub.online(Name(other_key, other_key))
                other = self.store.accounts.get(other_key)
                spelling = online.name.spelling if online else other.name if other else other_key
                listing.append((None, spelling, last, ts))
        return listing

    # ------------------------------------------------------------------ read markers

    def spelling(self, name: Name) -> str:
        """How a name is shown: its account's spelling, else the one online, else as given."""
        account = self.store.accounts.get(name.key)
        if account is not None:
            return account.name
        online = self.hub.online(name)
        return name.spelling if online is None else online.name.spelling

    async def _marker(self, member: Member, conv: str) -> tuple[int | None, str | None]:
        """An account's read marker of a conversation (0: none; None for a guest), and the
        time of its entry."""
        account = self.account_of(member)
        if account is None:
            return None, None
        return await self._guard(self.store.marker(account.key, conv))

    async def mark(
        self,
        member: Member,
        upto: int,
        *,
        room: Name | None = None,
        with_: Name | None = None,
        re: RequestId | None = None,
    ) -> tuple[Marked, str | None]:
        """Move the account's read marker of a room it is in, or of a direct conversation,
        forward to `upto` (section 10). The answer carries the marker as it is now, and the
        time of its entry (for IRC); when it moved, the account's other devices are told."""
        account, conv, shown = self._marked(member, room, with_)
        if upto > self.hub.last_id:
            raise ChatError("invalid_field", f"upto: there is no message {upto} yet")
        marker = await self._guard(self.store.set_marker(account.key, conv, upto))
        marked = dataclasses.replace(shown, upto=marker.upto)
        if marker.moved:
            for device in self.hub.devices(member.name):
                if device is not member and device.account and not device.closed:
                    data = device.wire.marker(marked, marker.ts)
                    if data:
                        device.deliver(data, 1)
        return dataclasses.replace(marked, re=re), marker.ts

    async def read_marker(
        self, member: Member, *, room: Name | None = None, with_: Name | None = None
    ) -> tuple[Marked, str | None]:
        """The account's read marker of a conversation, and the time of its entry."""
        account, conv, shown = self._marked(member, room, with_)
        upto, ts = await self._guard(self.store.marker(account.key, conv))
        return dataclasses.replace(shown, upto=upto), ts

    def _marked(
        self, member: Member, room: Name | None, with_: Name | None
    ) -> tuple[Account, str, Marked]:
        """The account, the conversation's store key and how a marker of it is shown."""
        account = self.account_of(member)
        if account is None:
            raise ChatError("auth_required", "read markers need an account")
        if room is not None:
            hub_room = member.rooms.get(room.key)
            if hub_room is None:
                raise ChatError("not_in_room", f"join {room.spelling} first")
            return account, room_conv(hub_room.key), Marked(0, room=hub_room.name.spelling)
        assert with_ is not None
        conv = direct_conv(member.name.key, with_.key)
        return account, conv, Marked(0, with_=self.spelling(with_))

    async def directs(self, member: Member) -> list[DirectInfo]:
        """The account's direct conversations, the most recent first, with markers (section 10)."""
        account = self.account_of(member)
        if account is None:
            raise ChatError("auth_required", "direct conversations need an account")
        found = await self._guard(
            self.store.directs(account.key, first_id=account.first_id, upto=self.hub.last_id)
        )
        return [
            DirectInfo(self.spelling(Name(d.other, d.other_key)), d.last, d.read, d.unread)
            for d in found
        ]

    async def reading(self, member: Member, rooms: list[str]) -> dict[str, tuple[int, int]]:
        """(read, unread) of those of the listed rooms (by spelling) the member's account is
        in, any device of it: one store query for the lot; {} for a guest."""
        account = self.account_of(member)
        if account is None:
            return {}
        convs: dict[str, str] = {}
        for spelling in rooms:
            key = name_key(spelling)
            hub_room = self.hub.rooms.get(key)
            if hub_room is not None and account.key in hub_room.people:
                convs[room_conv(key)] = spelling
        if not convs:
            return {}
        found = await self._guard(self.store.reading(account.key, list(convs), self.hub.last_id))
        return {convs[conv]: counts for conv, counts in found.items()}

    async def _guard(self, work: Awaitable[T]) -> T:
        """A store call whose failure (disk full, locked) is the request's error only."""
        try:
            return await work
        except StoreError as exc:
            self.store.errors += 1  # metrics
            log.warning("%s", exc, extra={"event": "store_error"})
            raise ChatError("unavailable", str(exc)) from None
