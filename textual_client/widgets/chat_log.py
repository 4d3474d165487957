"""The history pane: a line-API scroll view over one buffer, fast with many thousands of lines.

Each entry is rendered once per width and cached on the entry, so switching
rooms, appending and scrolling cost list work, not rendering. New lines scroll
the view only when it was already at the bottom; older pages added at the top
keep the lines on screen where they were.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from textual_client.buffers import Buffer, Entry, local_time

NICK_WIDTH = 10
NICK_COLORS = (
    "#e5c07b",
    "#61afef",
    "#c678dd",
    "#56b6c2",
    "#98c379",
    "#d19a66",
    "#e06c75",
    "#8fbcbb",
    "#b48ead",
    "#a3be8c",
)


def nick_color(name: str) -> str:
    """A stable colour for a name (crc32, not hash(): the same on every run)."""
    return NICK_COLORS[zlib.crc32(name.casefold().encode()) % len(NICK_COLORS)]


class ChatLog(ScrollView, can_focus=False):
    """Shows one buffer's entries and, under them, its pending messages.

    It never takes the focus (a click would silently steal typing from the input):
    it scrolls with the wheel and with PgUp/PgDn, which the screen binds.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "chat-log--time",
        "chat-log--own",
        "chat-log--mention",
        "chat-log--presence",
        "chat-log--info",
        "chat-log--error",
        "chat-log--pending",
        "chat-log--text",
    }

    @dataclass
    class NeedOlder(Message):
        """The view is at the top of a buffer that has older history on the server."""

        buffer: Buffer

    @dataclass
    class UnseenChanged(Message):
        """The count of messages that came below the view while scrolled up changed."""

        count: int

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.buffer: Buffer | None = None
        self._lines: list[Strip] = []
        self._width = 0
        self._style_generation = 0
        self._follow = True  # stay at the bottom as lines come (until the user scrolls up)
        self._entry_count = 0
        self.unseen = 0  # entries added below the view while scrolled up

    # ------------------------------------------------------------ public

    def show(self, buffer: Buffer | None) -> None:
        """Switch to another buffer, scrolled to its end."""
        self.buffer = buffer
        self._follow = True
        self._relayout()
        self._set_unseen(0)
        self.scroll_end(animate=False, immediate=False)

    def sync(self, prepended: list[Entry] | None = None) -> None:
        """Take changes of the shown buffer: new entries, confirmed or failed pending ones.

        `prepended` are entries just added at the top (an older page): the view
        moves down by their height so what the user was reading stays in place.
        """
        before = self._entry_count
        self._relayout()
        if self._follow:
            self.scroll_end(animate=False, immediate=False)
            return
        if prepended:
            added = sum(len(self._render_entry(e)) for e in prepended)
            self.scroll_to(y=self.scroll_offset.y + added, animate=False, immediate=True)
        below = self._entry_count - before - len(prepended or ())
        if below > 0:
            self._set_unseen(self.unseen + below)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def visible_text(self) -> list[str]:
        """The plain text of the lines on screen (for tests and debugging)."""
        top = self.scroll_offset.y
        return [
            s.text.rstrip() for s in self._lines[top : top + self.scrollable_content_region.height]
        ]

    # ------------------------------------------------------------ Textual hooks

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_generation += 1
        if self.is_mounted:
            self._relayout()

    def on_resize(self, event: events.Resize) -> None:
        if self._content_width() != self._width:
            self._relayout()
            if self._follow:
                self.scroll_end(animate=False, immediate=False)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._follow = round(new_value) >= self.max_scroll_y
        if self._follow:
            self._set_unseen(0)
        if round(new_value) == 0 and round(old_value) > 0:
            self._want_older()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        if self.scroll_offset.y == 0:
            self._want_older()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        line = self._lines[index].crop_extend(scroll_x, scroll_x + width, self.rich_style)
        return line.apply_style(self.rich_style)

    # ------------------------------------------------------------ rendering

    def _set_unseen(self, count: int) -> None:
        if count != self.unseen:
            self.unseen = count
            self.post_message(self.UnseenChanged(count))

    def _want_older(self) -> None:
        buf = self.buffer
        if buf is not None and buf.more and not buf.loading_older:
            self.post_message(self.NeedOlder(buf))

    def _content_width(self) -> int:
        return max(20, self.scrollable_content_region.width or self.size.width or 80)

    def _relayout(self) -> None:
        self._width = self._content_width()
        lines: list[Strip] = []
        buf = self.buffer
        if buf is not None:
            for entry in buf.entries:
                lines.extend(self._render_entry(entry))
            for entry in buf.pending:
                lines.extend(self._render_entry(entry))
        self._lines = lines
        self._entry_count = len(buf.entries) + len(buf.pending) if buf is not None else 0
        self.virtual_size = Size(self._width, len(lines))
        self.refresh()

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"chat-log--{name}", partial=True)

    def _render_entry(self, entry: Entry) -> list[Strip]:
        key = (self._width, self._style_generation)
        cached = entry.render_cache
        if cached is not None and cached[0] == key:
            return cached[1]  # type: ignore[no-any-return]
        strips = self._draw(entry, self._width)
        entry.render_cache = (key, strips)
        return strips

    def _draw(self, entry: Entry, width: int) -> list[Strip]:
        console = self.app.console
        kind = entry.kind
        if kind == "pending":
            time_text = "  …  "  # sent, its echo not back yet
        elif kind == "failed":
            time_text = "  ✗  "  # refused by the server: not sent
        else:
            time_text = local_time(entry.ts) if entry.ts else "     "
        prefix = Text(f"{time_text} ", style=self._style("time"))
        body_style = self._style("text")
        if kind in ("message", "pending", "failed"):
            nick = (
                entry.sender
                if len(entry.sender) <= NICK_WIDTH
                else entry.sender[: NICK_WIDTH - 1] + "+"
            )
            nick_style = self._style("own") if entry.own else Style(color=nick_color(entry.sender))
            prefix.append(nick.rjust(NICK_WIDTH), nick_style + Style(bold=True))
            if kind == "pending":
                body_style = self._style("pending")
            elif kind == "failed":
                body_style = self._style("error")
        elif kind == "presence":
            prefix.append(entry.sender.rjust(NICK_WIDTH), self._style("presence"))
            body_style = self._style("presence")
        elif kind == "error":
            prefix.append("!!".rjust(NICK_WIDTH), self._style("error"))
            body_style = self._style("error")
        else:
            prefix.append("--".rjust(NICK_WIDTH), self._style("info"))
            body_style = self._style("info")
        prefix.append(" │ ", self._style("time"))
        indent = prefix.cell_len
        body = Text(entry.text, style=body_style)
        body.expand_tabs(4)
        wrapped = body.wrap(console, max(10, width - indent))
        line_style = self._style("mention") if entry.mention else None
        blank = Text(" " * (indent - 2) + "│ ", style=self._style("time"))
        strips: list[Strip] = []
        for i, line in enumerate(wrapped):
            text = Text.assemble(prefix if i == 0 else blank, line)
            strip = Strip(list(text.render(console)), text.cell_len)
            if line_style is not None:
                strip = strip.extend_cell_length(width).apply_style(line_style)
            strips.append(strip)
        return strips or [Strip.blank(width)]
