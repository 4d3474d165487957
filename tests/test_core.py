"""The chat core and the hub without sockets: the fixes of the fault report, one rule at a time.

Each test shows one fixed behaviour at the lowest level that shows it: the hub's
delivery and name tables on their own, the core over a real SQLite store (its
writer held through `_write_limiter` where a commit must wait), and the JSON door
over memory streams. Password hashes here are instant and need no thread, so
`wait_all_tasks_blocked` tells when a login waits.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
import trio.testing
from harness import open_session

from trio_chat.accounts import PasswordHasher
from trio_chat.config import Config
from trio_chat.core.chat import Chat, JoinResult
from trio_chat.core.errors import ChatError
from trio_chat.hub import Hub, Member, Room
from trio_chat.outbox import Outbox
from trio_chat.protocol import JSON_WIRE, Bye, LeaveReason, Message, Name, RequestId, name_key
from trio_chat.store import Draft, Store, Stored, StoreUnavailable

pytestmark = pytest.mark.trio

T = TypeVar("T")

LATIN = "Souvik"
CYRILLIC_S = "\u0405ouvik"  # Cyrillic DZE for the S
CYRILLIC_O = "S\u043euvik"  # Cyrillic o for the o


def name(text: str) -> Name:
    return Name(text, name_key(text))


class Recorded(Outbox):
    """An outbox that keeps every item put in it, for the test to read; it never fills."""

    def __init__(self) -> None:
        super().__init__(1000)
        self.items: list[bytes] = []

    def put(self, data: bytes, frames: int = 1) -> bool:
        if not self.closed:
            self.items.append(data)
        return True


class FakeOwner:
    """Stands in for a session: records what the hub asks of it."""

    def __init__(self) -> None:
        self.refused: list[tuple[RequestId | None, str]] = []
        self.closed_with: list[tuple[Bye | None, LeaveReason | None]] = []

    def close(self, bye: Bye | None = None, leave: LeaveReason | None = None) -> None:
        self.closed_with.append((bye, leave))

    def overflow(self) -> None:
        raise AssertionError("a recorded outbox never overflows")

    def refuse(self, re: RequestId | None, error: ChatError) -> None:
        self.refused.append((re, error.code))


def member(text: str, *, account: bool = False) -> Member:
    return Member(name(text), Recorded(), FakeOwner(), account=account)


def got(m: Member) -> list[dict[str, Any]]:
    """Every frame queued for a member so far, decoded."""
    assert isinstance(m.outbox, Recorded)
    return [json.loads(line) for item in m.outbox.items for line in item.splitlines()]


def texts(m: Member) -> list[str]:
    return [f["text"] for f in got(m) if f["type"] == "message"]


def refused(m: Member) -> list[tuple[RequestId | None, str]]:
    assert isinstance(m.owner, FakeOwner)
    return m.owner.refused


def enter(hub: Hub, m: Member, room: str) -> None:
    """Join a room as a door does: the join, then its answer's release."""
    hub_room, _, _ = hub.join(m, name(room))
    hub.release(m, hub_room)


def direct(
    sender: Member, recipient: Member, text: str, id_: int, re: RequestId | None = None
) -> Stored:
    """A direct message as the store hands it on after its commit."""
    message = Message(id_, sender.name.spelling, text, "ts", to=recipient.name.spelling)
    draft = Draft(sender.name, text, to=recipient.name, re=re, origin=sender, recipient=recipient)
    return Stored(draft, message)


class InstantHasher(PasswordHasher):
    """No scrypt and no thread: a hash is the password, given out when `gate` is open."""

    def __init__(self) -> None:
        super().__init__(n=2**10)
        self.gate: trio.Event | None = None  # None: open
        self.hashing = trio.Event()  # set once a hash has started

    async def hash(self, password: str, *, who: str = "") -> str:
        self.hashing.set()
        if self.gate is not None:
            await self.gate.wait()
        await trio.lowlevel.checkpoint()
        return "plain$" + password

    async def verify(self, password: str, encoded: str, *, who: str = "") -> bool:
        await trio.lowlevel.checkpoint()
        return encoded == "plain$" + password


class Core:
    """A Chat over a hub and a real store whose writer runs in the test's nursery."""

    def __init__(self, chat: Chat, hasher: InstantHasher) -> None:
        self.chat, self.hasher = chat, hasher
        self.hub, self.store = chat.hub, chat.store

    async def login(self, text: str, password: str | None = None) -> Member:
        """Log in as the chat's doors do; the member, or ChatError."""
        found = await self.chat.login(
            name(text),
            password,
            owner=FakeOwner(),
            outbox=Recorded(),
            wire=JSON_WIRE,
            peer="test:1",
            host="192.0.2.1",
        )
        assert found is not None
        return found

    async def refused_login(self, text: str, password: str | None = None) -> str:
        """The error code a login gets (the test fails if it gets in)."""
        with pytest.raises(ChatError) as refusal:
            await self.login(text, password)
        return refusal.value.code


@asynccontextmanager
async def running_core(
    config: Config, path: Path, *, max_pending: int = 8192
) -> AsyncIterator[Core]:
    store = Store.open(path, max_pending=max_pending)
    try:
        hub = Hub(known_rooms=store.rooms, last_id=store.last_id)
        hasher = InstantHasher()
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run, hub.publish, hub.fail)
            yield Core(Chat(config, hub, store, hasher), hasher)
            nursery.cancel_scope.cancel()
    finally:
        store.close()


async def started(nursery: trio.Nursery, work: Any) -> list[Any]:
    """Run `work()` in the nursery; the list gets its result, or the ChatError it raised."""
    out: list[Any] = []

    async def run() -> None:
        try:
            out.append(await work())
        except ChatError as exc:
            out.append(exc)

    nursery.start_soon(run)
    await trio.testing.wait_all_tasks_blocked()
    return out


# ------------------------------------------------------------------ 1. a DM reaches its addressee


async def test_the_core_addresses_a_direct_message_to_the_recipients_connection(
    config: Config, tmp_path: Path
) -> None:
    """`say` to a name puts the connection holding it into the draft, not only the name."""
    store = Store.open(tmp_path / "chat.db")  # no writer: the draft stays in the queue
    try:
        chat = Chat(config, Hub(), store, InstantHasher())
        core = Core(chat, InstantHasher())
        alice, bob = await core.login("alice"), await core.login("bob")
        await chat.say(alice, "psst", to=name("BOB"), re="d1")
        (draft,) = store._queue
        assert draft.recipient is bob and draft.origin is alice
        assert draft.to == bob.name
    finally:
        store.close()


async def test_a_dm_for_a_guest_who_left_does_not_reach_the_next_holder_of_the_name() -> None:
    """The hub delivers a DM only to the connection it was addressed to, never to a new "bob"."""
    hub = Hub()
    alice, old_bob, new_bob = member("alice"), member("bob"), member("bob")
    hub.claim(alice)
    hub.claim(old_bob)
    accepted = direct(alice, old_bob, "for the first bob", 1, re="d1")
    hub.disconnect(old_bob, "quit")
    assert hub.claim(new_bob) is None  # the name was free
    hub.publish([accepted])
    assert got(new_bob) == [] and got(old_bob) == []
    assert [(f["text"], f["re"]) for f in got(alice)] == [("for the first bob", "d1")]
    assert hub.last_id == 1


async def test_a_dm_for_an_account_reaches_its_new_connection() -> None:
    """An account is one person: a DM for it goes to whichever connection holds it now."""
    hub = Hub()
    alice, phone, laptop = member("alice"), member("bob", account=True), member("bob", account=True)
    hub.claim(alice)
    hub.claim(phone)
    accepted = direct(alice, phone, "for bob", 1)
    assert hub.claim(laptop) is phone  # bob logs in again: the phone is replaced
    hub.disconnect(phone, "replaced")
    hub.publish([accepted])
    assert texts(laptop) == ["for bob"] and got(phone) == []


async def test_a_dm_for_an_open_guest_is_delivered_once() -> None:
    """The addressee still online gets the DM; so does the sender (its own copy), nobody else."""
    hub = Hub()
    alice, bob, carol = member("alice"), member("bob"), member("carol")
    for m in (alice, bob, carol):
        hub.claim(m)
    hub.publish([direct(alice, bob, "hi bob", 1, re=7), direct(alice, alice, "note", 2)])
    assert texts(bob) == ["hi bob"] and "re" not in got(bob)[0]
    assert [(f["text"], f.get("re")) for f in got(alice)] == [("hi bob", 7), ("note", None)]
    assert got(carol) == []


# ------------------------------------------------------------------ 2. a new account's first_id


async def test_an_account_made_while_mail_for_its_guest_waits_starts_after_that_mail(
    config: Config, tmp_path: Path
) -> None:
    """Account creation waits for every accepted message (store.barrier) before fixing first_id,
    so a DM to (or from) the guest "bob" still waiting for its commit is not the account's."""
    async with running_core(config, tmp_path / "chat.db") as core:
        chat, hub, store = core.chat, core.hub, core.store
        alice, guest = await core.login("alice"), await core.login("bob")
        held = True
        await store._write_limiter.acquire()  # the writer cannot commit
        try:
            await chat.say(alice, "for the guest", to=name("bob"), re="a1")
            await chat.say(guest, "from the guest", to=name("alice"), re="g1")
            hub.disconnect(guest, "quit")
            async with trio.open_nursery() as nursery:
                made = await started(nursery, lambda: core.login("bob", "bob's password"))
                # the hash is done; the login waits for the commit of the guest's mail
                assert core.hasher.hashing.is_set()
                assert made == [] and "bob" not in store.accounts
                held = False
                store._write_limiter.release()
        finally:
            if held:
                store._write_limiter.release()
        (account_bob,) = made
        assert isinstance(account_bob, Member) and account_bob.account
        mail = [f for f in got(alice) if f["type"] == "message"]
        assert [(f["text"], f.get("re")) for f in mail] == [
            ("for the guest", "a1"),
            ("from the guest", None),
        ]
        assert store.accounts["bob"].first_id > max(f["id"] for f in mail)
        page = await chat.history(account_bob, with_=name("alice"), limit=50)
        assert page.messages == () and not page.more
        assert got(account_bob) == []  # the guest's mail was not delivered to the account either
        await chat.say(alice, "for the account", to=name("bob"))
        await store.drain()
        page = await chat.history(account_bob, with_=name("alice"), limit=50)
        (entry,) = page.messages
        assert isinstance(entry, Message) and entry.text == "for the account"


async def test_mail_for_the_guest_waiting_for_room_in_the_queue_is_not_the_accounts(
    config: Config, tmp_path: Path
) -> None:
    """A DM to the guest "bob" held up by backpressure (the queue is full) when someone
    creates the account "bob" is not in the account's history either."""
    async with running_core(config, tmp_path / "chat.db", max_pending=1) as core:
        chat, hub, store = core.chat, core.hub, core.store
        alice, guest, carol = [await core.login(n) for n in ("alice", "bob", "carol")]
        enter(hub, carol, "lobby")
        held = True
        await store._write_limiter.acquire()
        try:
            async with trio.open_nursery() as nursery:
                await chat.say(carol, "one", room=name("lobby"))
                await trio.testing.wait_all_tasks_blocked()  # the writer took it, waits to commit
                await chat.say(carol, "two", room=name("lobby"))  # the queue is full now
                waiting = await started(
                    nursery, lambda: chat.say(alice, "for the guest", to=name("bob"), re="a1")
                )
                # alice's DM waits for room, and counts already for a barrier
                assert waiting == [] and store.accepted == 3 and len(store._queue) == 1
                hub.disconnect(guest, "quit")
                made = await started(nursery, lambda: core.login("bob", "bob's password"))
                assert made == [] and core.hasher.hashing.is_set()
                held = False
                store._write_limiter.release()
        finally:
            if held:
                store._write_limiter.release()
        await store.drain()
        (account_bob,) = made
        assert isinstance(account_bob, Member)
        (echo,) = [f for f in got(alice) if f.get("re") == "a1"]
        page = await chat.history(account_bob, with_=name("alice"), limit=50)
        assert page.messages == (), (echo["id"], store.accounts["bob"].first_id)


# ------------------------------------------------------------------ 3/4. an unavailable store


async def test_a_failed_batch_is_refused_to_its_senders_and_delivered_to_nobody() -> None:
    """hub.fail answers each sender still online with `unavailable` and its `re`, and nothing
    of the batch reaches anyone else."""
    hub = Hub()
    alice, bob, gone = member("alice"), member("bob"), member("gone")
    for m in (alice, bob, gone):
        hub.claim(m)
        enter(hub, m, "lobby")
    hub.flush()
    seen = {m: len(got(m)) for m in (alice, bob)}
    batch = [
        Draft(alice.name, "lost", room=name("lobby"), re="s1", origin=alice),
        Draft(alice.name, "dm", to=bob.name, re="s2", origin=alice, recipient=bob),
        Draft(gone.name, "lost too", room=name("lobby"), re="s3", origin=gone),
    ]
    hub.disconnect(gone, "gone")
    hub.fail(batch, StoreUnavailable("database or disk is full"))
    hub.flush()
    assert refused(alice) == [("s1", "unavailable"), ("s2", "unavailable")]
    assert refused(bob) == [] and refused(gone) == []
    for m in (alice, bob):  # only the presence of gone leaving
        assert [(f["type"], f["name"]) for f in got(m)[seen[m] :]] == [("presence", "gone")]
    assert hub.last_id == 0


async def test_a_join_whose_history_cannot_be_read_is_unavailable_and_leaves_no_member(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A join fails with `unavailable` when the store cannot be read, and the member is not left
    in the room."""
    async with running_core(config, tmp_path / "chat.db") as core:
        alice = await core.login("alice")

        async def broken(*args: object, **kwargs: object) -> None:
            raise StoreUnavailable("disk I/O error")

        monkeypatch.setattr(core.store, "page", broken)

        def never(result: JoinResult) -> None:
            raise AssertionError(f"answered {result}")

        with pytest.raises(ChatError) as refusal:
            await core.chat.join(alice, name("lobby"), since=None, limit=10, answer=never)
        assert refusal.value.code == "unavailable"
        assert core.hub.members(name("lobby")) == ("lobby", []) and alice.rooms == {}


async def test_a_resume_whose_history_cannot_be_read_keeps_the_member_in_the_room(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A join that fails with `unavailable` changes nothing: a member already in the room (a
    resume) stays in it, and the others see no presence."""
    async with running_core(config, tmp_path / "chat.db") as core:
        alice, bob = await core.login("alice"), await core.login("bob")
        enter(core.hub, alice, "lobby")
        enter(core.hub, bob, "lobby")
        core.hub.flush()
        seen = len(got(alice))

        async def broken(*args: object, **kwargs: object) -> None:
            raise StoreUnavailable("disk I/O error")

        def never(result: JoinResult) -> None:
            raise AssertionError(f"answered {result}")

        monkeypatch.setattr(core.store, "page", broken)
        with pytest.raises(ChatError) as refusal:
            await core.chat.join(bob, name("lobby"), since=1, limit=10, answer=never)
        assert refusal.value.code == "unavailable"
        core.hub.flush()
        assert core.hub.members(name("lobby")) == ("lobby", ["alice", "bob"])
        assert got(alice)[seen:] == []


async def test_an_account_that_cannot_be_stored_is_unavailable_and_frees_its_name(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating an account on a full disk answers `unavailable`; the name and its look-alikes
    are free again afterwards."""
    async with running_core(config, tmp_path / "chat.db") as core:

        async def full(*args: object) -> bool:
            raise StoreUnavailable("database or disk is full")

        monkeypatch.setattr(core.store, "create_account", full)
        assert await core.refused_login(LATIN, "a password") == "unavailable"
        assert not core.hub.creating and not core.hub.looks_taken(name(CYRILLIC_O))
        assert (await core.login(CYRILLIC_O)).name.spelling == CYRILLIC_O


# ------------------------------------------------------------------ 7. rooms, paged


class Touches(dict[str, T]):
    """A dict that counts the entries read from it, however they are read."""

    touched = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.touched += 1
        return super().get(key, default)

    def __getitem__(self, key: str) -> T:
        self.touched += 1
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.touched += 1
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        for key in super().__iter__():
            self.touched += 1
            yield key

    def items(self) -> Any:
        self.touched += len(self)
        return super().items()

    def keys(self) -> Any:
        self.touched += len(self)
        return super().keys()

    def values(self) -> Any:
        self.touched += len(self)
        return super().values()


ROOMS = 20_000


def many_rooms() -> Touches[str]:
    return Touches({f"room{i:05d}": f"Room{i:05d}" for i in range(ROOMS)})


async def test_a_rooms_page_touches_its_own_rooms_only() -> None:
    """With 20,000 rooms known, a page of 10 reads 10 entries, not every room ever used."""
    known = many_rooms()
    hub = Hub(known_rooms=known)
    online: Touches[Room] = Touches()
    hub.rooms = online
    a = member("a")
    enter(hub, a, "room10005")  # a room with history and a member
    known.touched = online.touched = 0
    page, more = hub.room_list(after="room10000", limit=10)
    assert page == [(f"Room{i:05d}", 1 if i == 10005 else 0) for i in range(10001, 10011)]
    assert more
    assert known.touched <= 10 and online.touched <= 10


async def test_a_rooms_page_costs_its_length_not_the_number_of_rooms() -> None:
    """Timed in one run: a page of 10 of 20,000 rooms costs far less than the whole list."""
    hub = Hub(known_rooms={f"room{i:05d}": f"Room{i:05d}" for i in range(ROOMS)})

    def cost(limit: int | None, repeat: int) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for n in range(repeat):
                hub.room_list(after=f"room{(n * 7919) % ROOMS:05d}", limit=limit)
            best = min(best, (time.perf_counter() - start) / repeat)
        return best

    whole = cost(None, 3)
    page = cost(10, 300)
    assert page * 50 < whole, (page, whole)  # ideally 2,000 times less


async def test_paging_with_after_lists_every_room_exactly_once_in_order() -> None:
    """Pages of up to 1000 chained by `after` give each room once, sorted by key; `more` is
    true until the last page."""
    known = {f"room{i:05d}": f"Room{i:05d}" for i in range(ROOMS)}
    hub = Hub(known_rooms=known)
    a = member("a")
    for extra in ("Alpha", "zulu", "ROOM10000X"):  # rooms with members only, between the others
        enter(hub, a, extra)
    listed: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page, more = hub.room_list(after=after, limit=1000)
        pages += 1
        assert len(page) == 1000 or not more
        listed += [spelling for spelling, _ in page]
        if not more:
            break
        after = name_key(page[-1][0])
    expected = sorted([*known.values(), "Alpha", "zulu", "ROOM10000X"], key=name_key)
    assert listed == expected and len(set(listed)) == ROOMS + 3
    assert pages == 21
    assert hub.room_list(after=after, limit=1000)[0][-1] == ("zulu", 1)
    assert hub.room_list(after="zzz", limit=5) == ([], False)


async def test_a_room_that_empties_leaves_the_list_unless_it_has_history() -> None:
    """The sorted list follows rooms as they appear and go; one with history stays listed."""
    hub = Hub(known_rooms={"kept": "Kept"})
    a = member("a")
    enter(hub, a, "Temp")
    enter(hub, a, "kept")
    assert hub.room_list() == ([("Kept", 1), ("Temp", 1)], False)
    hub.disconnect(a, "quit")
    assert hub.room_list() == ([("Kept", 0)], False)
    # a message committed in a room nobody is in now lists it from then on
    hub.known_rooms["quiet"] = "Quiet"
    stored = Stored(
        Draft(a.name, "x", room=name("Quiet")), Message(1, "a", "x", "ts", room="Quiet")
    )
    hub.publish([stored])
    assert hub.room_list(limit=1) == ([("Kept", 0)], True)
    assert hub.room_list(after="kept") == ([("Quiet", 0)], False)


# ------------------------------------------------------------------ 9. look-alikes and accounts


async def test_a_reserved_name_makes_its_look_alikes_taken_until_unreserved() -> None:
    """While an account is made, the name and every look-alike of it are in use."""
    hub = Hub()
    hub.reserve(name(LATIN))
    assert name_key(LATIN) in hub.creating
    assert hub.looks_taken(name(CYRILLIC_S)) and hub.looks_taken(name(CYRILLIC_O))
    assert not hub.looks_taken(name("SOUVIK"))  # the same name is taken through `creating`
    hub.unreserve(name(LATIN))
    assert not hub.creating
    assert not hub.looks_taken(name(CYRILLIC_S)) and not hub.looks_taken(name(CYRILLIC_O))


async def test_look_alikes_are_refused_while_an_account_is_being_made(
    config: Config, tmp_path: Path
) -> None:
    """While "Souvik" is being created, a Cyrillic "Ѕouvik" account and a guest "Sоuvik" are
    both refused with name_taken; after it, they still are (an account now holds the shape)."""
    async with running_core(config, tmp_path / "chat.db") as core:
        core.hasher.gate = trio.Event()
        async with trio.open_nursery() as nursery:
            made = await started(nursery, lambda: core.login(LATIN, "souvik's password"))
            assert core.hasher.hashing.is_set() and made == []
            assert await core.refused_login(CYRILLIC_O) == "name_taken"
            assert await core.refused_login(CYRILLIC_S, "another password") == "name_taken"
            assert await core.refused_login("souvik") == "name_taken"
            core.hasher.gate.set()
        (souvik,) = made
        assert isinstance(souvik, Member) and souvik.account
        assert not core.hub.creating
        core.hub.disconnect(souvik, "quit")
        assert await core.refused_login(CYRILLIC_O) == "name_taken"
        assert await core.refused_login(CYRILLIC_S, "another password") == "name_taken"
        assert core.hub.online(name(CYRILLIC_O)) is None
        assert list(core.store.accounts) == [name_key(LATIN)]


async def test_an_account_creation_cut_short_frees_the_look_alikes(
    config: Config, tmp_path: Path
) -> None:
    """A creation that ends without an account (the connection went mid-hash) leaves no name
    reserved: a look-alike may then be used."""
    async with running_core(config, tmp_path / "chat.db") as core:
        core.hasher.gate = trio.Event()
        async with trio.open_nursery() as nursery:
            await started(nursery, lambda: core.login(LATIN, "souvik's password"))
            assert core.hub.looks_taken(name(CYRILLIC_O))
            nursery.cancel_scope.cancel()
        assert not core.hub.creating and not core.hub.looks_taken(name(CYRILLIC_O))
        assert (await core.login(CYRILLIC_O)).name.spelling == CYRILLIC_O
        assert not core.store.accounts


# ------------------------------------------------------------------ 10. no ghost members


async def test_a_closed_member_joins_nothing() -> None:
    """Hub.join refuses a member whose connection has closed: no room, no presence, no listing."""
    hub = Hub()
    watcher, ghost = member("watcher"), member("ghost")
    hub.claim(watcher)
    hub.claim(ghost)
    enter(hub, watcher, "lobby")
    hub.disconnect(ghost, "quit")
    for room in ("lobby", "elsewhere"):
        with pytest.raises(ChatError) as refusal:
            hub.join(ghost, name(room))
        assert refusal.value.code == "bad_state"
    hub.flush()
    assert hub.members(name("lobby")) == ("lobby", ["watcher"])
    assert hub.room_list() == ([("lobby", 1)], False)
    assert ghost.rooms == {} and ghost.holds == {}
    assert [f for f in got(watcher) if f["type"] == "presence"] == []


async def test_a_closed_member_claims_no_name() -> None:
    """Hub.claim refuses a closed member, so a name is never held by a connection that ended."""
    hub = Hub()
    ghost = member("ghost")
    hub.disconnect(ghost, "quit")  # closed before it was ever welcomed
    with pytest.raises(ChatError) as refusal:
        hub.claim(ghost)
    assert refusal.value.code == "bad_state"
    assert hub.online(name("ghost")) is None and not hub.users


@pytest.mark.parametrize("ending", ["quit", "20 errors"])
async def test_the_json_door_handles_nothing_after_the_connection_ends(
    config: Config, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    """A `join` in the same read as the `quit` (or the 20th error in a row) is never handed to
    the core: the reader stops at the close."""
    async with open_session(config) as h:
        calls: list[object] = []

        async def spy(*args: object, **kwargs: object) -> None:
            calls.append(args)

        monkeypatch.setattr(h.session.chat, "join", spy)
        await h.client.send(type="hello", name="ghost")
        assert (await h.client.recv())["type"] == "welcome"
        end = b'{"type":"quit"}\n' if ending == "quit" else b"nope\n" * 20
        await h.client.send_raw(end + b'{"type":"join","room":"lobby","id":"j"}\n')
        bye = await h.client.expect("bye")
        assert bye["reason"] == ("quit" if ending == "quit" else "too_many_errors")
        assert await h.client.closed()
        await h.done.wait()
        assert calls == []
        assert not h.hub.users and not h.hub.rooms and h.hub.room_list() == ([], False)
