"""End to end over loopback sockets with a real SQLite file: every row of PROTOCOL.md section 4,
the server events of section 5, and the guarantees of section 6 that one process can show."""

from __future__ import annotations

import sqlite3

import pytest
import trio
import trio.testing
from chat_client import ChatClient, login
from harness import RunningServer, StartServer

from trio_chat.hub import Hub

pytestmark = pytest.mark.trio


# ------------------------------------------------------------------ hello, welcome


async def test_welcome_has_the_documented_shape(server: RunningServer) -> None:
    c = await ChatClient.connect(server.port)
    w = await c.hello("Souvik", id="h1", client="test")
    assert w == {
        "type": "welcome",
        "name": "Souvik",
        "account": False,
        "server": "trio-chat/0.1",
        "protocol": 1,
        "limits": {"max_frame": 65536, "max_text": 4000, "history_limit": 500},
        "features": ["edit", "search", "devices", "markers", "moderation"],
        "re": "h1",
    }


async def test_names_are_unique_by_nfc_casefold_and_keep_their_spelling(
    server: RunningServer,
) -> None:
    holder = await login(server.port, "Ren\u00e9e")  # composed é
    c = await ChatClient.connect(server.port)
    assert (await c.hello("RENE\u0301E"))["code"] == "name_taken"  # decomposed, upper case
    assert (await c.hello("bad name"))["code"] == "name_invalid"
    assert (await c.hello("x" * 33))["code"] == "name_invalid"
    welcome = await c.hello("Ritam")
    assert welcome["type"] == "welcome"
    await c.join("lobby")
    joined = await holder.join("LOBBY")
    assert joined["room"] == "lobby"  # the spelling first used
    assert joined["members"] == ["Ritam", "Ren\u00e9e"]


async def test_only_hello_ping_and_quit_before_welcome(server: RunningServer) -> None:
    c = await ChatClient.connect(server.port)
    frames = ({"type": "join", "room": "lobby"}, {"type": "rooms"}, {"type": "who", "room": "x"})
    for frame in frames:
        await c.send(**frame, id=1)
        assert (await c.expect("error", re=1))["code"] == "handshake_required"
    await c.send(type="ping", id="p")
    assert await c.expect("pong") == {"type": "pong", "re": "p"}
    await c.hello("Souvik")
    await c.send(type="hello", name="Other", id=2)
    assert (await c.expect("error", re=2))["code"] == "bad_state"
    await c.send(type="quit", reason="done")
    assert (await c.expect("bye"))["reason"] == "quit"
    assert await c.closed()


async def test_quit_before_hello_says_bye(server: RunningServer) -> None:
    c = await ChatClient.connect(server.port)
    await c.send(type="quit")
    assert (await c.expect("bye"))["reason"] == "quit"
    assert await c.closed()


async def test_five_failed_hellos_close_the_connection(server: RunningServer) -> None:
    owner = await login(server.port, "Owner", password="correct horse")
    await owner.aclose()
    c = await ChatClient.connect(server.port)
    for _ in range(4):
        assert (await c.hello("Owner", password="wrong password"))["code"] == "auth_failed"
    assert (await c.hello("Owner", password="wrong password"))["code"] == "auth_failed"
    assert (await c.expect("bye"))["reason"] == "too_many_errors"
    assert await c.closed()


# ------------------------------------------------------------------ accounts


async def test_accounts_password_replace_and_auth_failed(server: RunningServer) -> None:
    first = await login(server.port, "Souvik", "lobby", password="s3cret-pass")
    watcher = await login(server.port, "Ritam", "lobby")
    c = await ChatClient.connect(server.port)
    assert (await c.hello("souvik"))["code"] == "auth_failed"  # no password
    assert (await c.hello("SOUVIK", password="wrong-pass"))["code"] == "auth_failed"
    welcome = await c.hello("SOUVIK", password="s3cret-pass")
    assert welcome["type"] == "welcome" and welcome["name"] == "Souvik" and welcome["account"]
    bye = await first.expect("bye")
    assert bye["reason"] == "replaced" and bye["message"]
    assert await first.closed()
    left = await watcher.expect("presence", name="Souvik", state="left")
    assert left["reason"] == "replaced"
    # the new connection does not inherit room memberships
    await c.send(type="say", room="lobby", text="hi", id=1)
    assert (await c.expect("error", re=1))["code"] == "not_in_room"


async def test_a_guest_name_online_cannot_become_an_account(server: RunningServer) -> None:
    guest = await login(server.port, "Souvik")
    c = await ChatClient.connect(server.port)
    assert (await c.hello("Souvik", password="s3cret-pass"))["code"] == "name_taken"
    await guest.aclose()


async def test_direct_history_needs_an_account_and_skips_earlier_owners(
    server: RunningServer,
) -> None:
    guest = await login(server.port, "Souvik")
    ritam = await login(server.port, "Ritam", password="ritam-pass")
    await guest.send(type="say", to="Ritam", text="guest mail", id=1)
    await guest.expect("message", re=1)
    await guest.send(type="history", **{"with": "Ritam"}, id=2)
    assert (await guest.expect("error", re=2))["code"] == "auth_required"
    await guest.aclose()
    await ritam.expect("message", text="guest mail")
    # the name Souvik is free again: an account takes it, and does not read the guest's mail
    owner = await login(server.port, "Souvik", password="owner-pass")
    await owner.send(type="say", to="ritam", text="owner mail", id=3)
    await owner.expect("message", re=3)
    await owner.send(type="history", **{"with": "Ritam"}, id=4)
    page = await owner.expect("history", re=4)
    assert page["with"] == "Ritam"
    assert [m["text"] for m in page["messages"]] == ["owner mail"]
    # Ritam's account predates both, so Ritam sees the whole conversation
    await ritam.send(type="history", **{"with": "souvik"}, id=5)
    page = await ritam.expect("history", re=5)
    assert [m["text"] for m in page["messages"]] == ["guest mail", "owner mail"]
    assert all(m["to"] in ("Ritam", "Souvik") for m in page["messages"])


# ------------------------------------------------------------------ rooms


async def test_join_history_since_limit_more_and_paging(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby")
    ids = [(await a.say("lobby", f"n{i}"))["id"] for i in range(7)]
    b = await login(server.port, "Ritam")
    joined = await b.join("lobby", limit=3, id="j")
    assert joined["re"] == "j"
    assert [m["text"] for m in joined["history"]] == ["n4", "n5", "n6"]
    assert joined["more"] is True
    await b.send(type="history", room="lobby", before=joined["history"][0]["id"], limit=3)
    page = await b.expect("history", room="lobby")
    assert [m["text"] for m in page["messages"]] == ["n1", "n2", "n3"] and page["more"] is True
    await b.send(type="history", room="lobby", before=page["messages"][0]["id"])
    page = await b.expect("history", room="lobby")
    assert [m["text"] for m in page["messages"]] == ["n0"] and page["more"] is False
    since = await b.join("lobby", since=ids[2], limit=2)  # a resume: already a member
    assert [m["text"] for m in since["history"]] == ["n5", "n6"] and since["more"] is True
    assert (await b.join("lobby", since=ids[6]))["history"] == []
    await b.send(type="history", room="lobby")
    page = await b.expect("history", room="lobby")
    assert [m["id"] for m in page["messages"]] == ids


async def test_part_who_rooms(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby", "Dev")
    b = await login(server.port, "Ritam", "dev")
    await a.send(type="who", room="DEV", id=1)
    assert await a.expect("members", re=1) == {
        "type": "members",
        "room": "Dev",
        "members": ["Souvik", "Ritam"],
        "re": 1,
    }
    await a.send(type="rooms", id=2)
    rooms = (await a.expect("rooms", re=2))["rooms"]
    assert rooms == [{"room": "Dev", "members": 2}, {"room": "lobby", "members": 1}]
    await b.send(type="part", room="dev", id=3)
    assert await b.expect("left", re=3) == {"type": "left", "room": "Dev", "re": 3}
    presence = await a.expect("presence", name="Ritam", state="left")
    assert presence["reason"] == "part" and presence["room"] == "Dev"
    await b.send(type="part", room="dev", id=4)
    assert (await b.expect("error", re=4))["code"] == "not_in_room"
    await b.send(type="history", room="dev", id=5)
    assert (await b.expect("error", re=5))["code"] == "not_in_room"


async def test_rooms_lists_rooms_with_history_and_no_members(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "Archive")
    await a.say("Archive", "kept")
    await a.send(type="part", room="archive")
    await a.expect("left")
    await a.send(type="rooms")
    assert (await a.expect("rooms"))["rooms"] == [{"room": "Archive", "members": 0}]
    assert (await a.join("ARCHIVE"))["room"] == "Archive"


async def test_presence_joined_goes_to_the_others_only(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby")
    b = await login(server.port, "Ritam", "lobby")
    joined = await a.expect("presence", room="lobby", name="Ritam")
    assert joined["state"] == "joined" and "reason" not in joined
    await b.say("lobby", "after join")
    assert not [f for f in b.seen if f["type"] == "presence"]


async def test_dropped_connection_is_gone(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby")
    b = await login(server.port, "Ritam", "lobby")
    await b.aclose()
    assert (await a.expect("presence", name="Ritam", state="left"))["reason"] == "gone"
    again = await login(server.port, "Ritam")  # the name is free once its holder is gone
    await again.aclose()


# ------------------------------------------------------------------ say, message


async def test_say_reaches_every_member_once_with_re_for_the_sender(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby")
    b = await login(server.port, "Ritam", "lobby")
    outsider = await login(server.port, "Other", "elsewhere")
    await a.send(type="say", room="LOBBY", text="multi\nline\ttext ✓", id="m1")
    mine = await a.expect("message", re="m1")
    theirs = await b.expect("message", id=mine["id"])
    assert "re" not in theirs
    assert {k: v for k, v in mine.items() if k != "re"} == theirs
    assert theirs["room"] == "lobby" and theirs["from"] == "Souvik"
    assert theirs["text"] == "multi\nline\ttext ✓"
    await outsider.send(type="ping", id="x")
    await outsider.expect("pong")
    assert not [f for f in outsider.seen if f["type"] == "message"]


async def test_direct_message_and_no_such_user(server: RunningServer) -> None:
    a = await login(server.port, "Souvik")
    b = await login(server.port, "Ritam")
    await a.send(type="say", to="RITAM", text="psst", id=7)
    echo = await a.expect("message", re=7)
    got = await b.expect("message", text="psst")
    assert echo["to"] == got["to"] == "Ritam" and got["from"] == "Souvik" and "room" not in got
    await a.send(type="say", to="Souvik", text="note to self", id=8)
    assert (await a.expect("message", re=8))["to"] == "Souvik"
    await a.send(type="say", to="nobody", text="hi", id=9)
    assert (await a.expect("error", re=9))["code"] == "no_such_user"
    await a.send(type="say", to="bad name", text="hi", id=10)
    assert (await a.expect("error", re=10))["code"] == "name_invalid"


async def test_nonce_is_stored_once_even_after_leaving(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby")
    b = await login(server.port, "Ritam", "lobby")
    await a.send(type="say", room="lobby", text="once", nonce="n-1", id=1)
    first = await a.expect("message", re=1)
    await a.send(type="say", room="lobby", text="once", nonce="n-1", id=2)
    again = await a.expect("message", re=2)
    assert {**again, "re": 1} == first
    await a.send(type="part", room="lobby")
    await a.expect("left")
    await a.send(type="say", room="lobby", text="once", nonce="n-1", id=3)
    assert (await a.expect("message", re=3))["id"] == first["id"]
    await b.say("lobby", "next")
    assert [f["text"] for f in b.seen if f["type"] == "message"] == ["once", "next"]


async def test_ids_increase_across_rooms_and_direct_messages(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "one", "two")
    b = await login(server.port, "Ritam")
    ids = [
        (await a.say("one", "a"))["id"],
        (await a.say("two", "b"))["id"],
    ]
    await a.send(type="say", to="Ritam", text="c", id="d")
    ids.append((await a.expect("message", re="d"))["id"])
    ids.append((await a.say("one", "e"))["id"])
    assert ids == sorted(ids) and len(set(ids)) == 4 and ids[0] > 0
    await b.aclose()


async def test_every_error_code_with_re(server: RunningServer) -> None:
    c = await login(server.port, "Souvik", "lobby")
    cases: list[tuple[bytes, str]] = [
        (b'{"type":"dance","id":3}', "unknown_type"),
        (b'{"type":"join","room":"lobby","limit":true,"id":4}', "invalid_field"),
        (b'{"type":"join","room":"lobby","since":NaN,"id":5}', "invalid_field"),
        (b'{"type":"join","room":"lobby","since":1e400,"id":6}', "invalid_field"),
        (b'{"type":"join","room":"lobby","since":9007199254740993,"id":7}', "invalid_field"),
        (b'{"type":"say","room":"lobby","text":"a\\rb","id":8}', "invalid_field"),
        (b'{"type":"say","room":"lobby","text":"\\ud800","id":9}', "invalid_field"),
        (b'{"type":"say","room":"lobby","to":"x","text":"t","id":10}', "invalid_field"),
        (b'{"type":"join","room":"no way","id":11}', "room_invalid"),
        (b'{"type":"say","room":"nowhere","text":"t","id":12}', "not_in_room"),
        (b'{"type":"say","to":"ghost","text":"t","id":13}', "no_such_user"),
        (b'{"type":"history","with":"ghost","id":14}', "auth_required"),
        (b'{"type":"hello","name":"again","id":15}', "bad_state"),
    ]
    for raw, code in cases:
        await c.send_raw(raw + b"\n")
        rid = int(raw.split(b'"id":')[-1].rstrip(b"}"))
        error = await c.expect("error", re=rid)
        assert error["code"] == code, (raw, error)
        assert error["message"]
    await c.send_raw(b'{"type":"say","room":"lobby","text":"x","id":1,"id":2}\n')
    error = await c.expect("error")
    assert error["code"] == "bad_frame" and "re" not in error  # which id would it be?
    await c.send_raw(b'{"id":16}\n')
    assert await c.expect("error", re=16, code="bad_frame")  # no type, but a valid id
    await c.send_raw(b'{"type":"say","id":["no"]}\n')  # an invalid id: no re
    error = await c.expect("error")
    assert error["code"] == "invalid_field" and "re" not in error and "id" in error["message"]
    await c.send_raw(b'{"type":"say","room":"lobby","text":"' + b"x" * 70000 + b'"}\n')
    assert (await c.expect("error"))["code"] == "frame_too_large"
    assert (await c.say("lobby", "still here"))["text"] == "still here"


async def test_twenty_errors_in_a_row_close_the_connection(server: RunningServer) -> None:
    c = await login(server.port, "Souvik")
    for _ in range(19):
        await c.send_raw(b"nope\n")
    await c.send(type="ping")  # a good frame resets the count
    await c.expect("pong")
    for _ in range(20):
        await c.send_raw(b"nope\n")
    assert (await c.expect("bye"))["reason"] == "too_many_errors"
    assert await c.closed()
    assert len([f for f in c.seen if f["type"] == "error"]) == 39


# ------------------------------------------------------------------ guarantees


async def test_nothing_is_delivered_before_it_is_committed(server: RunningServer) -> None:
    """Guarantee 3: whenever a client holds a message, a fresh reader of the file finds it."""
    senders = [await login(server.port, f"s{i}", "lobby") for i in range(3)]
    reader = await login(server.port, "reader", "lobby")
    db = sqlite3.connect(server.config.db)

    async def send(client: ChatClient, index: int) -> None:
        for n in range(40):
            await client.send(type="say", room="lobby", text=f"{index}-{n}")

    async with trio.open_nursery() as nursery:
        for i, s in enumerate(senders):
            nursery.start_soon(send, s, i)
        for _ in range(120):
            message = await reader.expect("message")
            row = db.execute("SELECT text FROM messages WHERE id = ?", (message["id"],)).fetchone()
            assert row == (message["text"],)
    db.close()


async def test_join_while_others_send_is_seamless(server: RunningServer) -> None:
    """History and live delivery meet with no gap and no repeat (PROTOCOL.md section 4)."""
    sender = await login(server.port, "Sender", "lobby")
    total = 300
    first = await sender.say("lobby", "m0")

    async def flood() -> None:
        for n in range(1, total):
            await sender.send(type="say", room="lobby", text=f"m{n}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        joiners = []
        for j in range(5):
            await trio.sleep(0.005 * j)
            client = await ChatClient.connect(server.port)
            await client.hello(f"Joiner{j}")
            joiners.append(client)
        for client in joiners:
            joined = await client.join("lobby", since=first["id"] - 1, limit=500)
            seen = [m["text"] for m in joined["history"]]
            while len(seen) < total:
                seen.append((await client.expect("message"))["text"])
            assert seen == [f"m{n}" for n in range(total)]


async def test_a_stalled_reader_is_closed_and_holds_nobody_up(start_server: StartServer) -> None:
    """Guarantee 4: a client that stops reading gets slow_consumer; the others carry on."""
    server = await start_server(queue_limit=20)
    stalled = await login(server.port, "Stalled", "lobby")
    reader = await login(server.port, "Reader", "lobby")
    sender = await login(server.port, "Sender", "lobby")
    await reader.expect("presence", name="Sender")
    text = "x" * 3900  # fills the stalled client's socket buffers quickly
    with trio.fail_after(30):
        for n in range(5000):
            await sender.send(type="say", room="lobby", text=f"{n} {text}")
            got = await reader.expect("message")
            assert got["text"].startswith(f"{n} ")
            await sender.expect("message", id=got["id"])
            left = [f for f in reader.seen if f["type"] == "presence" and f["name"] == "Stalled"]
            if left:
                break
    assert left[0]["state"] == "left" and left[0]["reason"] == "gone"
    frames = []
    try:
        while True:
            frames.append(await stalled.recv())
    except Exception:
        pass
    assert frames and frames[-1] == {
        "type": "bye",
        "reason": "slow_consumer",
        "message": frames[-1]["message"],
    }


async def test_connection_caps(start_server: StartServer) -> None:
    server = await start_server(max_conns=2)
    a = await login(server.port, "A")
    b = await ChatClient.connect(server.port)
    c = await ChatClient.connect(server.port)
    assert (await c.recv())["reason"] == "server_busy"
    assert await c.closed()
    await b.aclose()
    with trio.fail_after(5):
        while True:  # the slot is free as soon as the server has seen the close
            d = await ChatClient.connect(server.port)
            if (await d.hello("D"))["type"] == "welcome":
                break
            await trio.sleep(0.01)
    await a.aclose()


async def test_per_address_cap(start_server: StartServer) -> None:
    server = await start_server(max_per_ip=1)
    a = await login(server.port, "A")
    b = await ChatClient.connect(server.port)
    assert (await b.recv())["reason"] == "server_busy"
    await a.aclose()


async def test_shutdown_commits_and_says_bye(server: RunningServer) -> None:
    """Guarantee 7, in process: messages accepted before the shutdown are committed and sent."""
    a = await login(server.port, "Souvik", "lobby")
    b = await login(server.port, "Ritam", "lobby")
    for n in range(50):
        await a.send(type="say", room="lobby", text=f"t{n}")
    await a.say("lobby", "last")
    server.shutdown.set()
    for client in (a, b):
        assert (await client.expect("bye"))["reason"] == "shutdown"
        assert await client.closed()
    texts = [f["text"] for f in b.seen if f["type"] == "message"]
    assert texts == [f"t{n}" for n in range(50)] + ["last"]
    with sqlite3.connect(server.config.db) as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (51,)


async def test_a_failing_connection_stays_alone(server: RunningServer) -> None:
    """Guarantee 6: bytes of every kind on one connection cost the server nothing."""
    a = await login(server.port, "Souvik", "lobby")
    rude = await ChatClient.connect(server.port)
    await rude.send_raw(b'{"type":"hello","name":"x"' + b"[" * 10000 + b"\n")
    await rude.send_raw(bytes(range(256)) * 10 + b"\n")
    await rude.send_raw(b'{"type":"hello","name":')  # half a frame, then gone
    await rude.aclose()
    assert (await a.say("lobby", "alive"))["text"] == "alive"


async def test_an_error_in_one_session_ends_that_connection_alone(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug hit by one connection is logged with its peer and costs only that connection."""
    a = await login(server.port, "Souvik", "lobby")
    victim = await login(server.port, "Ritam", "lobby")

    def broken(self: object) -> list[tuple[str, int]]:
        raise RuntimeError("a bug in rooms")

    monkeypatch.setattr(Hub, "room_list", broken)
    await victim.send(type="rooms")
    assert await victim.closed()
    assert (await a.expect("presence", name="Ritam", state="left"))["reason"] == "gone"
    assert (await a.say("lobby", "still serving"))["text"] == "still serving"
    failures = [r for r in caplog.records if "connection failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert failures[0].getMessage().startswith("127.0.0.1:")


async def test_two_logins_creating_one_account_at_once(server: RunningServer) -> None:
    """Exactly one creates the account; the other is refused."""
    clients = [await ChatClient.connect(server.port) for _ in range(2)]
    for client, password in zip(clients, ["first password", "second password"], strict=True):
        await client.send(type="hello", name="Newcomer", password=password)
    answers = [await client.recv() for client in clients]
    kinds = sorted(a["type"] if a["type"] == "welcome" else a["code"] for a in answers)
    assert kinds in (["auth_failed", "welcome"], ["name_taken", "welcome"])
    winner = clients[[a["type"] for a in answers].index("welcome")]
    await winner.aclose()
    again = await ChatClient.connect(server.port)
    password = ["first password", "second password"][clients.index(winner)]
    assert (await again.hello("newcomer", password=password))["account"] is True
