"""Section 9 in the client: edits, deletions, replies, actions, day lines, page entries, devices.

Each test drives the app with Pilot (against a real server where the server speaks it) and
failed before the feature it checks.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from client_fakes import FakeServer, Peer, RealServer, message, stop_task, until, welcome
from client_fakes import fake_server as fake_server
from client_fakes import real_server as real_server
from textual.pilot import Pilot
from textual.widgets import Input, Static

from textual_client import connection as c
from textual_client import state
from textual_client.app import ChatApp
from textual_client.buffers import Buffer, Entry, quote_of
from textual_client.screens import LoginScreen, MainScreen
from textual_client.widgets import ChatInput, ChatLog
from trio_chat import protocol as p

pytestmark = pytest.mark.asyncio
SIZE = (110, 32)


@pytest.fixture
def tz() -> Iterator[None]:
    """Local time is UTC unless a test sets TZ itself (restored afterwards)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@asynccontextmanager
async def running(port: int, **kw: Any) -> AsyncIterator[tuple[ChatApp, Pilot[None]]]:
    app = ChatApp("127.0.0.1", port, **kw)
    async with app.run_test(size=SIZE) as pilot:
        yield app, pilot


async def log_in(app: ChatApp, pilot: Pilot[None], name: str) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, LoginScreen)
    screen.query_one("#login-name", Input).value = name
    screen.query_one("#login-name", Input).focus()
    await pilot.press("enter")
    await until(lambda: isinstance(app.screen, MainScreen) and app.screen.is_mounted)
    main = app.screen
    assert isinstance(main, MainScreen)
    await until(lambda: all(b.joined for b in main.buffers.order if b.kind == "room"))
    return main


async def offline_main(pilot: Pilot[None]) -> MainScreen:
    """The main screen without a server: frames are handed to it by the test."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    main = app.start_chat(p.Welcome(name="ann", account=False, server="x"), connect=False)
    await pilot.pause()
    return main


def chat_input(app: ChatApp) -> ChatInput:
    return app.screen.query_one("#input", ChatInput)


async def type_line(pilot: Pilot[None], app: ChatApp, line: str) -> None:
    chat_input(app).value = line
    await pilot.press("enter")


def texts(buf: Buffer) -> list[str]:
    return [e.text for e in buf.entries if e.kind == "message" and not e.deleted]


def own_last(buf: Buffer) -> Entry:
    return [e for e in buf.entries if e.kind == "message" and e.own][-1]


def shown(main: MainScreen) -> list[str]:
    return main.query_one(ChatLog).visible_text()


def frames(peer: Peer, kind: type[Any]) -> list[Any]:
    return [e for e in peer.events if isinstance(e, kind)]


# ----------------------------------------------------------------------- edit and delete


async def test_up_on_an_empty_input_edits_the_last_message(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "bob").start()
    try:
        async with running(real_server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            await type_line(pilot, app, "helo wrld")
            await until(lambda: "helo wrld" in texts(lobby) and not lobby.pending)
            await pilot.press("up")
            assert chat_input(app).value == "helo wrld"
            assert "editing" in str(chat_input(app).border_title)
            await pilot.press("escape")  # cancels: nothing sent, the box empty again
            assert chat_input(app).value == "" and not chat_input(app).border_title
            await pilot.press("up")
            chat_input(app).value = "hello world"
            await pilot.press("enter")
            await until(lambda: bool(frames(bob, p.EditEntry)))
            (edit,) = frames(bob, p.EditEntry)
            assert edit.message == own_last(lobby).id and edit.text == "hello world"
            await until(lambda: texts(lobby) == ["hello world"])
            await pilot.pause()
            assert any(line.endswith("│ hello world (edited)") for line in shown(main))
            assert chat_input(app).value == "" and not chat_input(app).border_title
            await pilot.press("ctrl+up")  # recalling sent lines moved to Ctrl+Up
            assert chat_input(app).value == "helo wrld" and not chat_input(app).border_title
    finally:
        await bob.stop()


async def test_edit_and_delete_commands_and_others_changes(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "bob").start()
    try:
        async with running(real_server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            await bob.say("bob's first take")
            await type_line(pilot, app, "one")
            await type_line(pilot, app, "two")
            await until(lambda: texts(lobby)[-2:] == ["one", "two"] and not lobby.pending)
            await type_line(pilot, app, "/edit")  # no text: the box gets the last message
            assert chat_input(app).value == "two"
            await pilot.press("escape")
            await asyncio.sleep(0.4)  # Esc then Enter at once would be Alt+Enter (a new line)
            await type_line(pilot, app, "/edit deux")
            await until(lambda: texts(lobby)[-2:] == ["one", "deux"])
            await type_line(pilot, app, "/delete")
            await until(lambda: texts(lobby)[-1] == "one")
            assert [f.by for f in frames(bob, p.DeleteEntry)] == ["ann"]
            # bob changes his own message: it changes in place here too
            bobs = next(e for e in lobby.entries if e.text == "bob's first take")
            assert bobs.id is not None
            bob.client.edit(bobs.id, "bob's second take")
            await until(lambda: "bob's second take" in texts(lobby))
            bob.client.delete(bobs.id)
            await until(lambda: bobs.deleted)
            await pilot.pause()
            lines = shown(main)
            assert sum("(message deleted)" in line for line in lines) == 2
            assert not any("take" in line or "deux" in line for line in lines)
            assert texts(lobby) == ["one"]
    finally:
        await bob.stop()


async def test_an_edit_refused_by_the_server_is_said(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "bob").start()
    try:
        async with running(real_server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            await bob.say("mine")
            await until(lambda: "mine" in texts(lobby))
            app.client.edit(lobby.entries[-1].id or 0, "hijacked")
            await until(lambda: any("cannot edit" in e.text for e in lobby.entries))
            assert texts(lobby) == ["mine"]
    finally:
        await bob.stop()


# ----------------------------------------------------------------------- selecting, replying


async def test_select_a_message_then_reply_edit_and_delete(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "bob").start()
    try:
        async with running(real_server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            log = main.query_one(ChatLog)
            question = (
                "which of the three builds should we ship on friday, the fast or the safe one?"
            )
            await bob.say(question)
            await bob.say("no rush")
            await until(lambda: "no rush" in texts(lobby))
            await pilot.press("alt+up")
            assert log.selected is not None and log.selected.text == "no rush"
            assert isinstance(app.focused, ChatLog)
            assert {"r", "e", "d", "escape"} <= set(main.active_bindings)
            await pilot.press("up")
            assert log.selected is not None and log.selected.text == question
            await pilot.press("r")
            assert chat_input(app).has_focus and log.selected is None
            assert "replying to bob" in str(chat_input(app).border_title)
            await pilot.press(*"the safe one", "enter")
            await until(lambda: "the safe one" in texts(lobby) and not lobby.pending)
            (reply,) = [m for m in frames(bob, p.Message) if m.text == "the safe one"]
            assert reply.reply_to == next(e.id for e in lobby.entries if e.text == question)
            await pilot.pause()
            lines = shown(main)
            at = next(i for i, line in enumerate(lines) if line.endswith("│ the safe one"))
            assert "│ ↳ bob: which of the three builds" in lines[at - 1]
            assert quote_of(lobby, reply.reply_to) == f"↳ bob: {question[:60]}…"
            # select our reply, edit it: the box gets its text, the reply is kept
            await pilot.press("alt+up", "e")
            assert chat_input(app).value == "the safe one"
            chat_input(app).value = "the safe one, surely"
            await pilot.press("enter")
            await until(lambda: "the safe one, surely" in texts(lobby))
            # select bob's question, delete is bob's to do: the server says no
            await pilot.press("alt+up", "up", "up", "d")
            await until(lambda: any("cannot delete" in e.text for e in lobby.entries))
            # a key that types leaves the selection and types
            await pilot.press("alt+up", "h")
            assert app.focused is chat_input(app) and chat_input(app).value == "h"
            assert log.selected is None
            chat_input(app).value = ""
            bob.client.delete(next(e.id or 0 for e in lobby.entries if e.text == question))
            await until(lambda: question not in texts(lobby))
            await pilot.pause()
            assert any(line.endswith("│ ↳ bob: (message deleted)") for line in shown(main))
            await pilot.press("alt+up", "delete")
            await until(lambda: "the safe one, surely" not in texts(lobby))
            await pilot.pause()
            lines = shown(main)
            assert sum(line.endswith("│ (message deleted)") for line in lines) == 2
            assert not any("↳" in line or "safe" in line for line in lines)
    finally:
        await bob.stop()


async def test_a_reply_to_a_message_not_loaded_says_so_until_it_is(tz: None) -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE) as pilot:
        main = await offline_main(pilot)
        reply = p.Message(
            90, "bob", "yes, that one", "2026-11-24T21:30:00.000Z", "lobby", reply_to=7
        )
        main.handle(p.Joined("lobby", ("ann", "bob"), (reply,), True))
        await pilot.pause()
        lines = shown(main)
        assert lines[-2].endswith("│ ↳ a message not loaded") and "yes, that one" in lines[-1]
        page = p.HistoryPage((message(7, "ann", "shall we\nship it?"),), False, room="lobby")
        main.handle(page)
        await pilot.pause()
        assert shown(main)[-2].endswith("│ ↳ ann: shall we ship it?")


async def test_me_sends_an_action(real_server: RealServer) -> None:
    bob = await Peer(real_server.port, "bob").start()
    try:
        async with running(real_server.port) as (app, pilot):
            main = await log_in(app, pilot, "ann")
            lobby = main.buffers.order[0]
            await type_line(pilot, app, "/me waves")
            await until(lambda: any(m.text == "waves" for m in frames(bob, p.Message)))
            (action,) = [m for m in frames(bob, p.Message) if m.text == "waves"]
            assert action.action
            await until(lambda: not lobby.pending)
            await pilot.pause()
            assert any(line.endswith("* │ ann waves") for line in shown(main))
    finally:
        await bob.stop()


# ----------------------------------------------------------------------- days


async def test_day_lines_between_days_in_local_time(tz: None) -> None:
    os.environ["TZ"] = "Asia/Kolkata"  # UTC+05:30
    time.tzset()
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE) as pilot:
        main = await offline_main(pilot)
        history = (
            p.Message(1, "bob", "late", "2026-11-28T18:00:00.000Z", "lobby"),  # 23:30 on the 28th
            p.Message(2, "bob", "later", "2026-11-28T18:45:00.000Z", "lobby"),  # 00:15 on the 29th
            p.Message(3, "bob", "morning", "2026-11-29T03:00:00.000Z", "lobby"),
        )
        main.handle(p.Joined("lobby", ("ann", "bob"), history, False))
        await pilot.pause()
        lines = [line.strip() for line in shown(main) if line.strip()]
        assert lines == [
            "── Saturday 28 November 2026 ──",
            "23:30        bob │ late",
            "── Sunday 29 November 2026 ──",
            "00:15        bob │ later",
            "08:30        bob │ morning",
        ]


# ----------------------------------------------------------------------- entries in pages


async def test_entries_in_pages_and_live_change_what_is_shown(tz: None) -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE) as pilot:
        main = await offline_main(pilot)
        ts = "2026-11-24T21:00:0{}.000Z"
        history: tuple[p.Entry, ...] = (
            p.EditEntry(60, 42, "bob", "v3", ts.format(1), room="lobby"),
            p.Message(61, "bob", "hello", ts.format(2), "lobby"),
            p.Message(62, "bob", "typo", ts.format(3), "lobby", edited=ts.format(4)),
            p.Message(64, "ritam", "", ts.format(5), "lobby", deleted=True),
            p.EditEntry(65, 62, "bob", "fixed", ts.format(4), room="lobby"),
            p.DeleteEntry(66, 64, "ritam", ts.format(6), room="lobby"),
            p.TopicEntry(67, "lobby", "release day", "ritam", ts.format(7)),
        )
        main.handle(p.Joined("lobby", ("ann", "bob", "ritam"), history, True))
        await pilot.pause()
        lobby = main.buffers.order[0]
        title = main.query_one("#title-bar", Static)
        assert texts(lobby) == ["hello", "typo"]  # a page's messages are as they are now...
        main.handle(p.EditEntry(68, 61, "bob", "hello all", ts.format(8), room="lobby"))
        main.handle(p.DeleteEntry(69, 62, "bob", ts.format(9), room="lobby"))
        main.handle(p.TopicEntry(70, "lobby", "ship it", "bob", ts.format(9)))
        await pilot.pause()
        assert texts(lobby) == ["hello all"]  # ...and live entries change them in place
        lines = shown(main)
        assert any(line.endswith("│ hello all (edited)") for line in lines)
        assert sum(line.endswith("│ (message deleted)") for line in lines) == 2
        assert any(line.endswith("│ ritam set the topic: release day") for line in lines)
        assert any(line.endswith("│ bob set the topic: ship it") for line in lines)
        assert "ship it" in str(title.content)
        # An older page: its message is as it is now (v3), its older edit (v2) changes nothing.
        older: tuple[p.Entry, ...] = (
            p.Message(42, "bob", "v3", ts.format(0), "lobby", edited=ts.format(1)),
            p.EditEntry(57, 42, "bob", "v2", ts.format(0), room="lobby"),
            p.TopicEntry(58, "lobby", "older topic", "ritam", ts.format(0)),
        )
        main.handle(p.HistoryPage(older, False, room="lobby"))
        await pilot.pause()
        assert texts(lobby) == ["v3", "hello all"]
        assert "ship it" in str(title.content) and "older" not in str(title.content)


async def test_the_topic_of_joined_is_in_the_header(tz: None) -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE) as pilot:
        main = await offline_main(pilot)
        main.handle(p.Joined("lobby", ("ann",), (), False, topic="be nice"))
        await pilot.pause()
        assert "be nice" in str(main.query_one("#title-bar", Static).content)


# ----------------------------------------------------------------------- the connection


async def test_pages_keep_every_entry_and_resume_after_the_last(fake_server: FakeServer) -> None:
    events: list[c.ClientEvent] = []
    client = c.ChatClient("127.0.0.1", fake_server.port, events.append, backoff_min=0.01)
    client.rooms["lobby"] = "lobby"
    login = asyncio.ensure_future(client.login("ann"))
    peer = await fake_server.accept()
    await peer.expect(p.Hello)
    peer.send(welcome("ann"))
    await asyncio.wait_for(login, 5)
    runner = asyncio.create_task(client.run())
    join = await peer.expect(p.Join)
    edit = p.EditEntry(2, 1, "bob", "hi all", "2026-11-24T21:00:02.000Z", room="lobby")
    peer.send(p.Joined("lobby", ("ann", "bob"), (message(1, "bob", "hi"), edit), False, re=join.id))
    peer.send(p.DeleteEntry(3, 1, "bob", "2026-11-24T21:00:03.000Z", room="lobby"))
    await until(lambda: any(isinstance(e, p.DeleteEntry) for e in events))
    (joined,) = [e for e in events if isinstance(e, p.Joined)]
    assert joined.history == (message(1, "bob", "hi"), edit)
    peer.close()  # the connection drops: the rejoin asks for what came after the deletion
    peer = await fake_server.accept()
    await peer.expect(p.Hello)
    peer.send(welcome("ann"))
    rejoin = await peer.expect(p.Join)
    assert rejoin.since == 3
    await stop_task(runner)


# ----------------------------------------------------------------------- the device label


async def test_the_device_label_is_made_once_and_sent_in_hello(
    fake_server: FakeServer, tmp_path: Path
) -> None:
    path = tmp_path / "config" / state.DEVICE_FILE
    label = state.device_label(path)
    assert label and 1 <= len(label) <= 64 and path.read_text().strip() == label
    assert state.device_label(path) == label
    assert state.device_label(tmp_path / "other") != label
    app = ChatApp("127.0.0.1", fake_server.port, device=label)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#login-name", Input).value = "ann"
        await pilot.press("enter")
        peer = await fake_server.accept()
        hello = await peer.expect(p.Hello)
        assert hello.device == label
        peer.close()
