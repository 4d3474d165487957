"""What a new user hit: each test drives the app with Pilot and failed before its fix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from client_fakes import FakeServer, Peer, RealServer, until, welcome
from client_fakes import fake_server as fake_server
from client_fakes import real_server as real_server
from textual import events
from textual._xterm_parser import XTermParser
from textual.pilot import Pilot
from textual.widgets import Input, Static

from textual_client import connection as c
from textual_client.__main__ import build_parser
from textual_client.app import ChatApp
from textual_client.buffers import Buffer
from textual_client.screens import LoginScreen, MainScreen
from textual_client.widgets import ChatInput, ChatLog, MemberList, StatusLine
from trio_chat import protocol as p

pytestmark = pytest.mark.asyncio
SIZE = (110, 32)
PREFIX = 19  # "HH:MM " + a 10-cell nick + " │ ": the log's columns before the text


@asynccontextmanager
async def running(
    port: int, size: tuple[int, int] = SIZE, **kw: Any
) -> AsyncIterator[tuple[ChatApp, Pilot[None]]]:
    app = ChatApp("127.0.0.1", port, **kw)
    async with app.run_test(size=size) as pilot:
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


async def from_terminal(pilot: Pilot[None], data: str) -> None:
    """Feed bytes as a terminal sends them through Textual's own parser to the app."""
    for event in XTermParser().feed(data):
        pilot.app.post_message(event)
    await pilot.pause()


def chat_input(app: ChatApp) -> ChatInput:
    return app.screen.query_one("#input", ChatInput)


async def type_line(pilot: Pilot[None], app: ChatApp, line: str) -> None:
    chat_input(app).value = line
    await pilot.press("enter")


def texts(buf: Buffer) -> list[str]:
    return [e.text for e in buf.entries if e.kind == "message"]


def notes(buf: Buffer) -> list[str]:
    return [e.text for e in buf.entries if e.kind in ("info", "error")]


async def offline_main(pilot: Pilot[None], rooms: tuple[str, ...] = ()) -> MainScreen:
    """The main screen without a server, for layout and key tests."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    main = app.start_chat(p.Welcome(name="ann", account=False, server="x"), connect=False)
    await pilot.pause()
    for room in rooms:
        main.handle(p.Joined(room, ("ann",), (), False))
    await pilot.pause()
    return main


# ----------------------------------------------------------------------- 1. /msg to oneself


async def test_msg_to_oneself_does_not_crash(real_server: RealServer) -> None:
    async with running(real_server.port) as (app, pilot):
        main = await log_in(app, pilot, "ann")
        await type_line(pilot, app, "/msg ann note to self")
        dm = main.current
        assert dm is not None and dm.kind == "dm" and dm.name == "ann"
        await until(lambda: "note to self" in texts(dm) and not dm.pending, wait=3)
        await pilot.pause()
        assert app.is_running and app.screen is main
        assert [str(o.prompt) for o in main.query_one(MemberList).options] == ["ann"]


async def test_an_error_in_a_command_is_shown_not_fatal() -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE) as pilot:
        main = await offline_main(pilot, ("lobby",))

        def broken(room: str) -> bool:
            raise RuntimeError("boom")

        app.client.who = broken  # type: ignore[method-assign]
        await type_line(pilot, app, "/who")
        assert app.is_running
        assert main.current is not None and any("boom" in n for n in notes(main.current))


# ----------------------------------------------------------------------- 7. typing ahead


async def test_login_burst_keeps_the_password_in_its_field() -> None:
    app = ChatApp("127.0.0.1", 9)
    tries: list[tuple[str, str | None]] = []

    async def login(name: str, password: str | None = None) -> p.Welcome:
        tries.append((name, password))
        raise c.LoginRefused("auth_failed", "no")

    app.client.login = login  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        # A password manager's burst: every key is read before the Tab takes effect.
        keys = [*"ann", "tab", *"hunter22", "enter"]
        for key in keys:
            app.post_message(events.Key(key, {"tab": "\t", "enter": "\r"}.get(key, key)))
        await until(lambda: bool(tries))
        await pilot.pause()
        assert tries == [("ann", "hunter22")]
        assert app.screen.query_one("#login-name", Input).value == "ann"


# ----------------------------------------------------------------------- 6. multi-line


async def test_multi_line_paste_and_newline_keys(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "bob").start()
    try:
        async with running(real_server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            app.post_message(events.Paste("line one\r\nline two\nline three"))
            await pilot.pause()
            assert chat_input(app).value == "line one\nline two\nline three"
            await pilot.press("enter")
            await until(lambda: "line one\nline two\nline three" in bob.texts())
            await until(lambda: not lobby.pending)
            assert chat_input(app).value == ""
            await pilot.press("a", "ctrl+j", "b", "shift+enter", "c")
            await from_terminal(pilot, "\x1b\rd")  # Alt+Enter as tmux sends it
            assert chat_input(app).value == "a\nb\nc\nd"
            await from_terminal(pilot, "\r")
            await until(lambda: "a\nb\nc\nd" in texts(lobby))
            await pilot.pause()
            shown = main.query_one(ChatLog).visible_text()
            at = next(i for i, line in enumerate(shown) if line.endswith("│ a"))
            assert [line[-3:] for line in shown[at + 1 : at + 4]] == ["│ b", "│ c", "│ d"]
    finally:
        await bob.stop()


# ----------------------------------------------------------------------- 5. narrow terminals


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (110, 32), (120, 30)])
async def test_the_text_gets_most_of_the_width(size: tuple[int, int]) -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=size) as pilot:
        box = app.screen.query_one("#login-box")
        assert box.region.x >= 0 and box.region.right <= size[0]
        main = await offline_main(pilot, ("lobby",))
        text_width = main.query_one(ChatLog).scrollable_content_region.width - PREFIX
        assert text_width * 2 >= size[0], text_width


async def test_side_panels_toggle_with_f2_and_f3() -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=(60, 20)) as pilot:
        main = await offline_main(pilot, ("lobby",))
        rooms, members = main.query_one("#rooms"), main.query_one("#members")
        assert not rooms.display and not members.display
        await pilot.press("f2")
        assert rooms.display and not members.display
        await pilot.press("f3", "f2")
        assert members.display and not rooms.display
        await pilot.resize_terminal(130, 30)
        await pilot.pause()
        assert members.display and not rooms.display  # the user's choice holds


# ----------------------------------------------------------------------- 4. focus


async def test_a_click_in_the_log_does_not_lose_typing() -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE) as pilot:
        main = await offline_main(pilot, ("lobby",))
        await pilot.click("#log")
        await pilot.press("h", "i")
        assert chat_input(app).value == "hi"
        assert app.focused is main.query_one(ChatInput)


# ----------------------------------------------------------------------- 3. tmux Alt


async def test_alt_digit_switches_rooms_also_as_esc_digit() -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE) as pilot:
        main = await offline_main(pilot, ("lobby", "rust", "side"))
        order = main.buffers.order
        await from_terminal(pilot, "\x1b2")  # tmux's Alt+2
        assert main.current is order[1]
        await pilot.press("alt+3")
        assert main.current is order[2]
        await pilot.press("escape", "1")  # Esc and the digit read apart
        assert main.current is order[0]
        await pilot.press("ctrl+n")
        assert main.current is order[1]
        await pilot.press("ctrl+p")
        assert main.current is order[0]
        assert chat_input(app).value == ""


# ----------------------------------------------------------------------- 8. refused direct


async def test_refused_direct_message_is_failed_and_lists_nobody(real_server: RealServer) -> None:
    async with running(real_server.port) as (app, pilot):
        main = await log_in(app, pilot, "ann")
        await type_line(pilot, app, "/msg Nobody are you there")
        dm = main.current
        assert dm is not None and dm.kind == "dm"
        await until(lambda: any(e.kind == "failed" for e in dm.entries))
        await pilot.pause()
        assert not dm.pending
        failed = [line for line in main.query_one(ChatLog).visible_text() if "are you" in line]
        assert len(failed) == 1 and "✗" in failed[0] and "…" not in failed[0]
        assert [str(o.prompt) for o in main.query_one(MemberList).options] == ["ann"]
        assert "not online" in str(main.query_one("#title-bar", Static).content)


# ----------------------------------------------------------------------- 2. login retry


async def test_login_retry_after_the_handshake_timeout(tmp_path: Path) -> None:
    server = RealServer(tmp_path / "chat.db", flags=("--handshake-timeout", "0.5"))
    server.start()
    bob = None
    try:
        bob = await Peer(server.port, "bob").start()
        async with running(server.port) as (app, pilot):
            screen = app.screen
            screen.query_one("#login-name", Input).value = "bob"
            await pilot.press("enter")
            error = screen.query_one("#login-error", Static)
            await until(lambda: "name_taken" in str(error.content))
            await asyncio.sleep(1.5)  # the server closes the unwelcomed connection
            await log_in(app, pilot, "ann")
    finally:
        if bob is not None:
            await bob.stop()
        server.stop()


# ----------------------------------------------------------------------- 12. small things


async def test_quit_sends_its_reason(fake_server: FakeServer) -> None:
    async with running(fake_server.port) as (app, pilot):
        app.screen.query_one("#login-name", Input).value = "ann"
        await pilot.press("enter")
        peer = await fake_server.accept()
        await peer.expect(p.Hello)
        peer.send(welcome("ann"))
        join = await peer.expect(p.Join)
        peer.send(p.Joined("lobby", ("ann",), (), False, re=join.id))
        await until(lambda: isinstance(app.screen, MainScreen))
        await type_line(pilot, app, "/quit gone fishing")
        quit_frame = await peer.expect(p.Quit)
        assert quit_frame.reason == "gone fishing"
        peer.send(p.Bye("quit", ""))
        peer.close()


async def test_join_with_spaces_is_refused(real_server: RealServer) -> None:
    async with running(real_server.port) as (app, pilot):
        main = await log_in(app, pilot, "ann")
        lobby = main.current
        assert lobby is not None
        await type_line(pilot, app, "/join my room")
        assert main.current is lobby and "my" not in app.client.rooms
        assert any("no spaces" in n for n in notes(lobby))


async def test_history_at_the_top_reports_at_the_top(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "bob").start()
    for i in range(59):
        bob.client.say(f"old {i}", room="lobby")
    await bob.say("old 59")
    try:
        async with running(real_server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            await type_line(pilot, app, "/history")
            await until(lambda: len(texts(lobby)) == 60 and not lobby.more)
            await type_line(pilot, app, "/history")
            await pilot.pause()
            log = main.query_one(ChatLog)
            assert "no older messages" in lobby.entries[0].text
            assert log.scroll_offset.y == 0
            assert "no older messages" in log.visible_text()[0]
            assert sum("no older messages" in e.text for e in lobby.entries) == 1
    finally:
        await bob.stop()


async def test_ctrl_r_while_connected_says_so(real_server: RealServer) -> None:
    async with running(real_server.port) as (app, pilot):
        main = await log_in(app, pilot, "ann")
        await pilot.press("ctrl+r")
        assert main.current is not None
        assert any("already connected" in n for n in notes(main.current))


async def test_status_line_is_not_cut_at_120_columns() -> None:
    app = ChatApp("chat.example.org", 7878)
    async with app.run_test(size=(120, 30)) as pilot:
        main = await offline_main(pilot, ("lobby",))
        main.handle(c.Disconnected(c.explain_bye(p.Bye("shutdown", "")), 30.0))
        await pilot.pause()
        status = main.query_one(StatusLine)
        assert status.content_region.width >= len(status.text) + 2, status.text


async def test_new_messages_below_mark(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "bob").start()
    for i in range(49):
        bob.client.say(f"filler {i}", room="lobby")
    await bob.say("filler 49")
    try:
        async with running(real_server.port, size=(80, 24)) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            below = main.query_one("#new-below", Static)
            assert not below.display
            await pilot.press("pageup")
            await bob.say("while you read")
            await until(lambda: "while you read" in texts(lobby))
            await pilot.pause()
            assert below.display and "1 new message below" in str(below.content)
            for _ in range(5):
                await pilot.press("pagedown")
            await pilot.pause()
            assert not below.display
    finally:
        await bob.stop()


async def test_rooms_and_conversations_come_back_after_a_restart(
    real_server: RealServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    bob = await Peer(real_server.port, "bob").start()
    try:
        async with running(real_server.port, state_path=state) as (app, pilot):
            main = await log_in(app, pilot, "ann", "ann-password")
            await type_line(pilot, app, "/join side")
            await type_line(pilot, app, "/msg bob hi")
            await until(lambda: "hi" in bob.texts())
            titles = [b.title for b in main.buffers.order]
            assert titles == ["#lobby", "#side", "@bob"]
            await app.quit_chat()
        async with running(real_server.port, state_path=state) as (app, pilot):
            main = await log_in(app, pilot, "ann", "ann-password")
            assert [b.title for b in main.buffers.order] == titles
            assert {"lobby", "side"} <= set(app.client.rooms)
    finally:
        await bob.stop()


async def test_too_long_a_message_is_kept_with_its_count(real_server: RealServer) -> None:
    async with running(real_server.port) as (app, pilot):
        main = await log_in(app, pilot, "ann")
        lobby = main.buffers.order[0]
        await type_line(pilot, app, "x" * 4001)
        assert chat_input(app).value == "x" * 4001
        assert not lobby.pending and not app.client.pending
        assert any("4001" in n for n in notes(lobby))
        assert "4001/4000" in str(chat_input(app).border_subtitle)


# ----------------------------------------------------------------------- 11. emoji


async def test_zero_width_joiner_survives_typing_and_sending(real_server: RealServer) -> None:
    async with running(real_server.port) as (app, pilot):
        main = await log_in(app, pilot, "ann")
        lobby = main.buffers.order[0]
        technologist = "👩\u200d💻"
        await from_terminal(pilot, technologist)
        assert chat_input(app).value == technologist
        await pilot.press("enter")
        await until(lambda: technologist in texts(lobby) and not lobby.pending)
        await pilot.pause()
        assert any(technologist in line for line in main.query_one(ChatLog).visible_text())


# ----------------------------------------------------------------------- 13. --help


async def test_every_flag_has_help_with_its_default() -> None:
    for action in build_parser()._actions:
        if action.dest == "help":
            continue
        assert action.help and action.help.rstrip().endswith("]"), action.option_strings
