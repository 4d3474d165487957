"""The name prompt: a name, an optional password, and the server's refusals shown inline.

Keys typed in a burst (a password manager's "name, Tab, password, Enter") reach
the field that had the focus when each was read, before an earlier Tab took
effect; the fields pass each key on to the field that has the focus now, and do
Tab themselves, so every key lands where it was meant to.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from textual_client.connection import ConnectFailed, LoginRefused
from textual_client.messages import LoggedIn

if TYPE_CHECKING:
    from textual_client.app import ChatApp


class LoginField(Input):
    """An input of the name prompt that hands keys meant for another field to that field."""

    async def _on_key(self, event: events.Key) -> None:
        target = self.screen.focused
        if target is not self and isinstance(target, LoginField):
            event.stop()
            event.prevent_default()
            target._forward_event(events.Key(event.key, event.character))
            return
        if event.key in ("tab", "shift+tab"):  # now, in the order typed
            event.stop()
            event.prevent_default()
            fields = list(self.screen.query(LoginField))
            step = 1 if event.key == "tab" else -1
            self.screen.set_focus(fields[(fields.index(self) + step) % len(fields)])
            return
        await super()._on_key(event)


class LoginScreen(Screen[None]):
    """Asks for a name; Enter in the name field logs in without a password."""

    AUTO_FOCUS: ClassVar[str | None] = "#login-name"

    def __init__(self, user_name: str | None = None, server: str = "") -> None:
        super().__init__()
        self.initial_name = user_name or ""
        self.server = server

    @property
    def chat_app(self) -> ChatApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="login-box"):
            yield Static("trio-chat", id="login-title")
            yield Static(f"server {self.server}", id="login-server")
            yield LoginField(
                self.initial_name, placeholder="your name", id="login-name", max_length=64
            )
            yield LoginField(
                placeholder="password (optional: creates or opens an account)",
                password=True,
                id="login-password",
            )
            yield Static("", id="login-error")
            yield Static("Enter logs in", id="login-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#login-name", Input).focus()
        if self.initial_name:
            self.attempt()

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.attempt()

    def show_error(self, text: str) -> None:
        error = self.query_one("#login-error", Static)
        error.update(text)
        error.set_class(bool(text), "-shown")

    @work(exclusive=True, group="login")
    async def attempt(self) -> None:
        """Try to log in with what is typed; a refusal is shown and the user tries again."""
        name_input = self.query_one("#login-name", Input)
        name = name_input.value.strip()
        password = self.query_one("#login-password", Input).value or None
        if not name:
            self.show_error("type a name first")
            return
        self.show_error("")
        self.query_one("#login-hint", Static).update("connecting…")
        try:
            welcome = await self.chat_app.client.login(name, password)
        except LoginRefused as exc:
            self.show_error(f"{exc.message} ({exc.code})")
            name_input.focus()
        except ConnectFailed as exc:
            self.show_error(str(exc))
        else:
            self.app.post_message(LoggedIn(welcome))
        finally:
            with contextlib.suppress(NoMatches):  # the app may be closing
                self.query_one("#login-hint", Static).update("Enter logs in")
