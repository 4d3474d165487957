"""The Textual app: the name prompt first, then the main screen and the connection's worker."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from textual_client.buffers import Buffers
from textual_client.connection import ChatClient, ClientEvent
from textual_client.messages import ClientEventReceived, LoggedIn
from textual_client.screens import LoginScreen, MainScreen
from trio_chat import protocol as p


class ChatApp(App[None]):
    """A trio-chat client: `ChatApp(host, port).run()`."""

    CSS_PATH = "client.tcss"
    TITLE = "trio-chat"
    ENABLE_COMMAND_PALETTE = False  # Ctrl+P is "previous room" here
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7878,
        *,
        user_name: str | None = None,
        rooms: Sequence[str] = ("lobby",),
        ssl_context: ssl.SSLContext | None = None,
        client: ChatClient | None = None,
    ) -> None:
        super().__init__()
        self.client = client or ChatClient(host, port, self.client_event, ssl_context=ssl_context)
        self.client.listener = self.client_event
        self.user_name = user_name
        self.initial_rooms = list(rooms)
        self.buffers = Buffers()
        self.main_screen: MainScreen | None = None
        self._connect_on_mount = True

    def on_mount(self) -> None:
        self.push_screen(LoginScreen(self.user_name, self.client.address))

    def client_event(self, event: ClientEvent) -> None:
        """The connection layer's listener: hand the event to the UI as a message."""
        self.post_message(ClientEventReceived(event))

    def on_client_event_received(self, message: ClientEventReceived) -> None:
        if self.main_screen is not None and self.main_screen.is_mounted:
            self.main_screen.handle(message.event)

    def on_logged_in(self, message: LoggedIn) -> None:
        self.start_chat(message.welcome)

    def start_chat(self, welcome: p.Welcome, *, connect: bool = True) -> MainScreen:
        """Show the main screen for the rooms asked for; with `connect`, run the session."""
        self.buffers.me = welcome.name
        for room in self.initial_rooms:
            name = self.client.join(room)
            self.buffers.get("room", name.spelling)
        self._connect_on_mount = connect
        self.main_screen = MainScreen(self.buffers)
        self.switch_screen(self.main_screen)
        return self.main_screen

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
