"""Snapshots of the client's screens, fed fixed frames (no server, no clock, no port)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from client_fakes import message
from textual.pilot import Pilot

from textual_client import connection as c
from textual_client.app import ChatApp
from trio_chat import protocol as p

SIZE = (110, 30)
Snap = Callable[..., bool]


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Timestamps are shown in local time: make local time UTC for stable pictures."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def offline_app() -> ChatApp:
    return ChatApp("chat.example.org", 7878, rooms=["lobby", "rust"])


async def fill_main_screen(pilot: Pilot[Any]) -> None:
    """The main screen with a conversation: history, presence, a mention, a pending line."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    app.start_chat(p.Welcome(name="ann", account=False, server="trio-chat/0.1"), connect=False)
    await pilot.pause()
    main = app.main_screen
    assert main is not None
    app.client.connected = False
    history = (
        message(3661, "ritam", "morning all"),
        message(3662, "souvik", "hi ritam\nthe new build is up: try it"),
        message(3663, "ann", "on it"),
    )
    events: list[c.ClientEvent] = [
        c.Connected(p.Welcome(name="ann", account=False, server="trio-chat/0.1"), False),
        p.Joined("lobby", ("ann", "ritam", "souvik"), history, more=True),
        p.Joined("rust", ("ann", "ritam"), (message(3600, "ritam", "borrowck!", "rust"),), False),
        p.Presence("lobby", "bob", "joined", "2026-11-24T22:02:00.000Z"),
        message(3725, "bob", "ann: did you see the release notes?"),
        p.Presence("lobby", "ritam", "left", "2026-11-24T22:03:00.000Z", reason="quit"),
        message(3790, "ritam", "ann, ping", "rust"),
        message(3791, "ritam", "when you have a minute", "rust"),
        p.Message(3792, "carol", "psst, a secret", "2026-11-24T22:03:12.000Z", to="ann"),
    ]
    for event in events:
        main.handle(event)
    main.send("reading them now")
    await pilot.pause()


def test_snapshot_login_screen(snap_compare: Snap) -> None:
    assert snap_compare(offline_app(), terminal_size=SIZE)


def test_snapshot_main_screen(snap_compare: Snap) -> None:
    assert snap_compare(offline_app(), terminal_size=SIZE, run_before=fill_main_screen)


def test_snapshot_help_and_reconnecting(snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await fill_main_screen(pilot)
        app = pilot.app
        assert isinstance(app, ChatApp) and app.main_screen is not None
        app.main_screen.handle(c.Disconnected(c.explain_bye(p.Bye("shutdown", "")), None))
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(offline_app(), terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (60, 20)], ids=["80x24", "60x20"])
def test_snapshot_login_screen_small(snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(offline_app(), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (60, 20)], ids=["80x24", "60x20"])
def test_snapshot_main_screen_small(snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(offline_app(), terminal_size=size, run_before=fill_main_screen)


def test_snapshot_narrow_with_rooms_shown_and_a_multi_line_draft(snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await fill_main_screen(pilot)
        await pilot.press("f2", "a", "ctrl+j", "b")
        await pilot.pause()

    assert snap_compare(offline_app(), terminal_size=(60, 20), run_before=run_before)


async def fill_conversation(pilot: Pilot[Any]) -> None:
    """Section 9 on screen: two days, a topic, an edit, a deletion, a reply and an action."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    app.start_chat(p.Welcome(name="ann", account=False, server="trio-chat/0.1"), connect=False)
    await pilot.pause()
    main = app.main_screen
    assert main is not None
    question = "which build do we ship on friday: the fast one or the one that passed every test?"
    history: tuple[p.Entry, ...] = (
        p.Message(10, "ritam", "good night all", "2026-11-23T22:40:00.000Z", "lobby"),
        p.TopicEntry(
            11, "lobby", "release day: builds in #rust", "ritam", "2026-11-24T08:00:00.000Z"
        ),
        p.Message(12, "souvik", question, "2026-11-24T09:00:00.000Z", "lobby"),
        p.Message(
            13, "ann", "the one that passed", "2026-11-24T09:01:00.000Z", "lobby", reply_to=12
        ),
        p.Message(14, "ritam", "", "2026-11-24T09:02:00.000Z", "lobby", deleted=True),
        p.Message(15, "souvik", "agreed", "2026-11-24T09:03:00.000Z", "lobby", reply_to=3),
    )
    main.handle(p.Joined("lobby", ("ann", "ritam", "souvik"), history, more=True))
    main.handle(p.Joined("rust", ("ann",), (), more=False))
    main.handle(p.Message(16, "ann", "ships it", "2026-11-24T09:04:00.000Z", "lobby", action=True))
    main.handle(
        p.EditEntry(17, 15, "souvik", "agreed, ship it", "2026-11-24T09:05:00.000Z", "lobby")
    )
    main.switch_to(main.buffers.order[0])
    await pilot.pause()


def test_snapshot_a_selected_message(snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await fill_conversation(pilot)
        await pilot.press("alt+up", "up")
        await pilot.pause()

    assert snap_compare(offline_app(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_replying(snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await fill_conversation(pilot)
        await pilot.press("alt+up", "up", "up", "up", "r", *"soon")
        await pilot.pause()

    assert snap_compare(offline_app(), terminal_size=SIZE, run_before=run_before)
