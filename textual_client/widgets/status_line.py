"""One line under the history pane: connected, reconnecting (and when), or why it stopped."""

from __future__ import annotations

from typing import Literal

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

State = Literal["offline", "connecting", "online", "waiting", "stopped"]


class StatusLine(Widget):
    """Shows the connection's state; the `-state` CSS class colours it."""

    DEFAULT_CSS = """
    StatusLine { height: 1; }
    """

    state: reactive[State] = reactive[State]("offline")
    text: reactive[str] = reactive("")

    def set(self, state: State, text: str) -> None:
        self.state = state
        self.text = text

    def watch_state(self, old: State, new: State) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")

    def render(self) -> Text:
        marks = {"online": "●", "waiting": "○", "connecting": "◌", "stopped": "✗", "offline": "·"}
        return Text(f"{marks[self.state]} {self.text}", no_wrap=True, overflow="ellipsis")
