"""The Textual client driven by Pilot against a real trio-chat server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from client_fakes import Peer, RealServer, until
from client_fakes import real_server as real_server
from textual.pilot import Pilot
from textual.widgets import Input, Static

from textual_client.app import ChatApp
from textual_client.buffers import Buffer
from textual_client.screens import LoginScreen, MainScreen
from textual_client.widgets import ChatInput, ChatLog, RoomList, StatusLine

SIZE = (110, 32)


@asynccontextmanager
async def running(server: RealServer, **kw: object) -> AsyncIterator[tuple[ChatApp, Pilot[None]]]:
    app = ChatApp("127.0.0.1", server.port, **kw)  # type: ignore[arg-type]
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


def login_error(app: ChatApp) -> str:
    return str(app.screen.query_one("#login-error", Static).content)


def texts(buf: Buffer) -> list[str]:
    return [e.text for e in buf.entries if e.kind == "message"]


async def type_line(pilot: Pilot[None], app: ChatApp, line: str) -> None:
    """Type a line into the chat input (set whole, as a paste would) and press Enter."""
    field = app.screen.query_one("#input", ChatInput)
    field.value = line
    await pilot.press("enter")


@pytest.mark.asyncio
async def test_name_prompt_shows_errors_inline(real_server: RealServer) -> None:
    carol = Peer(real_server.port, "carol", rooms=())
    await carol.start(password="carol-password")
    await carol.stop()
    bob = await Peer(real_server.port, "bob").start()
    try:
        async with running(real_server) as (app, pilot):
            await until(lambda: isinstance(app.screen, LoginScreen))
            assert app.focused is not None and app.focused.id == "login-name"
            app.screen.query_one("#login-name", Input).value = "no spaces"
            await pilot.press("enter")
            await until(lambda: "letters" in login_error(app))
            app.screen.query_one("#login-name", Input).value = "bob"
            await pilot.press("enter")
            await until(lambda: "name_taken" in login_error(app))
            app.screen.query_one("#login-name", Input).value = "carol"
            await pilot.press("enter")
            await until(lambda: "auth_failed" in login_error(app))
            assert isinstance(app.screen, LoginScreen)
            main = await log_in(app, pilot, "carol", "carol-password")
            assert app.focused is main.query_one("#input")
            assert "(account)" in main.query_one(StatusLine).text
    finally:
        await bob.stop()


@pytest.mark.asyncio
async def test_chat_history_presence_marks_rooms_and_direct(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "bob").start()
    await bob.say("before ann came")
    try:
        async with running(real_server) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            assert texts(lobby) == ["before ann came"]  # history on join
            assert {"ann", "bob"} <= set(lobby.members)
            await until(lambda: any(getattr(e, "name", "") == "ann" for e in bob.events))

            # Send: pending at once, then confirmed by the echo.
            await type_line(pilot, app, "hello bob")
            assert lobby.pending or "hello bob" in texts(lobby)
            await until(lambda: "hello bob" in texts(lobby) and not lobby.pending)
            await until(lambda: "hello bob" in bob.texts())

            # Receive, with a mention of ann highlighted.
            await bob.say("hi ann, welcome")
            await until(lambda: "hi ann, welcome" in texts(lobby))
            entry = next(e for e in lobby.entries if e.text == "hi ann, welcome")
            assert entry.mention and not entry.own
            assert any(e.own for e in lobby.entries if e.text == "hello bob")
            assert any("hi ann, welcome" in line for line in main.query_one(ChatLog).visible_text())

            # Another room: unread count and mention mark on the lobby.
            await type_line(pilot, app, "/join side")
            await until(lambda: main.current is not None and main.current.name == "side")
            side = main.current
            assert side is not None
            await until(lambda: side.joined)
            await bob.say("just chatting")
            await bob.say("ann: are you there?")
            await until(lambda: lobby.unread == 2 and lobby.mention)
            labels = [str(o.prompt) for o in main.query_one(RoomList).options]
            assert labels[0].startswith("1 #lobby 2 @") and labels[1].startswith("2 #side")

            # Presence in the room ann is in.
            bob.client.join("side")
            await until(lambda: any(e.text == "bob joined" for e in side.entries))
            assert "bob" in side.members
            bob.client.part("side")
            await until(lambda: any(e.text == "bob left" for e in side.entries))
            assert "bob" not in side.members

            # Switching rooms with keys clears the marks.
            await pilot.press("ctrl+n")
            assert main.current is lobby and lobby.unread == 0 and not lobby.mention
            await pilot.press("alt+2")
            assert main.current is side
            await pilot.press("ctrl+p")
            assert main.current is lobby

            # A direct conversation.
            await type_line(pilot, app, "/msg bob psst")
            dm = main.current
            assert dm is not None and dm.kind == "dm" and dm.name == "bob"
            await until(lambda: "psst" in texts(dm) and not dm.pending)
            await until(lambda: "psst" in bob.texts())
            nonce = bob.client.say("psst back", to="ann")
            assert nonce
            await until(lambda: "psst back" in texts(dm))
            await type_line(pilot, app, "/who")
            await type_line(pilot, app, "/nonsense")
            await until(lambda: any("unknown command" in e.text for e in dm.entries))
    finally:
        await bob.stop()


@pytest.mark.asyncio
async def test_tab_completes_commands_and_names(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "Bobby").start()
    try:
        async with running(real_server) as (app, pilot):
            await log_in(app, pilot, "ann")
            field = app.screen.query_one("#input", ChatInput)
            await pilot.press("slash", "j", "o", "tab")
            assert field.value == "/join "
            field.value = ""
            await pilot.press("b", "o", "tab")
            assert field.value == "Bobby: "
            await pilot.press(*"hi", "space", "b", "tab")
            assert field.value == "Bobby: hi Bobby "
    finally:
        await bob.stop()


@pytest.mark.asyncio
async def test_older_history_pages_on_command_and_scroll(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "bob").start()
    for i in range(119):
        bob.client.say(f"old message {i}", room="lobby")
    await bob.say("old message 119")
    try:
        async with running(real_server) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            assert len(texts(lobby)) == 50 and lobby.more
            await type_line(pilot, app, "/history")
            await until(lambda: len(texts(lobby)) == 100)
            log = main.query_one(ChatLog)
            for _ in range(80):  # PgUp until the top loads the last page
                if len(texts(lobby)) == 120:
                    break
                await pilot.press("pageup")
            await until(lambda: len(texts(lobby)) == 120 and not lobby.more)
            assert texts(lobby) == [f"old message {i}" for i in range(120)]
            ids = [e.id for e in lobby.entries if e.id is not None]
            assert ids == sorted(set(ids))
            assert log.scroll_offset.y > 0  # the view did not jump to the top of the new page
            # A new message while scrolled up does not move the view.
            before = log.scroll_offset.y
            await bob.say("new while scrolled up")
            await until(lambda: "new while scrolled up" in texts(lobby))
            await pilot.pause()
            assert log.scroll_offset.y == before
    finally:
        await bob.stop()


@pytest.mark.asyncio
async def test_reconnect_after_restart_misses_nothing_doubles_nothing(
    real_server: RealServer,
) -> None:
    bob = await Peer(real_server.port, "bob").start()
    try:
        async with running(real_server) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            app.client.backoff_min = app.client.backoff_max = 30.0  # only Ctrl+R reconnects
            lobby = main.buffers.order[0]
            await bob.say("one")
            await until(lambda: "one" in texts(lobby))
            status = main.query_one(StatusLine)

            real_server.stop()
            await until(lambda: status.state == "waiting")
            assert "Ctrl+R" in status.text and "reconnecting in" in status.text
            await type_line(pilot, app, "typed while away")
            await until(lambda: len(lobby.pending) == 1)
            visible = main.query_one(ChatLog).visible_text()
            assert any("…" in line and "typed while away" in line for line in visible)

            real_server.start()
            await until(lambda: bob.client.connected, wait=15)
            await until(lambda: "lobby" in bob.client.rooms and bob.client.connected)
            await bob.say("missed 1")
            await bob.say("missed 2")
            await pilot.press("ctrl+r")
            await until(lambda: status.state == "online")
            await until(lambda: "missed 2" in texts(lobby) and not lobby.pending)
            assert texts(lobby) == ["one", "missed 1", "missed 2", "typed while away"]
            await until(lambda: "typed while away" in bob.texts())
            assert bob.texts().count("typed while away") == 1
    finally:
        await bob.stop()


@pytest.mark.asyncio
async def test_pending_message_stored_before_loss_is_shown_once(
    real_server: RealServer,
) -> None:
    """The echo is lost with the connection; the resend must not double the message."""
    async with running(real_server) as (app, pilot):
        main = await log_in(app, pilot, "ann")
        lobby = main.buffers.order[0]
        client = app.client
        client.backoff_min = client.backoff_max = 30.0
        # Send, then cut the connection before reading the echo (the server stores it).
        nonce = client.say("sent as the line dropped", room="lobby")
        main.buffers.add_pending(lobby, nonce, "sent as the line dropped")
        writer = client._writer
        assert writer is not None
        await writer.drain()
        writer.transport.abort()
        await until(lambda: not client.connected)
        await pilot.press("ctrl+r")
        await until(lambda: client.connected and not lobby.pending)
        await pilot.pause(0.3)
        assert texts(lobby).count("sent as the line dropped") == 1
