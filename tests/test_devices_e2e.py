"""PROTOCOL.md section 10 end to end: devices, offline direct messages and read markers over
loopback sockets (the JSON door, and MARKREAD on the IRC door), with a real SQLite file."""

from __future__ import annotations

from base64 import b64encode
from typing import Any

import pytest
from chat_client import ChatClient, login
from harness import RunningServer, StartServer
from test_irc_door import IrcClient

pytestmark = pytest.mark.trio

PW = "correct horse battery"


async def answer(c: ChatClient, rid: str | int) -> dict[str, Any]:
    """The frame that answers request `rid` (frames before it are skipped)."""
    while True:
        frame = await c.recv()
        if frame.get("re") == rid:
            return frame


async def device(port: int, label: str | None, *rooms: str, name: str = "Bob") -> ChatClient:
    extra = {} if label is None else {"device": label}
    return await login(port, name, *rooms, password=PW, **extra)


async def ids_of(c: ChatClient, room: str, *texts: str) -> list[int]:
    return [(await c.say(room, text))["id"] for text in texts]


# ------------------------------------------------------------------ devices


async def test_hello_device_labels_and_replacement(server: RunningServer) -> None:
    laptop = await device(server.port, "laptop")
    phone = await ChatClient.connect(server.port)
    welcome = await phone.hello("bob", password=PW, device="phone", id="h")
    assert welcome["type"] == "welcome" and welcome["name"] == "Bob"
    assert {"devices", "markers"} <= set(welcome["features"])
    await laptop.send(type="ping", id="p")
    assert (await answer(laptop, "p"))["type"] == "pong"  # the phone replaced nothing
    laptop2 = await device(server.port, "laptop")
    bye = await laptop.expect("bye")
    assert bye["reason"] == "replaced" and await laptop.closed()
    await phone.send(type="ping", id="p2")
    assert (await answer(phone, "p2"))["type"] == "pong"
    # no label is one label too
    first = await device(server.port, None)
    await device(server.port, None)
    assert (await first.expect("bye"))["reason"] == "replaced"
    await laptop2.send(type="ping", id="p3")
    assert (await answer(laptop2, "p3"))["type"] == "pong"


async def test_a_guest_has_one_connection_whatever_its_device(server: RunningServer) -> None:
    holder = await login(server.port, "ghost", device="a")
    other = await ChatClient.connect(server.port)
    assert (await other.hello("ghost", device="b"))["code"] == "name_taken"
    await holder.send(type="ping", id="p")
    assert (await answer(holder, "p"))["type"] == "pong"


@pytest.mark.parametrize("label", ["", "x" * 65, 7, None, True, ["a"]])
async def test_a_bad_device_label_is_invalid(server: RunningServer, label: object) -> None:
    c = await ChatClient.connect(server.port)
    await c.send(type="hello", name="Bob", password=PW, device=label, id="h")
    error = await answer(c, "h")
    assert error["type"] == "error" and error["code"] == "invalid_field"
    assert "device" in error["message"]
    assert (await c.hello("Bob", password=PW, device="x" * 64))["type"] == "welcome"


async def test_presence_members_and_rooms_count_a_name_once(server: RunningServer) -> None:
    watcher = await login(server.port, "watcher", "lobby")
    laptop = await device(server.port, "laptop", "lobby")
    await watcher.expect("presence", name="Bob", state="joined")
    phone = await device(server.port, "phone")
    joined = await phone.join("lobby")
    assert joined["members"] == ["watcher", "Bob"]
    await watcher.send(type="who", room="lobby", id="w")
    assert (await answer(watcher, "w"))["members"] == ["watcher", "Bob"]
    await watcher.send(type="rooms", id="r")
    assert (await answer(watcher, "r"))["rooms"] == [{"room": "lobby", "members": 2}]
    await laptop.send(type="part", room="lobby", id="x")
    await answer(laptop, "x")
    await phone.send(type="quit")
    left = await watcher.expect("presence", name="Bob")
    assert (left["state"], left["reason"]) == ("left", "quit")  # once, for the last device
    assert [f["state"] for f in watcher.seen if f["type"] == "presence"] == ["joined", "left"]


async def test_each_device_joins_rooms_by_itself(server: RunningServer) -> None:
    laptop = await device(server.port, "laptop", "lobby")
    phone = await device(server.port, "phone")
    await laptop.say("lobby", "only the laptop is in")
    await phone.send(type="say", room="lobby", text="x", id="s")
    assert (await answer(phone, "s"))["code"] == "not_in_room"
    await phone.join("lobby")
    mine = await laptop.say("lobby", "both now")
    assert (await phone.expect("message", id=mine["id"]))["text"] == "both now"


async def test_direct_messages_reach_every_device_of_both_sides(server: RunningServer) -> None:
    laptop, phone = await device(server.port, "laptop"), await device(server.port, "phone")
    a_laptop = await device(server.port, "laptop", name="Ann")
    a_phone = await device(server.port, "phone", name="Ann")
    await a_laptop.send(type="say", to="bob", text="hi Bob", id="d1")
    sent = await answer(a_laptop, "d1")
    assert (sent["to"], sent["from"]) == ("Bob", "Ann")
    for c in (laptop, phone, a_phone):
        got = await c.expect("message", id=sent["id"])
        assert got["text"] == "hi Bob" and "re" not in got
    guest = await login(server.port, "guest")
    await phone.send(type="say", to="guest", text="hi guest", id="d2")
    await answer(phone, "d2")
    assert (await guest.expect("message", text="hi guest"))["from"] == "Bob"
    assert (await laptop.expect("message", text="hi guest"))["to"] == "guest"


# ------------------------------------------------------------------ offline direct messages


async def test_an_offline_account_gets_its_mail_at_the_next_login(server: RunningServer) -> None:
    bob = await device(server.port, None)
    await bob.send(type="quit")
    assert await bob.closed()
    ann = await login(server.port, "Ann")
    await ann.send(type="say", to="BOB", text="while you were out", id="s1")
    stored = await answer(ann, "s1")
    assert stored["type"] == "message" and stored["to"] == "Bob"
    await ann.send(type="say", to="nobody", text="x", id="s2")
    assert (await answer(ann, "s2"))["code"] == "no_such_user"
    back = await device(server.port, None)
    await back.send(type="directs", id="d")
    assert (await answer(back, "d"))["directs"] == [
        {"with": "Ann", "last": stored["id"], "read": 0, "unread": 1}
    ]
    await back.send(type="history", **{"with": "ann"}, id="h")
    page = await answer(back, "h")
    assert page["with"] == "Ann" and [m["text"] for m in page["messages"]] == ["while you were out"]


# ------------------------------------------------------------------ read markers


async def test_marks_reach_every_device_and_move_forward_only(server: RunningServer) -> None:
    laptop = await device(server.port, "laptop", "lobby")
    phone = await device(server.port, "phone", "lobby")
    ids = await ids_of(laptop, "lobby", "m0", "m1", "m2")
    await laptop.send(type="mark", room="LOBBY", upto=ids[2], id="k1")
    assert await answer(laptop, "k1") == {
        "type": "marked",
        "room": "lobby",
        "upto": ids[2],
        "re": "k1",
    }
    assert await phone.expect("marked") == {"type": "marked", "room": "lobby", "upto": ids[2]}
    await phone.send(type="mark", room="lobby", upto=ids[0], id="k2")
    assert (await answer(phone, "k2"))["upto"] == ids[2]
    await laptop.send(type="ping", id="p")
    await answer(laptop, "p")
    assert [f for f in laptop.seen if f["type"] == "marked" and "re" not in f] == []
    again = await device(server.port, "tablet")
    assert (await again.join("lobby"))["read"] == ids[2]


async def test_joined_and_rooms_carry_read_and_unread(server: RunningServer) -> None:
    bob = await device(server.port, "laptop", "lobby")
    assert (await bob.join("lobby"))["read"] == 0
    ann = await login(server.port, "Ann", "lobby", "other")
    guest_view = await ann.join("lobby")
    assert "read" not in guest_view  # a guest has no markers
    first = (await ann.say("lobby", "one"))["id"]
    await ann.say("lobby", "two")
    await ann.say("other", "elsewhere")
    await bob.say("lobby", "mine does not count")
    await bob.send(type="rooms", id="r")
    rooms = (await answer(bob, "r"))["rooms"]
    assert rooms == [
        {"room": "lobby", "members": 2, "read": 0, "unread": 2},
        {"room": "other", "members": 1},
    ]
    await bob.send(type="mark", room="lobby", upto=first, id="k")
    await answer(bob, "k")
    await bob.send(type="rooms", id="r2")
    assert (await answer(bob, "r2"))["rooms"][0] == {
        "room": "lobby",
        "members": 2,
        "read": first,
        "unread": 1,
    }
    await ann.send(type="rooms", id="r3")
    assert all("read" not in r for r in (await answer(ann, "r3"))["rooms"])


async def test_directs_lists_conversations_most_recent_first(server: RunningServer) -> None:
    bob = await device(server.port, "laptop")
    ann, carol = await login(server.port, "Ann"), await login(server.port, "Carol")
    for sender, text, rid in ((ann, "a1", "1"), (carol, "c1", "2"), (ann, "a2", "3")):
        await sender.send(type="say", to="Bob", text=text, id=rid)
        await answer(sender, rid)
    await bob.send(type="say", to="Carol", text="reply", id="4")
    reply = await answer(bob, "4")
    await bob.send(type="directs", id="d")
    listing = (await answer(bob, "d"))["directs"]
    assert [(d["with"], d["read"], d["unread"]) for d in listing] == [
        ("Carol", 0, 1),  # sending does not move the marker; bob's own reply is not unread
        ("Ann", 0, 2),
    ]
    assert listing[0]["last"] == reply["id"]
    await bob.send(type="mark", **{"with": "ann"}, upto=listing[1]["last"], id="k")
    assert await answer(bob, "k") == {
        "type": "marked",
        "with": "Ann",
        "upto": listing[1]["last"],
        "re": "k",
    }
    await bob.send(type="directs", id="d2")
    assert (await answer(bob, "d2"))["directs"][1]["unread"] == 0


BAD_MARKS: list[dict[str, Any]] = [
    {},
    {"room": "lobby"},
    {"room": "lobby", "upto": 0},
    {"room": "lobby", "upto": -1},
    {"room": "lobby", "upto": "1"},
    {"room": "lobby", "upto": True},
    {"room": "lobby", "upto": 1.5},
    {"room": "lobby", "upto": 2**60},
    {"room": "lobby", "with": "Ann", "upto": 1},
    {"upto": 1},
    {"room": 5, "upto": 1},
    {"room": "bad room", "upto": 1},
    {"with": "bad name", "upto": 1},
    {"with": None, "upto": 1},
    {"room": "elsewhere", "upto": 1},
    {"room": "lobby", "upto": 10**6},
]
BAD_CODES = {
    "bad room": "room_invalid",
    "bad name": "name_invalid",
    "elsewhere": "not_in_room",
}


async def test_every_bad_mark_gets_a_clear_error_and_changes_nothing(
    server: RunningServer,
) -> None:
    bob = await device(server.port, "laptop", "lobby")
    phone = await device(server.port, "phone", "lobby")
    (only,) = await ids_of(bob, "lobby", "x")
    for n, fields in enumerate(BAD_MARKS):
        await bob.send(type="mark", **fields, id=n)
        error = await answer(bob, n)
        assert error["type"] == "error", fields
        where = fields.get("room", fields.get("with"))
        assert error["code"] == BAD_CODES.get(str(where), "invalid_field"), (fields, error)
        assert error["message"]
    guest = await login(server.port, "guest", "lobby")
    for frame in ({"type": "mark", "room": "lobby", "upto": only}, {"type": "directs"}):
        await guest.send(**frame, id="g")
        assert (await answer(guest, "g"))["code"] == "auth_required"
    assert (await phone.join("lobby"))["read"] == 0
    assert not [f for f in phone.seen if f["type"] == "marked"]


# ------------------------------------------------------------------ IRC: draft/read-marker


async def sasl_user(server: RunningServer, nick: str, *caps: str) -> IrcClient:
    assert server.irc_port is not None
    irc = await IrcClient.connect(server.irc_port)
    await irc.send("CAP LS 302")
    await irc.expect(" CAP \\* LS ")
    await irc.send("CAP REQ :" + " ".join(("sasl", *caps)))
    await irc.expect(" ACK ")
    await irc.send(f"NICK {nick}")
    await irc.send(f"USER {nick} 0 * :{nick}")
    await irc.send("AUTHENTICATE PLAIN")
    await irc.expect(r"^AUTHENTICATE \+$")
    await irc.send("AUTHENTICATE " + b64encode(f"\0{nick}\0{PW}".encode()).decode())
    await irc.expect(" 903 ")
    await irc.send("CAP END")
    await irc.until(r" (376|422) ")
    return irc


async def test_markread_on_irc_gets_sets_and_is_pushed(start_server: StartServer) -> None:
    server = await start_server(irc_port=0)
    phone = await device(server.port, "phone", "lobby")  # makes the account
    ids = await ids_of(phone, "lobby", "one", "two")
    irc = await sasl_user(server, "Bob", "draft/read-marker", "server-time", "message-tags")
    await irc.send("JOIN #lobby")
    lines = await irc.until(r" 366 Bob #lobby ")
    assert lines[1] == ":trio-chat MARKREAD #lobby *"  # right after JOIN, before 366
    await irc.send("CHATHISTORY LATEST #lobby * 10")
    stamps = [
        line.split("time=", 1)[1].split(" ", 1)[0].rstrip(";")
        for line in await irc.until(r"PRIVMSG #lobby :two")
        if "PRIVMSG" in line
    ]
    # a JSON device moves the marker: the IRC one hears of it
    await phone.send(type="mark", room="lobby", upto=ids[0], id="k")
    await answer(phone, "k")
    assert await irc.expect("MARKREAD") == f":trio-chat MARKREAD #lobby timestamp={stamps[0]}"
    # IRC sets it by time: the JSON device hears of it, as an id
    await irc.send(f"MARKREAD #lobby timestamp={stamps[1]}")
    assert await irc.expect("MARKREAD") == f":trio-chat MARKREAD #lobby timestamp={stamps[1]}"
    assert (await phone.expect("marked"))["upto"] == ids[1]
    # an older time changes nothing and answers the current marker; a get answers it too
    await irc.send("MARKREAD #lobby timestamp=2000-01-01T00:00:00.000Z")
    assert await irc.expect("MARKREAD") == f":trio-chat MARKREAD #lobby timestamp={stamps[1]}"
    await irc.send("MARKREAD #lobby")
    assert await irc.expect("MARKREAD") == f":trio-chat MARKREAD #lobby timestamp={stamps[1]}"
    await irc.send("MARKREAD Ann")
    assert await irc.expect("MARKREAD") == ":trio-chat MARKREAD Ann *"
    for bad, code in (
        ("MARKREAD #lobby yesterday", "INVALID_PARAMS"),
        ("MARKREAD #nowhere", "INVALID_PARAMS"),
        ("MARKREAD #bad!room", "INVALID_PARAMS"),
        ("MARKREAD", "461"),
    ):
        await irc.send(bad)
        assert code in await irc.expect(rf"FAIL MARKREAD|{code}")
    assert server.irc_port is not None
    plain = await IrcClient.connect(server.irc_port)
    await plain.register("Guest", "draft/read-marker")
    await plain.send("MARKREAD Bob")
    assert "FAIL MARKREAD ACCOUNT_REQUIRED Bob" in await plain.expect("MARKREAD")
