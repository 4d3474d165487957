"""PROTOCOL.md section 10 without sockets: devices in the hub, offline mail and read markers
in the core over a real SQLite store, and the store's markers on their own."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from test_core import (
    FakeOwner,
    Recorded,
    direct,
    enter,
    got,
    member,
    name,
    running_core,
    texts,
)

from trio_chat.config import Config
from trio_chat.core.errors import ChatError
from trio_chat.hub import Hub, Member
from trio_chat.protocol import JSON_WIRE, Message
from trio_chat.protocol.markers import Marked
from trio_chat.store import (
    _MIGRATIONS,
    Account,
    Draft,
    Store,
    Stored,
    _statements,
    direct_conv,
    room_conv,
)

pytestmark = pytest.mark.trio


def device(text: str, label: str | None) -> Member:
    return Member(name(text), Recorded(), FakeOwner(), account=True, device=label)


def presence(m: Member) -> list[tuple[str, str]]:
    return [(f["name"], f["state"]) for f in got(m) if f["type"] == "presence"]


def room_message(sender: Member, room: str, text: str, id_: int, re: Any = None) -> Stored:
    message = Message(id_, sender.name.spelling, text, "ts", room=room)
    return Stored(Draft(sender.name, text, room=name(room), re=re, origin=sender), message)


# ------------------------------------------------------------------ the hub: who is online


async def test_a_login_replaces_only_the_device_with_the_same_label() -> None:
    hub = Hub()
    laptop, phone, nolabel = device("Bob", "laptop"), device("bob", "phone"), device("BOB", None)
    for m in (laptop, phone, nolabel):
        assert hub.take(m) == []
    assert hub.devices(name("bob")) == [laptop, phone, nolabel]
    assert hub.online(name("bob")) is laptop  # the oldest
    laptop2, nolabel2 = device("Bob", "laptop"), device("Bob", None)
    assert hub.take(laptop2) == [laptop]
    assert hub.take(nolabel2) == [nolabel]  # no label is one label too
    assert hub.devices(name("bob")) == [phone, laptop2, nolabel2]
    hub.disconnect(laptop, "replaced")  # a replaced device leaving frees nothing
    assert hub.devices(name("bob")) == [phone, laptop2, nolabel2]


async def test_a_guest_still_has_one_connection() -> None:
    hub = Hub()
    first, second = member("ghost"), member("ghost")
    first.device = second.device = None
    assert hub.take(first) == []
    assert hub.take(second) == [first]
    assert hub.devices(name("ghost")) == [second]


async def test_a_name_looks_taken_while_any_of_its_devices_is_online() -> None:
    hub = Hub()
    laptop, phone = device("Souvik", "laptop"), device("Souvik", "phone")
    hub.take(laptop)
    hub.take(phone)
    assert list(hub.users) == ["souvik"]
    look_alike = name("\u0405ouvik")  # Cyrillic S
    hub.disconnect(laptop, "quit")
    assert hub.looks_taken(look_alike)
    hub.disconnect(phone, "quit")
    assert not hub.looks_taken(look_alike) and not hub.users


async def test_presence_members_and_counts_go_by_name_not_by_device() -> None:
    hub = Hub()
    watcher, laptop, phone = member("watcher"), device("Bob", "laptop"), device("Bob", "phone")
    for m in (watcher, laptop, phone):
        hub.take(m)
    enter(hub, watcher, "lobby")
    enter(hub, laptop, "lobby")
    enter(hub, phone, "lobby")
    hub.flush()
    assert presence(watcher) == [("Bob", "joined")]  # the first device only
    assert hub.members(name("lobby")) == ("lobby", ["watcher", "Bob"])
    assert hub.room_list() == ([("lobby", 2)], False)
    assert hub.part(laptop, "lobby") is not None
    hub.disconnect(laptop, "quit")
    hub.flush()
    assert presence(watcher) == [("Bob", "joined")]  # the phone is still in
    assert hub.members(name("lobby")) == ("lobby", ["watcher", "Bob"])
    hub.disconnect(phone, "timeout")
    hub.flush()
    assert presence(watcher) == [("Bob", "joined"), ("Bob", "left")]
    assert hub.room_list() == ([("lobby", 1)], False)


async def test_each_device_joins_by_itself_and_gets_the_room_messages() -> None:
    hub = Hub()
    laptop, phone, other = device("Bob", "laptop"), device("Bob", "phone"), member("ann")
    for m in (laptop, phone, other):
        hub.take(m)
    enter(hub, laptop, "lobby")
    enter(hub, other, "lobby")
    hub.publish([room_message(other, "lobby", "before the phone", 1)])
    enter(hub, phone, "lobby")
    hub.publish([room_message(other, "lobby", "after", 2), room_message(laptop, "lobby", "me", 3)])
    assert texts(laptop) == ["before the phone", "after", "me"]
    assert texts(phone) == ["after", "me"]
    assert set(phone.rooms) == {"lobby"} and set(laptop.rooms) == {"lobby"}


async def test_a_direct_message_reaches_every_device_of_both_accounts() -> None:
    hub = Hub()
    a_laptop, a_phone = device("ann", "laptop"), device("ann", "phone")
    b_laptop, b_phone = device("bob", "laptop"), device("bob", "phone")
    for m in (a_laptop, a_phone, b_laptop, b_phone):
        hub.take(m)
    sent = direct(a_laptop, b_phone, "hi bob", 1, re="d1")
    sent = sent._replace(draft=sent.draft._replace(account=True))
    hub.publish([sent])
    for m in (b_laptop, b_phone, a_phone):
        assert [(f["text"], f.get("re")) for f in got(m)] == [("hi bob", None)]
    assert [(f["text"], f.get("re")) for f in got(a_laptop)] == [("hi bob", "d1")]


async def test_a_message_for_an_account_reaches_the_devices_online_at_fan_out() -> None:
    """The draft names the Account: whoever of it is online when the commit is out gets it."""
    hub = Hub()
    ann = member("ann")
    hub.take(ann)
    bob = Account("bob", "Bob", "hash", 1)
    message = Message(1, "ann", "while you were out", "ts", to="Bob")
    draft = Draft(name("ann"), message.text, to=name("Bob"), origin=ann, recipient=bob)
    phone = device("Bob", "phone")
    hub.take(phone)
    hub.publish([Stored(draft, message)])
    assert texts(phone) == ["while you were out"] and texts(ann) == ["while you were out"]


async def test_a_guest_recipient_is_that_very_connection() -> None:
    """Guests keep the old rule: a DM never reaches a later holder of the name."""
    hub = Hub()
    ann, old_bob, new_bob = member("ann"), member("bob"), member("bob")
    hub.take(ann)
    hub.take(old_bob)
    accepted = direct(ann, old_bob, "for the first bob", 1)
    hub.disconnect(old_bob, "quit")
    hub.take(new_bob)
    hub.publish([accepted])
    assert got(new_bob) == [] and texts(ann) == ["for the first bob"]


# ------------------------------------------------------------------ the store's markers


async def test_a_marker_moves_forward_only(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "chat.db")
    try:
        conv = room_conv("lobby")
        assert await store.marker("bob", conv) == (0, None)
        assert (await store.set_marker("bob", conv, 5)).upto == 5
        lower = await store.set_marker("bob", conv, 3)
        assert (lower.upto, lower.moved) == (5, False)
        higher = await store.set_marker("bob", conv, 9)
        assert (higher.upto, higher.moved) == (9, True)
        assert (await store.marker("bob", conv))[0] == 9
        assert (await store.marker("ann", conv))[0] == 0  # per account
        assert (await store.marker("bob", room_conv("other")))[0] == 0  # per conversation
    finally:
        store.close()
    reopened = Store.open(tmp_path / "chat.db")  # durable
    try:
        assert (await reopened.marker("bob", room_conv("lobby")))[0] == 9
    finally:
        reopened.close()


async def test_unread_and_directs_are_counted_from_the_store(
    config: Config, tmp_path: Path
) -> None:
    async with running_core(config, tmp_path / "chat.db") as core:
        store = core.store
        ann, bob = await core.login("ann", "pw-ann-123"), await core.login("bob", "pw-bob-123")
        carol = await core.login("carol")
        for m in (ann, bob):
            await core.chat.join(m, name("lobby"), since=None, limit=10, answer=lambda r: None)
        for text in ("one", "two"):
            await core.chat.say(ann, text, room=name("lobby"))
        await core.chat.say(bob, "mine", room=name("lobby"))
        await core.chat.say(carol, "psst", to=name("bob"))
        await core.chat.say(bob, "hello", to=name("ann"))
        await store.drain()
        reading = await store.reading("bob", [room_conv("lobby")], core.hub.last_id)
        assert reading == {room_conv("lobby"): (0, 2)}  # not bob's own
        (with_ann, with_carol) = await store.directs("bob", first_id=1, upto=core.hub.last_id)
        assert (with_ann.other, with_ann.unread) == ("ann", 0)  # bob wrote the last one
        assert (with_carol.other, with_carol.unread, with_carol.read) == ("carol", 1, 0)
        assert with_ann.conv == direct_conv("ann", "bob") and with_ann.last > with_carol.last


# ------------------------------------------------------------------ the core


async def test_an_account_offline_still_gets_its_direct_messages(
    config: Config, tmp_path: Path
) -> None:
    async with running_core(config, tmp_path / "chat.db") as core:
        chat = core.chat
        bob = await core.login("Bob", "pw-bob-123")
        core.hub.disconnect(bob, "quit")
        ann = await core.login("ann")
        assert await chat.say(ann, "while you were out", to=name("BOB"), re="d1") is None
        with pytest.raises(ChatError) as refusal:
            await chat.say(ann, "to nobody", to=name("nobody"))
        assert refusal.value.code == "no_such_user"
        await core.store.drain()
        assert [(f["to"], f["re"]) for f in got(ann)] == [("Bob", "d1")]  # the account's spelling
        back = await core.login("bob", "pw-bob-123")
        (found,) = await chat.directs(back)
        assert (found.with_, found.read, found.unread) == ("ann", 0, 1)
        page = await chat.history(back, with_=name("ann"), limit=10)
        assert [m.text for m in page.messages if isinstance(m, Message)] == ["while you were out"]


async def test_mark_tells_the_other_devices_and_never_moves_back(
    config: Config, tmp_path: Path
) -> None:
    async with running_core(config, tmp_path / "chat.db") as core:
        chat = core.chat
        laptop = await chat.login(
            name("bob"), "pw-bob-123", owner=FakeOwner(), outbox=Recorded(), wire=JSON_WIRE,
            peer="p", host="192.0.2.1", device="laptop",
        )  # fmt: skip
        phone = await chat.login(
            name("bob"), "pw-bob-123", owner=FakeOwner(), outbox=Recorded(), wire=JSON_WIRE,
            peer="p", host="192.0.2.1", device="phone",
        )  # fmt: skip
        assert laptop is not None and phone is not None and not laptop.closed
        for m in (laptop, phone):
            await chat.join(m, name("lobby"), since=None, limit=10, answer=lambda r: None)
        for text in ("one", "two", "three"):
            await chat.say(laptop, text, room=name("lobby"))
        await core.store.drain()
        top = core.hub.last_id
        marked, _ = await chat.mark(laptop, top, room=name("LOBBY"), re="k1")
        assert (marked.room, marked.upto, marked.re) == ("lobby", top, "k1")
        pushed = [f for f in got(phone) if f["type"] == "marked"]
        assert pushed == [{"type": "marked", "room": "lobby", "upto": top}]
        assert [f for f in got(laptop) if f["type"] == "marked"] == []  # the door answers it
        lower, _ = await chat.mark(phone, top - 2, room=name("lobby"))
        assert lower.upto == top
        assert len([f for f in got(laptop) if f["type"] == "marked"]) == 0  # nothing moved
        joined: list[Any] = []
        await chat.join(phone, name("lobby"), since=None, limit=1, answer=joined.append)
        assert joined[0].read == top


async def test_bad_marks_are_refused_and_change_nothing(config: Config, tmp_path: Path) -> None:
    async with running_core(config, tmp_path / "chat.db") as core:
        chat = core.chat
        bob, guest = await core.login("bob", "pw-bob-123"), await core.login("guest")
        await chat.join(bob, name("lobby"), since=None, limit=10, answer=lambda r: None)
        await chat.say(bob, "x", room=name("lobby"))
        await core.store.drain()
        last = core.hub.last_id
        cases: list[tuple[Member, dict[str, Any], int, str]] = [
            (guest, {"room": name("lobby")}, last, "auth_required"),
            (bob, {"room": name("elsewhere")}, last, "not_in_room"),
            (bob, {"room": name("lobby")}, last + 1, "invalid_field"),
            (bob, {"with_": name("ann")}, last + 5, "invalid_field"),
        ]
        for who, where, upto, code in cases:
            with pytest.raises(ChatError) as refusal:
                await chat.mark(who, upto, **where)
            assert refusal.value.code == code
        with pytest.raises(ChatError) as refusal:
            await chat.directs(guest)
        assert refusal.value.code == "auth_required"
        assert (await core.store.marker("bob", room_conv("lobby")))[0] == 0
        assert (await core.store.marker("bob", direct_conv("ann", "bob")))[0] == 0


async def test_rooms_reads_markers_in_one_query_for_the_rooms_the_account_is_in(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_core(config, tmp_path / "chat.db") as core:
        chat = core.chat
        bob, ann = await core.login("bob", "pw-bob-123"), await core.login("ann")
        for room in ("a", "b", "c"):
            await chat.join(ann, name(room), since=None, limit=1, answer=lambda r: None)
        for room in ("a", "b"):
            await chat.join(bob, name(room), since=None, limit=1, answer=lambda r: None)
            await chat.say(ann, f"in {room}", room=name(room))
        await core.store.drain()
        queries: list[list[str]] = []
        reading = core.store.reading

        async def counted(account: str, convs: list[str], upto: int) -> Any:
            queries.append(convs)
            return await reading(account, convs, upto)

        monkeypatch.setattr(core.store, "reading", counted)
        listing, _ = chat.rooms()
        assert await chat.reading(bob, [room for room, _ in listing]) == {
            "a": (0, 1),
            "b": (0, 1),
        }
        assert queries == [[room_conv("a"), room_conv("b")]]
        assert await chat.reading(ann, [room for room, _ in listing]) == {}  # a guest


async def test_welcome_lists_devices_and_markers(config: Config, tmp_path: Path) -> None:
    async with running_core(config, tmp_path / "chat.db") as core:
        assert {"devices", "markers"} <= set(core.chat.features)


async def test_the_json_wire_encodes_a_moved_marker() -> None:
    data = JSON_WIRE.marker(Marked(7, with_="Ann"), "ts")
    assert json.loads(data) == {"type": "marked", "with": "Ann", "upto": 7}


async def test_an_older_file_learns_the_direct_conversations_it_holds(tmp_path: Path) -> None:
    """Schema step 2 fills `parties` from the direct messages already stored."""
    path = tmp_path / "chat.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        for statement in _statements(str(_MIGRATIONS[0])):
            db.execute(statement)
        for statement in _MIGRATIONS[1]:
            db.execute(statement)
        db.executemany(
            "INSERT INTO messages (id, conv, recipient, sender, sender_key, text, ts)"
            " VALUES (?, ?, ?, ?, ?, 'x', 'ts')",
            [(1, "@ann bob", "bob", "Ann", "ann"), (2, "#lobby", None, "Ann", "ann")],
        )
        db.execute("PRAGMA user_version = 2")
        db.commit()
    store = Store.open(path)
    try:
        (found,) = await store.directs("bob", first_id=1, upto=2)
        assert (found.other, found.last, found.unread) == ("Ann", 1, 1)
        assert [d.other for d in await store.directs("ann", first_id=1, upto=2)] == ["bob"]
    finally:
        store.close()
