"""The room list (weechat's buffer list and hotlist): rooms and direct conversations.

Each line shows the buffer's number (its Alt+number key), its name, the count
of unread messages and a mark when one of them mentions the user.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from textual_client.buffers import Buffer


def room_label(number: int, buf: Buffer) -> Text:
    """One line of the list: `1 #lobby 3 @`."""
    label = Text(no_wrap=True, overflow="ellipsis")
    label.append(f"{number} " if number <= 9 else "  ", style="dim")
    label.append(buf.title, style="bold" if buf.unread else "")
    if buf.kind == "room" and not buf.joined:
        label.append(" (off)", style="dim")
    if buf.unread:
        label.append(f" {buf.unread}", style="bold cyan")
    if buf.mention:
        label.append(" @", style="bold magenta")
    return label


class RoomList(OptionList, can_focus=False):
    """Lists the buffers; the highlighted one is the buffer shown. Clicking one selects it."""

    def show_buffers(self, buffers: list[Buffer], current: Buffer | None) -> None:
        """Redraw the list (it is short: rebuilding it is cheaper than tracking changes)."""
        options = [Option(room_label(i, b), id=b.ident) for i, b in enumerate(buffers, 1)]
        self.set_options(options)
        if current is not None and current in buffers:
            self.highlighted = buffers.index(current)
