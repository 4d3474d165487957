"""The Textual app: the name prompt first, then the main screen and the connection's worker."""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen

from textual_client import settings as cfg
from textual_client import state
from textual_client.buffers import Buffer, Buffers, Entry
from textual_client.connection import ChatClient, ClientEvent
from textual_client.keys import read_esc_keys_as_alt
from textual_client.messages import ClientEventReceived, LoggedIn
from textual_client.notify import Notifier, Rules
from textual_client.screens import LoginScreen, MainScreen
from trio_chat import protocol as p


class ChatApp(App[None]):
    """A trio-chat client: `ChatApp(host, port).run()`."""

    CSS_PATH = "client.tcss"
    TITLE = "trio-chat"
    ENABLE_COMMAND_PALETTE = False  # Ctrl+P is "previous room" here: F4 opens it instead
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f4", "command_palette", "Palette", show=False, priority=True),
    ]

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7878,
        *,
        user_name: str | None = None,
        rooms: Sequence[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        client: ChatClient | None = None,
        state_path: Path | None = None,
        device: str | None = None,
        settings: cfg.ClientSettings | None = None,
        config_path: Path | None = None,
    ) -> None:
        """`rooms`: rooms to join (default: the last session's, else lobby);
        `state_path`: where the session's buffers are kept between runs (None: nowhere);
        `device`: this installation's label, sent in `hello` (section 10);
        `settings`: the config file's (theme, notifications), saved back to `config_path`."""
        super().__init__()
        self.use_command_palette = True  # with F4 (the theme picker is in it)
        self.settings = settings or cfg.ClientSettings()
        self.config_path = config_path
        self.theme = self.settings.theme
        s = self.settings
        self.notifier = Notifier(
            Rules(s.notify_mention, s.notify_direct, s.notify_method), self.write_terminal
        )
        read_esc_keys_as_alt()
        self.client = client or ChatClient(
            host, port, self.client_event, ssl_context=ssl_context, device=device
        )
        self.client.listener = self.client_event
        self.user_name = user_name
        self.initial_rooms = list(rooms or [])
        self.state_path = state_path
        self._saved: state.Saved | None = None
        self.buffers = Buffers()
        self.main_screen: MainScreen | None = None
        self._connect_on_mount = True
        self.listed_rooms: list[str] = []  # the rooms of the server's last `rooms` answer

    def completion_rooms(self) -> list[str]:
        """Room names Tab offers after /join: the ones open here, then the server's list."""
        return [*(b.name for b in self.buffers.order if b.kind == "room"), *self.listed_rooms]

    def get_default_screen(self) -> Screen[Any]:
        """The name prompt is the first screen: keys typed at start-up reach its fields."""
        return LoginScreen(self.user_name, self.client.address)

    def client_event(self, event: ClientEvent) -> None:
        """The connection layer's listener: hand the event to the UI as a message."""
        self.post_message(ClientEventReceived(event))

    def on_client_event_received(self, message: ClientEventReceived) -> None:
        if isinstance(message.event, p.RoomList):  # kept for /join's Tab completion
            self.listed_rooms = [r.room for r in message.event.rooms]
        if self.main_screen is not None and self.main_screen.is_mounted:
            with contextlib.suppress(NoMatches):  # the screen is closing
                self.main_screen.handle(message.event)

    def on_logged_in(self, message: LoggedIn) -> None:
        self.start_chat(message.welcome)

    def start_chat(self, welcome: p.Welcome, *, connect: bool = True) -> MainScreen:
        """Show the main screen for the rooms asked for; with `connect`, run the session."""
        self.buffers.me = welcome.name
        saved = self._load_state(welcome.name)
        rooms = cfg.startup_rooms(saved.rooms if saved else [], self.initial_rooms)
        for room in rooms or ["lobby"]:
            try:
                name = self.client.join(room)
            except p.ChatError:  # a saved name the server's rules no longer allow
                continue
            self.buffers.get("room", name.spelling)
        for other in saved.dms if saved else []:
            with contextlib.suppress(p.ChatError):
                self.buffers.get("dm", p.parse_name(other, "name", "name_invalid").spelling)
        self._connect_on_mount = connect
        self.main_screen = MainScreen(self.buffers)
        self.push_screen(self.main_screen)  # over the name prompt, the default screen
        return self.main_screen

    def watch_theme(self, theme: str) -> None:
        """A theme picked (F4, the palette) is kept in the config file for the next start."""
        if self.config_path is not None and theme != self.settings.theme:
            self.settings = dataclasses.replace(self.settings, theme=theme)
            cfg.save_theme(self.config_path, theme)

    def write_terminal(self, data: str) -> None:
        """Write an escape sequence to a real terminal (not headless, not in a browser)."""
        driver = self._driver
        if driver is not None and not driver.is_headless and not driver.is_web:
            driver.write(data)  # one write: never split by a screen update

    def notify_entry(self, buf: Buffer, entry: Entry, *, shown: bool) -> None:
        """A new line came: a desktop notification (or bell) if the rules want one."""
        self.notifier.consider(buf, entry, seen=shown and self.app_focus)

    def _load_state(self, name: str) -> state.Saved | None:
        if self.state_path is None:
            return None
        saved = state.load(self.state_path, self.client.address, name)
        self._saved = saved
        return saved

    def save_state(self) -> None:
        """Remember the session's rooms and direct conversations, when they changed."""
        if self.state_path is None or not self.buffers.me:
            return
        order = self.buffers.order
        saved = state.Saved(
            [b.name for b in order if b.kind == "room"], [b.name for b in order if b.kind == "dm"]
        )
        if saved != self._saved:
            self._saved = saved
            state.save(self.state_path, self.client.address, self.buffers.me, saved)

    def start_connection(self) -> None:
        """Called by the main screen once mounted: read frames and reconnect, in a worker."""
        if self._connect_on_mount:
            self.run_worker(
                self.client.run(), name="connection", group="connection", exclusive=True
            )

    async def action_quit(self) -> None:
        await self.quit_chat()

    async def quit_chat(self, reason: str | None = None) -> None:
        """Say goodbye to the server (briefly: never hang on a dead one) and exit."""
        await self.client.quit(reason, grace=1.0)
        self.exit()
