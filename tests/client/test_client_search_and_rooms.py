"""Sections 9 to 11 in the client: search, read markers, direct conversations, moderation.

Each test drives the app with Pilot against a real in-process server and failed before the
feature it checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from client_fakes import Peer, RealServer, until
from client_fakes import real_server as real_server
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from textual_client import connection as c
from textual_client.app import ChatApp
from textual_client.buffers import Buffer
from textual_client.screens import LoginScreen, MainScreen
from textual_client.screens.search import ContextScreen, SearchScreen
from textual_client.widgets import ChatInput, ChatLog, MemberList, RoomList, StatusLine
from trio_chat import protocol as p
from trio_chat.protocol import markers as mk
from trio_chat.protocol import moderation as md

pytestmark = pytest.mark.asyncio
SIZE = (110, 32)
PASSWORD = "correct horse"
MARKER = "── new since you last read ──"


@asynccontextmanager
async def running(port: int, **kw: Any) -> AsyncIterator[tuple[ChatApp, Pilot[None]]]:
    app = ChatApp("127.0.0.1", port, **kw)
    async with app.run_test(size=SIZE) as pilot:
        yield app, pilot


async def log_in(app: ChatApp, pilot: Pilot[None], name: str, password: str = "") -> MainScreen:
    screen = app.screen
    assert isinstance(screen, LoginScreen)
    screen.query_one("#login-name", Input).value = name
    screen.query_one("#login-password", Input).value = password
    screen.query_one("#login-name", Input).focus()
    await pilot.press("enter")
    await until(lambda: isinstance(app.screen, MainScreen) and app.screen.is_mounted)
    main = app.screen
    assert isinstance(main, MainScreen)
    await until(lambda: all(b.joined for b in main.buffers.order if b.kind == "room"))
    return main


async def type_line(pilot: Pilot[None], app: ChatApp, line: str) -> None:
    app.screen.query_one("#input", ChatInput).value = line
    await pilot.press("enter")


async def peer(port: int, name: str, rooms: tuple[str, ...] = ("lobby",), **kw: str | None) -> Peer:
    """Another user (or another device of one: `device`), logged in and in its rooms."""
    bot = Peer(port, name, rooms)
    bot.client.device = kw.get("device")
    return await bot.start(kw.get("password"))


def notes(buf: Buffer) -> list[str]:
    return [e.text for e in buf.entries if e.kind in ("info", "error")]


def shown(main: MainScreen) -> list[str]:
    return main.query_one(ChatLog).visible_text()


def labels(main: MainScreen) -> list[str]:
    return [str(o.prompt) for o in main.query_one(RoomList).options]


def members(main: MainScreen) -> list[str]:
    return [str(o.prompt) for o in main.query_one(MemberList).options]


def name(text: str) -> p.Name:
    return p.parse_name(text, "name", "name_invalid")


def frames(bot: Peer, kind: type[Any]) -> list[Any]:
    return [e for e in bot.events if isinstance(e, kind)]


def message_id(bot: Peer, text: str) -> int:
    for event in bot.events:
        found = event.message if isinstance(event, c.Sent) else event
        if isinstance(found, p.Message) and found.text == text:
            return found.id
    raise AssertionError(f"no message {text!r}")


# ----------------------------------------------------------------------- 1. search


async def test_search_pages_newest_first_and_opens_a_hit_in_context(
    real_server: RealServer,
) -> None:
    bob = await peer(real_server.port, "bob")
    try:
        for i in range(1, 24):
            await bob.say(f"deploy number {i}")
            await bob.say(f"chatter {i}")
        async with running(real_server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            await type_line(pilot, app, "/search deploy")
            search = app.screen
            assert isinstance(search, SearchScreen)
            await until(lambda: len(search.hits) == 20)
            assert [h.text for h in search.hits[:2]] == ["deploy number 23", "deploy number 22"]
            results = search.query_one(OptionList)
            first = str(results.get_option_at_index(0).prompt)
            assert first.startswith("#lobby · bob · ") and first.endswith("deploy number 23")
            assert results.get_option_at_index(20).id == "more"
            await pilot.press("end", "enter")  # "more results…": the page before the last hit
            await until(lambda: len(search.hits) == 23)
            assert search.hits[-1].text == "deploy number 1" and not search.more
            assert results.option_count == 23
            results.highlighted = 18  # deploy number 5
            await pilot.press("enter")
            context = app.screen
            assert isinstance(context, ContextScreen)
            await until(lambda: context.pages == 2)
            await pilot.pause()
            buf = context.buffer
            assert buf is not None
            around = [e.text for e in buf.entries if e.kind == "message"]
            assert around[0] == "deploy number 1"
            assert "deploy number 5" in around and "chatter 9" in around
            assert len(around) == 19  # the hit, 9 before it, 10 after it
            (hit,) = [e for e in buf.entries if e.hit]
            assert hit.text == "deploy number 5"
            lines = context.query_one(ChatLog).visible_text()
            assert any(line.endswith("bob │ deploy number 5") for line in lines)
            title = str(context.query_one("#context-title", Static).content)
            assert title.startswith("#lobby  ·  bob's message of")
            await pilot.press("escape")
            assert app.screen_stack[-1] is search
            await pilot.press("escape")
            assert main.is_current
            # narrowed: by a room and an author (ann said nothing)
            await type_line(pilot, app, "/search in:#lobby from:ann deploy")
            narrow = app.screen
            assert isinstance(narrow, SearchScreen)
            assert (narrow.query_text, narrow.room, narrow.from_) == ("deploy", "lobby", "ann")
            await until(
                lambda: "nothing found" in str(narrow.query_one("#search-status", Static).content)
            )
            await pilot.press("escape")
    finally:
        await bob.stop()


# ----------------------------------------------------------------------- 2. read markers


async def test_read_markers_line_counts_and_debounced_marks(real_server: RealServer) -> None:
    phone = await peer(real_server.port, "ann", ("lobby", "dev"), password=PASSWORD, device="phone")
    bob = await peer(real_server.port, "bob", ("lobby", "dev"))
    try:
        for text in ("one", "two", "three"):
            await bob.say(text)
        for i in range(55):  # more than a join shows: the count must be the server's
            await bob.say(f"dev {i}", room="dev")
        phone.client.mark(message_id(bob, "two"), room="lobby")
        await until(lambda: bool(frames(phone, mk.Marked)))
        async with running(real_server.port, rooms=["lobby", "dev"]) as (app, pilot):
            main = await log_in(app, pilot, "ann", PASSWORD)
            lobby, dev = main.buffers.order[0], main.buffers.order[1]
            await pilot.pause()
            lines = shown(main)
            at = next(i for i, line in enumerate(lines) if line.strip() == MARKER)
            assert lines[at - 1].endswith("bob │ two") and lines[at + 1].endswith("bob │ three")
            await until(lambda: dev.unread == 55)  # from the `rooms` answer
            assert labels(main)[1].endswith("#dev 55")
            # the view is at the bottom: a second later the marker moves to "three"
            three = message_id(bob, "three")
            await until(lambda: any(m.upto == three for m in frames(phone, mk.Marked)), wait=5)
            await until(lambda: lobby.read == three)
            # a burst of messages: one mark, a second after the last of them
            before = len(frames(phone, mk.Marked))
            for text in ("four", "five", "six"):
                await bob.say(text)
            six = message_id(bob, "six")
            await until(lambda: any(m.upto == six for m in frames(phone, mk.Marked)), wait=5)
            await asyncio.sleep(1.3)
            assert [m.upto for m in frames(phone, mk.Marked)[before:]] == [six]
            # read on another device: the count here drops
            phone.client.mark(message_id(bob, "dev 54"), room="dev")
            await until(lambda: dev.unread == 0)
            assert labels(main)[1].endswith("#dev")
            # opening dev later: the line is gone (all read)
            await pilot.press("ctrl+n")
            assert not any(e.kind == "marker" for e in dev.entries)
    finally:
        await bob.stop()
        await phone.stop()


async def test_guests_have_no_markers(real_server: RealServer) -> None:
    bob = await peer(real_server.port, "bob")
    try:
        await bob.say("hello")
        async with running(real_server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            await asyncio.sleep(1.3)
            assert lobby.read is None and lobby.marking == 0
            assert not any(e.kind == "marker" for e in lobby.entries)
            assert not any("auth" in n for n in notes(lobby))
    finally:
        await bob.stop()


# ----------------------------------------------------------------------- 3. direct conversations


async def test_direct_conversations_come_back_at_login(real_server: RealServer) -> None:
    phone = await peer(real_server.port, "ann", (), password=PASSWORD, device="phone")
    bob = await peer(real_server.port, "bob", (), password=PASSWORD)
    try:
        for text in ("are you there?", "call me"):
            bob.client.say(text, to="ann")
        await until(lambda: len(frames(phone, p.Message)) == 2)
        async with running(real_server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann", PASSWORD)
            await until(lambda: main.buffers.find("dm", "bob") is not None)
            dm = main.buffers.find("dm", "bob")
            assert dm is not None
            await until(lambda: dm.unread == 2)
            assert labels(main)[1].endswith("@bob 2")
            await pilot.press("ctrl+n")  # its history comes when it is opened
            await until(lambda: "call me" in [e.text for e in dm.entries])
            await pilot.pause()
            lines = [line.strip() for line in shown(main) if line.strip()]
            assert MARKER in lines
            assert lines.index(MARKER) < next(i for i, x in enumerate(lines) if "are you" in x)
            assert labels(main)[1].endswith("@bob")
    finally:
        await bob.stop()
        await phone.stop()


# ----------------------------------------------------------------------- 4. moderation


async def test_the_owner_moderates_with_commands(real_server: RealServer) -> None:
    async with running(real_server.port, rooms=["den"]) as (app, pilot):
        main = await log_in(app, pilot, "ann", PASSWORD)  # ann makes den: its owner
        bob = await peer(real_server.port, "bob", ("den",), password=PASSWORD)
        carol = await peer(real_server.port, "carol", ("den",))
        try:
            den = main.buffers.order[0]
            await until(lambda: len(den.members) == 3)
            await pilot.pause()
            assert members(main) == ["~ann", "bob", "carol"]
            await type_line(pilot, app, "/op bob")
            await until(lambda: "bob is now an op" in notes(den))
            assert members(main) == ["~ann", "@bob", "carol"]
            await type_line(pilot, app, "/topic release day")
            await until(lambda: den.topic == "release day")
            assert "release day" in str(main.query_one("#title-bar", Static).content)
            await type_line(pilot, app, "/kick carol being rude")
            await until(lambda: "you kicked carol: being rude" in notes(den))
            await until(lambda: bool(frames(carol, md.Kicked)))
            await until(lambda: any(e.reason == "kicked" for e in frames(bob, p.Presence)))
            assert members(main) == ["~ann", "@bob"]
            await type_line(pilot, app, "/ban carol spam")
            await until(lambda: "you banned carol: spam" in notes(den))
            await type_line(pilot, app, "/bans")
            await until(lambda: "banned from #den: carol (by ann: spam)" in notes(den))
            await type_line(pilot, app, "/unban carol")
            await until(lambda: "carol may join #den again" in notes(den))
            await type_line(pilot, app, "/private on")
            await until(lambda: "the room is private now" in notes(den))
            assert "private" in str(main.query_one("#title-bar", Static).content)
            await type_line(pilot, app, "/invite bob")
            await until(lambda: "ann invited bob to #den" in notes(den))
            await type_line(pilot, app, "/deop bob")
            await until(lambda: "bob is no longer an op" in notes(den))
            await type_line(pilot, app, "/kick")
            assert notes(den)[-1] == "usage: /kick NAME [REASON]"
        finally:
            await bob.stop()
            await carol.stop()


async def test_kicked_banned_invited_and_refused(real_server: RealServer) -> None:
    bob = await peer(real_server.port, "bob", ("den",), password=PASSWORD)  # den's owner
    carol = await peer(real_server.port, "carol", ("den",))
    try:
        async with running(real_server.port, rooms=["lobby", "den"]) as (app, pilot):
            main = await log_in(app, pilot, "ann", PASSWORD)
            lobby, den = main.buffers.order
            await pilot.press("ctrl+n")
            assert main.current is den
            await until(lambda: den.owner == "bob")
            assert members(main) == ["~bob", "ann", "carol"]
            bob.client.moderate(md.Moderate("kick", name("carol"), name("den"), "flood"))
            await until(lambda: any(e.text == "carol was kicked" for e in den.entries))
            assert members(main) == ["~bob", "ann"]
            await type_line(pilot, app, "/kick bob")
            await until(lambda: any(n.startswith("cannot kick bob: ") for n in notes(den)))
            assert "cannot kick bob: you may not do that here" in notes(den)  # the server's words
            await type_line(pilot, app, "/topic mine now")
            refused = "cannot set the topic of #den: only the room's ops set its topic"
            await until(lambda: refused in notes(den))
            bob.client.moderate(md.Moderate("kick", name("ann"), name("den"), "off topic"))
            await until(lambda: "you were kicked from #den by bob: off topic" in notes(den))
            assert not den.joined and "not joined" in str(
                main.query_one("#title-bar", Static).content
            )
            assert "den" not in app.client.rooms  # not rejoined after a reconnect
            bob.client.moderate(md.Moderate("invite", name("ann"), name("den")))
            await until(lambda: "bob invited you to #den: /join #den" in notes(den))
            bob.client.moderate(md.Moderate("ban", name("ann"), name("den"), "enough"))
            await until(lambda: bool(frames(bob, md.Banned)))
            await type_line(pilot, app, "/join den")
            await until(lambda: any(n.startswith("cannot join #den: ") for n in notes(lobby)))
            assert "banned" in [n for n in notes(lobby) if n.startswith("cannot join")][-1]
    finally:
        await bob.stop()
        await carol.stop()


async def test_a_server_ban_stops_without_reconnecting(tmp_path: Path) -> None:
    server = RealServer(tmp_path / "chat.db", flags=("--admin", "root"))
    server.start()
    try:
        root = await peer(server.port, "root", (), password=PASSWORD)
        async with running(server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            app.client.backoff_min = app.client.backoff_max = 0.1
            root.client.moderate(md.Moderate("ban", name("ann"), None, "spam"))
            status = main.query_one(StatusLine)
            await until(lambda: status.state == "stopped")
            lobby = main.buffers.order[0]
            assert "the server said goodbye: you are banned from this server" in notes(lobby)
            await asyncio.sleep(1.0)
            assert status.state == "stopped" and "banned" in status.text
            assert not any("reconnect" in n for n in notes(lobby))
        await root.stop()
    finally:
        server.stop()
