"""The history pane: a line-API scroll view over one buffer, fast with many thousands of lines.

Each entry is rendered once per width and cached on the entry, so switching
rooms, appending and scrolling cost list work, not rendering (an edit clears the
cache of the line it changes). New lines scroll the view only when it was already
at the bottom; older pages added at the top keep the lines on screen where they were.
A line with the day's date comes before each day's first entry (local time).

Alt+Up (a screen key) focuses the log with its newest message selected; then Up/Down
move over messages, Enter/r replies, e edits, d/Delete deletes and Esc goes back.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date
from typing import ClassVar, Literal, TypeAlias

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.actions import SkipAction
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip

from textual_client.buffers import Buffer, Entry, day_title, local_day, local_time, quote_of

MessageAction: TypeAlias = Literal["reply", "edit", "delete"]

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


def _style_chars(strip: Strip, start: int, end: int, style: Style) -> Strip:
    """`strip` with `style` on its characters `start` to `end` (-1: to the end)."""
    end = len(strip.text) if end == -1 else end
    segments: list[Segment] = []
    at = 0
    for text, seg_style, control in strip:
        lo, hi = max(start - at, 0), min(end - at, len(text))
        if control or hi <= 0 or lo >= len(text) or lo >= hi:
            segments.append(Segment(text, seg_style, control))
        else:
            for part, styled in ((text[:lo], False), (text[lo:hi], True), (text[hi:], False)):
                if part:
                    combined = (seg_style or Style()) + style if styled else seg_style
                    segments.append(Segment(part, combined))
        at += len(text)
    return Strip(segments, strip.cell_length)


class ChatLog(ScrollView, can_focus=False):
    """Shows one buffer's entries and, under them, its pending messages.

    It never takes a click's focus (that would silently steal typing from the input):
    it scrolls with the wheel and with PgUp/PgDn, which the screen binds. It is
    focusable only while a message is selected (`select`), and gives the focus back.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,alt+up", "move(-1)", "Older", show=False, priority=True),
        Binding("down,alt+down", "move(1)", "Newer", show=False, priority=True),
        Binding("enter,r", "act('reply')", "Reply", key_display="r", priority=True),
        Binding("e", "act('edit')", "Edit", priority=True),
        Binding("d,delete", "act('delete')", "Delete", key_display="d", priority=True),
        Binding("escape", "leave", "Back to typing", key_display="esc", priority=True),
        Binding("c,ctrl+c", "copy_message", "Copy", key_display="c", priority=True),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "chat-log--time",
        "chat-log--own",
        "chat-log--mention",
        "chat-log--presence",
        "chat-log--info",
        "chat-log--error",
        "chat-log--pending",
        "chat-log--text",
        "chat-log--day",
        "chat-log--quote",
        "chat-log--edited",
        "chat-log--deleted",
        "chat-log--selected",
        "chat-log--topic",
        "chat-log--marker",
        "chat-log--hit",
    }

    @dataclass
    class NeedOlder(Message):
        """The view is at the top of a buffer that has older history on the server."""

        buffer: Buffer

    @dataclass
    class UnseenChanged(Message):
        """The count of messages that came below the view while scrolled up changed."""

        count: int

    @dataclass
    class ReachedBottom(Message):
        """The user scrolled down to the newest line: what is shown has been read."""

        buffer: Buffer

    @dataclass
    class Act(Message):
        """A key asked to reply to, edit or delete the selected message."""

        action: MessageAction
        entry: Entry

    @dataclass
    class Left(Message):
        """The selection ended: the screen gives the focus back to the input."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.buffer: Buffer | None = None
        self.selected: Entry | None = None
        self._spans: dict[int, tuple[int, int]] = {}  # id(entry) -> (first line, height)
        self._lines: list[Strip] = []
        self._width = 0
        self._style_generation = 0
        self._follow = True  # stay at the bottom as lines come (until the user scrolls up)
        self._entry_count = 0
        self.unseen = 0  # entries added below the view while scrolled up

    # ------------------------------------------------------------ public

    def show(self, buffer: Buffer | None) -> None:
        """Switch to another buffer, scrolled to its end."""
        self._set_selected(None)
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
        before, lines_before = self._entry_count, len(self._lines)
        if self.selected is not None and self.selected not in self._selectable():
            self._set_selected(None)
        self._relayout()
        if self._follow:
            self.scroll_end(animate=False, immediate=False)
            return
        if prepended:  # the lines added above (day lines too) push the view down
            added = len(self._lines) - lines_before
            self.scroll_to(y=self.scroll_offset.y + added, animate=False, immediate=True)
        below = self._entry_count - before - len(prepended or ())
        if below > 0:
            self._set_unseen(self.unseen + below)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def at_bottom(self) -> bool:
        """Whether the newest line is in view (the view follows new lines)."""
        return self._follow

    def scroll_to_entry(self, entry: Entry) -> None:
        """Bring an entry into view, in the middle when it can be."""
        span = self._spans.get(id(entry))
        if span is not None:
            top = max(0, span[0] - self.scrollable_content_region.height // 2)
            self.scroll_to(y=top, animate=False, immediate=True)

    # ------------------------------------------------------------ selecting messages

    def _selectable(self) -> list[Entry]:
        buf = self.buffer
        if buf is None:
            return []
        return [e for e in buf.entries if e.kind == "message" and e.id and not e.deleted]

    def select(self, step: int) -> bool:
        """Move the selection `step` messages (from below the newest when none); False: none."""
        messages = self._selectable()
        if not messages:
            return False
        if self.selected in messages:
            index = messages.index(self.selected) + step
        else:
            index = len(messages) + step if step < 0 else len(messages) - 1
        if index >= len(messages):
            self.action_leave()
            return True
        self._set_selected(messages[max(0, index)])
        self.can_focus = True
        if self.app.focused is not self:
            self.focus()
        self._relayout()
        self._scroll_to_selected()
        return True

    def _set_selected(self, entry: Entry | None) -> None:
        old, self.selected = self.selected, entry
        for line in (old, entry):
            if line is not None:
                line.render_cache = None

    def _scroll_to_selected(self) -> None:
        span = self._spans.get(id(self.selected)) if self.selected is not None else None
        if span is not None:
            region = Region(0, span[0], self._width, span[1])
            self.scroll_to_region(region, animate=False, immediate=True, force=True)

    def action_move(self, step: int) -> None:
        self.select(step)

    def action_act(self, action: MessageAction) -> None:
        entry = self.selected
        self.action_leave()
        if entry is not None:
            self.post_message(self.Act(action, entry))

    def action_leave(self) -> None:
        """Drop the selection and stop being focusable (the screen refocuses the input)."""
        if self.selected is not None:
            self._set_selected(None)
            self._relayout()
        self.can_focus = False
        self.post_message(self.Left())

    def on_blur(self, event: events.Blur) -> None:
        if self.selected is not None or self.can_focus:
            self._set_selected(None)
            self.can_focus = False
            self._relayout()

    def action_copy_message(self) -> None:
        """c (or Ctrl+C with no text selected by mouse): copy the selected message's text."""
        entry = self.selected
        if entry is None or self.screen.get_selected_text():
            raise SkipAction()
        self.app.copy_to_clipboard(entry.text)
        self.notify("message copied to the clipboard", timeout=2)

    # ------------------------------------------------------------ mouse text selection

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The text under a mouse selection, as shown (times and names too)."""
        return selection.extract("\n".join(s.text.rstrip() for s in self._lines)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

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
        was, self._follow = self._follow, round(new_value) >= self.max_scroll_y
        if self._follow:
            self._set_unseen(0)
            if not was and self.buffer is not None:
                self.post_message(self.ReachedBottom(self.buffer))
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
        line = self._lines[index]
        selection = self.text_selection
        span = selection.get_span(index) if selection is not None else None
        if span is not None:
            style = self.screen.get_component_rich_style("screen--selection")
            line = _style_chars(line, span[0], span[1], style)
        line = line.crop_extend(scroll_x, scroll_x + width, self.rich_style)
        # each cell's place in the text, which Textual's mouse selection reads
        return line.apply_style(self.rich_style).apply_offsets(scroll_x, index)

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
        spans: dict[int, tuple[int, int]] = {}
        buf = self.buffer
        if buf is not None:
            day: date | None = None
            for entry in buf.entries:
                entry_day = local_day(entry.ts)
                if entry_day is not None and entry_day != day:
                    day = entry_day
                    lines.append(self._day_line(day))
                if entry.kind == "marker":
                    spans[id(entry)] = (len(lines), 1)
                    lines.append(self._centred(f"── {entry.text} ──", "marker"))
                    continue
                strips = self._render_entry(entry)
                spans[id(entry)] = (len(lines), len(strips))
                lines.extend(strips)
            for entry in buf.pending:
                lines.extend(self._render_entry(entry))
        self._lines = lines
        self._spans = spans
        self._entry_count = len(buf.entries) + len(buf.pending) if buf is not None else 0
        self.virtual_size = Size(self._width, len(lines))
        self.refresh()

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"chat-log--{name}", partial=True)

    def _day_line(self, day: date) -> Strip:
        """`── Sunday 29 November 2026 ──`, centred."""
        return self._centred(f"── {day_title(day)} ──", "day")

    def _centred(self, title: str, style: str) -> Strip:
        text = Text(title.center(self._width).rstrip(), style=self._style(style))
        return Strip(list(text.render(self.app.console)), text.cell_len)

    def _render_entry(self, entry: Entry) -> list[Strip]:
        key = (self._width, self._style_generation, entry is self.selected)
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
        body = Text(entry.text)
        quote: str | None = None
        if kind in ("message", "pending", "failed"):
            nick = (
                entry.sender
                if len(entry.sender) <= NICK_WIDTH
                else entry.sender[: NICK_WIDTH - 1] + "+"
            )
            nick_style = self._style("own") if entry.own else Style(color=nick_color(entry.sender))
            if entry.action and not entry.deleted:  # weechat's way: `* │ ann waves`
                prefix.append("*".rjust(NICK_WIDTH), nick_style + Style(bold=True))
                body = Text.assemble((entry.sender, nick_style), " ", entry.text)
            else:
                prefix.append(nick.rjust(NICK_WIDTH), nick_style + Style(bold=True))
            if kind == "pending":
                body_style = self._style("pending")
            elif kind == "failed":
                body_style = self._style("error")
            if entry.deleted:
                body = Text("(message deleted)", style=self._style("deleted"))
            elif entry.edited:
                body.append(" (edited)", style=self._style("edited"))
            if entry.reply_to is not None and not entry.deleted and self.buffer is not None:
                quote = quote_of(self.buffer, entry.reply_to)
        elif kind == "topic":
            prefix.append("--".rjust(NICK_WIDTH), self._style("topic"))
            body_style = self._style("topic")
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
        body.stylize_before(body_style)
        body.expand_tabs(4)
        wrapped = body.wrap(console, max(10, width - indent))
        line_style = self._style("mention") if entry.mention else None
        if entry.hit:
            line_style = self._style("hit")
        if entry is self.selected:
            line_style = self._style("selected")
        blank = Text(" " * (indent - 2) + "│ ", style=self._style("time"))
        body_rows = list(wrapped)
        if quote is not None:  # the quote takes the first row, by the time and name
            quoted = Text(quote, style=self._style("quote"))
            quoted.truncate(max(10, width - indent), overflow="ellipsis")
            body_rows.insert(0, quoted)
        rows = [Text.assemble(prefix if i == 0 else blank, r) for i, r in enumerate(body_rows)]
        strips: list[Strip] = []
        for text in rows:
            strip = Strip(list(text.render(console)), text.cell_len)
            if line_style is not None:
                strip = strip.extend_cell_length(width).apply_style(line_style)
            strips.append(strip)
        return strips or [Strip.blank(width)]
