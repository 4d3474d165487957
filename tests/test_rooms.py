"""Section 11 end to end over loopback: owners, topics, private rooms, kicks, bans, admins, the
IRC door's view of them, and the admin command on a live server."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from chat_client import ChatClient, Closed, login
from harness import RunningServer, StartServer
from test_irc_door import IrcClient

pytestmark = pytest.mark.trio

PW = "correct horse battery"


async def answer(c: ChatClient, rid: str) -> dict[str, Any]:
    while True:
        frame = await c.recv()
        if frame.get("re") == rid:
            return frame


async def ask(c: ChatClient, rid: str, **frame: Any) -> dict[str, Any]:
    await c.send(id=rid, **frame)
    return await answer(c, rid)


async def quiet(c: ChatClient, seconds: float = 0.3) -> list[dict[str, Any]]:
    """Every frame that arrives within `seconds`."""
    got: list[dict[str, Any]] = []
    with trio.move_on_after(seconds):
        while True:
            got.append(await c.recv())
    return got


# ------------------------------------------------------------------ owners, topics, ops


async def test_owner_topic_and_ops(server: RunningServer) -> None:
    owner = await login(server.port, "Souvik", password=PW)
    joined = await owner.join("den")
    assert (joined["owner"], joined["ops"], joined["private"], joined["topic"]) == (
        "Souvik",
        [],
        False,
        "",
    )
    ritam = await login(server.port, "Ritam", "den", password=PW)
    guest = await login(server.port, "Guest", "den")
    assert (await ask(guest, "t", type="topic", room="den", text="x"))["code"] == "forbidden"
    assert (await ask(ritam, "o", type="op", room="den", name="Ritam"))["code"] == "forbidden"
    room = await ask(owner, "o1", type="op", room="den", name="Ritam")
    assert room == {"type": "room", "room": "den", "owner": "Souvik", "ops": ["Ritam"],
                    "private": False, "re": "o1"}  # fmt: skip
    assert (await guest.expect("room"))["ops"] == ["Ritam"]
    assert (await ask(owner, "o2", type="op", room="den", name="Guest"))["code"] == "no_such_user"
    topic = await ask(ritam, "t1", type="topic", room="den", text="plans")
    assert topic["type"] == "topic" and topic["by"] == "Ritam" and topic["id"] > 0
    assert (await guest.expect("topic"))["text"] == "plans"
    assert (await ask(ritam, "t2", type="topic", room="den", text="x" * 301))["code"] == (
        "invalid_field"
    )
    history = await ask(guest, "h", type="history", room="den")
    assert [e["type"] for e in history["messages"]] == ["topic"]
    deop = await ask(owner, "d", type="deop", room="den", name="Ritam")
    assert deop["ops"] == []
    assert (await ask(ritam, "t3", type="topic", room="den", text="y"))["code"] == "forbidden"


async def test_ownership_survives_a_restart(start_server: StartServer, tmp_path: Path) -> None:
    first = await start_server()
    owner = await login(first.port, "Souvik", password=PW)
    await owner.join("den")
    await ask(owner, "t", type="topic", room="den", text="kept")
    await ask(owner, "p", type="set", room="den", private=True)
    first.shutdown.set()
    await owner.closed()
    second = await start_server()
    owner = await login(second.port, "Souvik", password=PW)
    joined = await owner.join("den")
    assert (joined["owner"], joined["topic"], joined["private"]) == ("Souvik", "kept", True)
    other = await login(second.port, "Ritam", password=PW)
    assert (await ask(other, "j", type="join", room="den"))["code"] == "forbidden"


async def test_a_guests_room_has_no_owner_but_its_first_member_is_an_op(
    server: RunningServer,
) -> None:
    first = await login(server.port, "Guest")
    joined = await first.join("lobby")
    assert joined["owner"] is None and joined["ops"] == ["Guest"]
    second = await login(server.port, "Other")
    assert (await second.join("lobby"))["ops"] == ["Guest"]
    # any member of a room without owner sets its topic; only the op kicks
    assert (await ask(second, "t", type="topic", room="lobby", text="hi"))["type"] == "topic"
    got = await ask(second, "k", type="kick", room="lobby", name="Guest")
    assert got["code"] == "forbidden"
    await ask(first, "p", type="part", room="lobby")
    await first.join("lobby")  # back, but no longer the first: no op
    assert (await second.join("lobby"))["ops"] == []


async def test_moderators_delete_others_messages(server: RunningServer) -> None:
    owner = await login(server.port, "Souvik", "den", password=PW)
    guest = await login(server.port, "Guest", "den")
    said = await guest.say("den", "spam")
    other = await login(server.port, "Other", "den")
    got = await ask(other, "d0", type="delete", message=said["id"])
    assert got["code"] == "forbidden"
    got = await ask(owner, "d1", type="delete", message=said["id"])
    assert got["type"] == "delete" and got["by"] == "Souvik"


# ------------------------------------------------------------------ kicks and bans


async def test_kick_reaches_every_device_and_the_room_sees_kicked(server: RunningServer) -> None:
    owner = await login(server.port, "Souvik", "den", password=PW)
    devices = [await login(server.port, "Ritam", "den", password=PW, device=d) for d in ("a", "b")]
    watcher = await login(server.port, "Watcher", "den")
    got = await ask(owner, "k", type="kick", room="den", name="Ritam", reason="calm down")
    assert got == {"type": "kicked", "room": "den", "name": "Ritam", "by": "Souvik",
                   "reason": "calm down", "re": "k"}  # fmt: skip
    for device in devices:
        kicked = await device.expect("kicked")
        assert kicked["by"] == "Souvik" and "re" not in kicked
    left = await watcher.expect("presence", name="Ritam", state="left")
    assert left["reason"] == "kicked"
    assert (await ask(owner, "k2", type="kick", room="den", name="Souvik"))["code"] == ("forbidden")
    assert (await ask(owner, "k3", type="kick", room="den", name="Nobody"))["code"] == (
        "no_such_user"
    )
    # a kick is not a ban: Ritam may come back
    assert (await devices[0].join("den"))["room"] == "den"


async def test_ban_covers_look_alikes_until_unban(server: RunningServer) -> None:
    owner = await login(server.port, "Souvik", "den", password=PW)
    pest = await login(server.port, "Pest", "den")
    got = await ask(owner, "b", type="ban", room="den", name="Pest", reason="spam")
    assert (got["type"], got["room"], got["name"]) == ("banned", "den", "Pest")
    await pest.expect("kicked", room="den")
    assert (await ask(pest, "j", type="join", room="den"))["code"] == "banned"
    await pest.send(type="quit")
    await pest.closed()
    twin = await login(server.port, "P\u0435st")  # a Cyrillic e
    assert (await ask(twin, "j", type="join", room="den"))["code"] == "banned"
    bans = await ask(owner, "l", type="bans", room="den")
    assert [(b["name"], b["by"], b["reason"]) for b in bans["bans"]] == [("Pest", "Souvik", "spam")]
    got = await ask(owner, "u", type="unban", room="den", name="pest")
    assert (got["type"], got["name"]) == ("unbanned", "Pest")
    assert (await twin.join("den"))["room"] == "den"


async def test_kick_under_load_nothing_after_the_kick(server: RunningServer) -> None:
    owner = await login(server.port, "Souvik", "den", password=PW)
    victim = await login(server.port, "Victim", "den")
    sender = await login(server.port, "Sender", "den")
    seen_by_owner: list[int] = []

    async def flood() -> None:
        for i in range(600):
            await sender.send(type="say", room="den", text=f"m{i}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        while len(seen_by_owner) < 200:
            frame = await owner.recv()
            if frame["type"] == "message":
                seen_by_owner.append(frame["id"])
        await owner.send(type="kick", room="den", name="Victim", id="k")
        kick_seen_after: int | None = None
        while True:
            frame = await owner.recv()
            if frame["type"] == "message":
                seen_by_owner.append(frame["id"])
            elif frame.get("re") == "k":
                kick_seen_after = seen_by_owner[-1]
                break
        got: list[int] = []
        while True:
            frame = await victim.recv()
            if frame["type"] == "kicked":
                break
            if frame["type"] == "message":
                got.append(frame["id"])
        after = [f for f in await quiet(victim, 0.5) if f["type"] == "message"]
    assert after == []  # nothing reaches the kicked connection after its kicked frame
    assert got == sorted(got) and got[-1] <= kick_seen_after


# ------------------------------------------------------------------ private rooms


async def test_a_private_room_does_not_exist_for_outsiders(start_server: StartServer) -> None:
    server = await start_server(irc_port=0)
    assert server.irc_port is not None
    owner = await login(server.port, "Souvik", "den", password=PW)
    guest = await login(server.port, "Guest", "den")
    member = await login(server.port, "Ritam", "den", password=PW)
    said = await owner.say("den", "secret plan")
    got = await ask(owner, "p", type="set", room="den", private=True)
    assert got["private"] is True
    await guest.expect("kicked", room="den")  # guests in it are kicked
    assert (await member.expect("room"))["private"] is True
    # Ritam was in it: invited, so it may come back
    await ask(member, "x", type="part", room="den")
    assert (await member.join("den", since=0))["history"]

    outsider = await login(server.port, "Mallory", password=PW)
    assert (await ask(outsider, "j", type="join", room="den"))["code"] == "forbidden"
    assert (await ask(outsider, "j2", type="join", room="den", since=said["id"] - 1))["code"] == (
        "forbidden"
    )
    assert "den" not in [r["room"] for r in (await ask(outsider, "r", type="rooms"))["rooms"]]
    assert (await ask(outsider, "w", type="who", room="den"))["members"] == []
    assert (await ask(outsider, "h", type="history", room="den"))["code"] == "not_in_room"
    assert (await ask(outsider, "t", type="topic", room="den", text="x"))["code"] == "forbidden"
    assert (await ask(outsider, "d", type="delete", message=said["id"]))["code"] == (
        "no_such_message"
    )
    assert (await ask(guest, "j", type="join", room="den"))["code"] == "forbidden"

    # kicked meanwhile: the resume with since is refused, the invitation is gone
    await ask(owner, "k", type="kick", room="den", name="Ritam")
    await member.expect("kicked")
    assert (await ask(member, "j", type="join", room="den", since=said["id"]))["code"] == (
        "forbidden"
    )
    assert (await ask(member, "w", type="who", room="den"))["members"] == []

    # the IRC door shows nothing of it either
    irc = await IrcClient.connect(server.irc_port)
    await irc.register("Eve", "draft/chathistory", "batch")
    await irc.send("JOIN #den")
    await irc.expect(" 473 Eve #den ")
    await irc.send("NAMES #den")
    names = await irc.until(" 366 ")
    assert not any(" 353 " in line for line in names)
    await irc.send("WHO #den")
    assert not any(" 352 " in line for line in await irc.until(" 315 "))
    await irc.send("LIST")
    assert not any("#den" in line for line in await irc.until(" 323 "))
    await irc.send("CHATHISTORY LATEST #den * 10")
    lines = await irc.until("FAIL CHATHISTORY|BATCH -")
    assert not any("secret" in line for line in lines)
    await irc.send("TOPIC #den")
    await irc.expect(" 403 Eve #den ")
    await irc.send("MODE #den")
    await irc.expect(" 403 Eve #den ")

    # invited: in it goes; a room made public again shows to all
    got = await ask(owner, "i", type="invite", room="den", name="Mallory")
    assert got == {"type": "invited", "room": "den", "name": "Mallory", "by": "Souvik", "re": "i"}
    assert (await outsider.expect("invited"))["by"] == "Souvik"
    assert (await outsider.join("den"))["private"] is True
    await ask(owner, "pub", type="set", room="den", private=False)
    assert (await ask(guest, "j3", type="join", room="den"))["type"] == "joined"


# ------------------------------------------------------------------ server admins


async def test_admins_act_as_owner_and_ban_from_the_server(start_server: StartServer) -> None:
    server = await start_server(admin=("Boss",))
    boss = await login(server.port, "Boss", password=PW)  # made after the flag named it
    owner = await login(server.port, "Souvik", "den", password=PW)
    await ask(owner, "p", type="set", room="den", private=True)
    joined = await boss.join("den")  # admins join any room
    assert joined["private"] is True
    assert (await ask(owner, "o", type="set", room="den", owner="Boss"))["code"] == "forbidden"
    assert (await ask(owner, "k", type="kick", room="den", name="Boss"))["code"] == "forbidden"
    got = await ask(boss, "o", type="set", room="den", owner="Boss")
    assert got["owner"] == "Boss"
    pest = await login(server.port, "Pest", password=PW)
    await ask(boss, "i", type="invite", room="den", name="Pest")
    await pest.join("den")
    pest2 = await login(server.port, "Pest", password=PW, device="phone")
    assert (await ask(owner, "sb", type="ban", name="Pest"))["code"] == "forbidden"
    got = await ask(boss, "sb", type="ban", name="Pest", reason="abuse")
    assert (got["type"], got["name"]) == ("banned", "Pest") and "room" not in got
    for device in (pest, pest2):
        assert (await device.expect("bye"))["reason"] == "banned"
        assert await device.closed()
    left = await owner.expect("presence", name="Pest", state="left")
    assert left["reason"] == "kicked"
    again = await ChatClient.connect(server.port)
    assert (await again.hello("Pest", password=PW))["code"] == "banned"
    assert (await again.hello("P\u0435st"))["code"] == "banned"  # a look-alike


# ------------------------------------------------------------------ the IRC door


async def test_irc_kick_invite_mode_topic(start_server: StartServer) -> None:
    server = await start_server(irc_port=0)
    assert server.irc_port is not None
    owner = await login(server.port, "Souvik", "den", password=PW)
    op = await IrcClient.connect(server.irc_port)
    await op.register("Ritam")
    victim = await IrcClient.connect(server.irc_port)
    await victim.register("Victim")
    await op.join("#den")
    await victim.join("#den")
    await ask(owner, "t", type="topic", room="den", text="the plan")
    await op.expect("^:Souvik!Souvik@trio-chat TOPIC #den :the plan$")
    await op.send("TOPIC #den :mine")
    await op.expect(" 482 Ritam #den ")
    await op.send("KICK #den Victim")
    await op.expect(" 482 Ritam #den ")
    await owner.send(type="op", room="den", name="Ritam", id="o")
    assert (await answer(owner, "o"))["code"] == "no_such_user"  # a guest cannot be an op
    await op.send("TOPIC #den")
    await op.expect(" 332 Ritam #den :the plan$")
    await op.expect(" 333 Ritam #den Souvik!Souvik@trio-chat :?\\d+$")
    await op.send("NAMES #den")
    await op.expect(" 353 Ritam = #den :@Souvik Ritam Victim$")
    await op.send("WHO #den")
    assert any(" Souvik H@ " in line for line in await op.until(" 315 "))
    await ask(owner, "k", type="kick", room="den", name="Victim", reason="bye")
    await victim.expect("^:Souvik!Souvik@trio-chat KICK #den Victim :bye$")
    await op.expect("KICK #den Victim :kicked$")
    await ask(owner, "b", type="ban", room="den", name="Victim")
    await victim.send("JOIN #den")
    await victim.expect(" 474 Victim #den ")
    await op.send("MODE #den b")  # not an op: the list is not shown
    assert not any(" 367 " in line for line in await op.until(" 368 Ritam #den "))
    await ask(owner, "p", type="set", room="den", private=True)
    await op.expect("KICK #den Ritam :the room is private$")  # a guest in a room made private
    await op.send("MODE #den")
    await op.expect(" 403 Ritam #den ")


async def test_irc_owner_sets_modes(start_server: StartServer) -> None:
    server = await start_server(irc_port=0)
    assert server.irc_port is not None
    owner = await IrcClient.connect(server.irc_port)
    await owner.register("Owner")
    await owner.join("#guests")  # a guest's room: the first member is an op
    other = await login(server.port, "Ritam", "guests", password=PW)
    await owner.send("MODE #guests +b Pest!*@*")
    await owner.expect(" MODE #guests \\+b Pest!\\*@\\*$")
    await owner.send("MODE #guests b")
    await owner.expect(" 367 Owner #guests Pest!\\*@\\* Owner!Owner@trio-chat :?\\d+$")
    await owner.expect(" 368 Owner #guests ")
    await owner.send("MODE #guests -b Pest")
    await owner.expect(" MODE #guests -b Pest!\\*@\\*$")
    await owner.send("MODE #guests +i")  # only the owner (there is none) or admins
    await owner.expect(" 482 Owner #guests ")
    await owner.send("INVITE Ritam #guests")
    await owner.expect(" 341 Owner Ritam :?#guests$")
    assert (await other.expect("invited"))["by"] == "Owner"
    await owner.send("KICK #guests Ritam :out")
    await owner.expect("KICK #guests Ritam :kicked$")
    assert (await other.expect("kicked"))["reason"] == "out"


# ------------------------------------------------------------------ the admin command


async def admin(db: Path, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    result = await trio.run_process(
        [sys.executable, "-m", "trio_chat", "admin", "--db", str(db), *args],
        stdin=stdin, capture_stdout=True, capture_stderr=True, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_admin_command_on_a_live_server(server: RunningServer) -> None:
    db = server.config.db
    souvik = await login(server.port, "Souvik", "den", password=PW)
    pest = await login(server.port, "Pest", "den", password=PW)
    await souvik.say("den", "hello")
    await ask(souvik, "b", type="ban", room="den", name="Pest", reason="spam")
    status, out, err = await admin(db, "accounts")
    assert status == 0 and [line.split("\t")[0] for line in out.splitlines()] == ["Pest", "Souvik"]
    status, out, err = await admin(db, "log")
    assert status == 0 and "Souvik\tban\tPest in den (spam)" in out
    # a server-wide ban from the command line reaches the running server within seconds
    status, out, err = await admin(db, "ban", "Pest", "--reason", "enough")
    assert status == 0, err
    with trio.fail_after(10):
        assert (await pest.expect("bye", timeout=10))["reason"] == "banned"
    c = await ChatClient.connect(server.port)
    assert (await c.hello("Pest", password=PW))["code"] == "banned"
    assert (await admin(db, "unban", "Pest"))[0] == 0
    await trio.sleep(2.5)
    assert (await c.hello("Pest", password=PW))["type"] == "welcome"
    # a new password, from standard input
    status, out, err = await admin(
        db, "password", "Souvik", "--password-stdin", "--scrypt-n", "1024", stdin=b"new pass 123\n"
    )
    assert status == 0, err
    await trio.sleep(2.5)
    again = await ChatClient.connect(server.port)
    assert (await again.hello("Souvik", password=PW, device="b"))["code"] == "auth_failed"
    welcome = await again.hello("Souvik", password="new pass 123", device="b")
    assert welcome["type"] == "welcome"
    # clear errors, non-zero exits
    assert (await admin(db, "password", "Nobody", "--password-stdin", stdin=b"x" * 9))[0] == 1
    assert (await admin(db, "unban", "Nobody"))[0] == 1
    status, _, err = await admin(db.with_name("missing.db"), "accounts")
    assert status == 1 and "no database" in err
    status, _, err = await admin(db, "prune", "--older-than", "soon")
    assert status == 2 and "expected an age" in err
    # prune: tombstones without text, out of the search index; then optimize
    status, out, err = await admin(db, "prune", "--older-than", "0s")
    assert status == 0, err
    page = await ask(souvik, "h", type="history", room="den")
    hello = [m for m in page["messages"] if m["type"] == "message"]
    assert hello and all(m.get("deleted") and "text" not in m for m in hello)
    assert (await admin(db, "optimize"))[0] == 0
    with sqlite3.connect(db) as check:
        found = check.execute(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'hello'"
        ).fetchone()
        assert found == (0,)
    # delete an account and its direct messages
    await souvik.send(type="say", to="Pest", text="a letter", id="dm")
    await answer(souvik, "dm")
    status, out, err = await admin(db, "delete-account", "Pest")
    assert status == 0 and "deleted" in out, err
    with sqlite3.connect(db) as check:
        texts = check.execute("SELECT text FROM messages WHERE conv LIKE '@%'").fetchall()
        assert all(t == ("",) for t in texts)
        assert check.execute("SELECT count(*) FROM accounts WHERE key = 'pest'").fetchone() == (0,)


async def test_backup_while_four_senders_write(server: RunningServer, tmp_path: Path) -> None:
    senders = [await login(server.port, f"S{i}", "busy") for i in range(4)]
    confirmed: list[int] = []
    stop = trio.Event()

    async def send(c: ChatClient, i: int) -> None:
        n = 0
        while not stop.is_set():
            got = await c.say("busy", f"{i}-{n}")
            confirmed.append(got["id"])
            n += 1

    async with trio.open_nursery() as nursery:
        for i, c in enumerate(senders):
            nursery.start_soon(send, c, i)
        await trio.sleep(0.5)
        before = list(confirmed)  # committed before the backup starts
        copy = tmp_path / "copy.db"
        status, _, err = await admin(server.config.db, "backup", str(copy))
        await trio.sleep(0.3)
        stop.set()
    assert status == 0, err
    assert before and len(confirmed) > len(before)
    with sqlite3.connect(copy) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = {row[0] for row in check.execute("SELECT id FROM messages")}
    assert set(before) <= ids
    assert (await admin(server.config.db, "backup", str(copy)))[0] == 1  # exists: --force


async def test_admin_help_and_entry_point() -> None:
    for args in (["--help"], ["backup", "--help"], ["prune", "--help"], ["password", "--help"]):
        result = await trio.run_process(
            [sys.executable, "-m", "trio_chat", "admin", *args], capture_stdout=True, check=False
        )
        assert result.returncode == 0 and b"usage: trio-chat admin" in result.stdout


async def test_quit_clients_are_fine(server: RunningServer) -> None:
    c = await login(server.port, "Souvik", password=PW)
    await c.send(type="quit")
    with pytest.raises(Closed):
        while True:
            await c.recv()
