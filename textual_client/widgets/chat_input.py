"""The input box: Enter sends, Shift+Enter / Ctrl+J / Alt+Enter add a line, Tab completes.

Up on an empty box asks the screen to edit the user's last message (`EditLast`); Esc
asks it to leave an edit or a reply (`Cancel`). Up/Down recall sent lines from the
first/last line of a box with text, Ctrl+Up/Ctrl+Down always. Alt+1..9 (also as Esc
then a digit, which is how tmux sends Alt) asks the screen for a room by number.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import TextArea

from trio_chat.protocol import name_key

NEWLINE_KEYS = frozenset({"shift+enter", "ctrl+j", "alt+enter", "ctrl+enter"})
ESC_PREFIX_WINDOW = 0.3  # seconds: Esc then a key this soon is Alt+key (tmux, some terminals)
# Characters str.isprintable() refuses that still belong in text (ZWJ, NBSP...).
EXTRA_TEXT_CATEGORIES = frozenset({"Cf", "Zs"})
ROOM_COMMANDS = frozenset({"/join", "/part", "/who"})  # their first word is a room


@dataclass
class _Cycle:
    """A completion in progress: what Tab produced last, to offer the next candidate."""

    start: int  # where the completed word begins
    tail: str  # the text after the cursor when completion began
    candidates: list[str]
    index: int
    suffix: str
    result: tuple[str, int]  # (value, cursor) right after the last Tab


def complete_word(word: str, at_start: bool, commands: list[str], names: list[str]) -> list[str]:
    """The candidates for `word`: commands when it starts the line with `/`, else names."""
    if at_start and word.startswith("/"):
        return [c for c in commands if c.startswith(word.casefold())]
    stem = name_key(word.lstrip("@"))
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        key = name_key(name)
        if key.startswith(stem) and key not in seen:
            seen.add(key)
            out.append(name)
    return sorted(out, key=name_key)


def complete_room(word: str, rooms: list[str]) -> list[str]:
    """The rooms whose name starts with `word` (a leading `#` is ignored), once each, sorted."""
    stem = name_key(word.lstrip("#"))
    found = {name_key(r): r for r in reversed(rooms) if name_key(r).startswith(stem)}
    return sorted(found.values(), key=name_key)


def typed_text(event: events.Key) -> str | None:
    """The text a key event types, counting joiners and odd spaces; None for other keys."""
    char = event.character
    if char is None or len(char) != 1:
        return None
    if event.is_printable or unicodedata.category(char) in EXTRA_TEXT_CATEGORIES:
        return char
    return None


class ChatInput(TextArea):
    """The message box; `names` is asked for the names to complete when Tab is pressed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete", show=False),
        Binding("up", "recall(-1)", "Previous line", show=False),
        Binding("down", "recall(1)", "Next line", show=False),
        Binding("ctrl+up", "recall(-1, True)", "Previous line", show=False),
        Binding("ctrl+down", "recall(1, True)", "Next line", show=False),
    ]

    @dataclass
    class Submitted(Message):
        """Enter was pressed: `value` is the text of the box."""

        input: ChatInput
        value: str

        @property
        def control(self) -> ChatInput:
            return self.input

    @dataclass
    class GotoBuffer(Message):
        """Alt+N (or Esc N) was pressed: show buffer number N."""

        number: int

    @dataclass
    class EditLast(Message):
        """Up was pressed on an empty box: edit the last message (or recall a line)."""

    @dataclass
    class Cancel(Message):
        """Esc was pressed: leave an edit or a reply."""

    def __init__(
        self, commands: list[str], *, placeholder: str = "", id: str | None = None
    ) -> None:
        super().__init__(
            placeholder=placeholder,
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            highlight_cursor_line=False,
        )
        self.commands = commands
        self.names: Callable[[], list[str]] = list
        self.rooms: Callable[[], list[str]] = list  # for /join, /part, /who
        self.max_text = 4000
        self._cycle: _Cycle | None = None
        self._recall: list[str] = []
        self._recall_pos = 0
        self._escape_at = -1.0
        self.editing = False  # the box holds a message being edited: no recall

    def on_mount(self) -> None:
        # headless (tests, snapshots): a steady cursor, so a picture never catches a blink
        if self.app.is_headless:
            self.cursor_blink = False

    # ------------------------------------------------------------ value and cursor

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.cursor_position = len(text)

    @property
    def cursor_position(self) -> int:
        """The cursor as an index into `value`."""
        row, column = self.cursor_location
        return sum(len(line) + 1 for line in self.document.lines[:row]) + column

    @cursor_position.setter
    def cursor_position(self, index: int) -> None:
        before = self.text[:index]
        self.move_cursor((before.count("\n"), len(before) - before.rfind("\n") - 1))

    def insert_text(self, text: str) -> None:
        """Type `text` at the cursor, replacing the selection."""
        self.replace(text, *self.selection, maintain_selection_offset=False)

    # ------------------------------------------------------------ keys

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        escaped = time.monotonic() - self._escape_at < ESC_PREFIX_WINDOW
        self._escape_at = time.monotonic() if key == "escape" else -1.0
        digit = key.removeprefix("alt+")
        if key == "escape":
            self.post_message(self.Cancel())
        if digit in set("123456789") and (key.startswith("alt+") or escaped):
            self._consume(event)
            self.post_message(self.GotoBuffer(int(digit)))
        elif (key == "enter" and escaped) or key in NEWLINE_KEYS:
            self._consume(event)
            self.insert_text("\n")
        elif key == "enter":
            self._consume(event)
            self.post_message(self.Submitted(self, self.text))
        elif (text := typed_text(event)) is not None and not event.is_printable:
            self._consume(event)
            self.insert_text(text)
        else:
            await super()._on_key(event)

    def _consume(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()

    async def _on_paste(self, event: events.Paste) -> None:
        """Paste every line (CR LF and CR become LF, as the protocol wants)."""
        event.stop()
        event.prevent_default()
        text = event.text.replace("\r\n", "\n").replace("\r", "\n")
        if text and not self.read_only:
            self.insert_text(text)
            self.focus()

    def action_complete(self) -> None:
        value, cursor = self.value, self.cursor_position
        cycle = self._cycle
        if cycle is not None and cycle.result == (value, cursor):
            cycle.index = (cycle.index + 1) % len(cycle.candidates)
        else:
            start = max(value.rfind(c, 0, cursor) for c in " \t\n") + 1
            word = value[start:cursor]
            at_start = value[:start].strip() == ""
            before = value[:start].split()
            if len(before) == 1 and before[0].casefold() in ROOM_COMMANDS:
                candidates = complete_room(word, self.rooms())
            else:
                candidates = complete_word(word, at_start, self.commands, self.names())
            if not candidates:
                self._cycle = None
                return
            is_command = at_start and word.startswith("/")
            suffix = " " if is_command or not at_start else ": "
            cycle = _Cycle(start, value[cursor:], candidates, 0, suffix, ("", 0))
            self._cycle = cycle
        head = value[: cycle.start] + cycle.candidates[cycle.index] + cycle.suffix
        self.value = head + cycle.tail
        self.cursor_position = len(head)
        cycle.result = (self.value, self.cursor_position)

    def remember(self, line: str) -> None:
        """Keep a sent line for Up/Down recall."""
        if line and (not self._recall or self._recall[-1] != line):
            self._recall.append(line)
            del self._recall[:-200]
        self._recall_pos = len(self._recall)

    def action_recall(self, step: int, force: bool = False) -> None:
        """Up on the first line / Down on the last one recalls; elsewhere they move.

        Up on an empty box (not while recalling) asks to edit the last message instead.
        """
        row = self.cursor_location[0]
        inside = row > 0 if step < 0 else row < self.document.line_count - 1
        if self.editing or (inside and not force):
            if step < 0:
                self.action_cursor_up()
            else:
                self.action_cursor_down()
            return
        if not force and step < 0 and not self.text and self._recall_pos >= len(self._recall):
            self.post_message(self.EditLast())
            return
        if not self._recall:
            return
        self._recall_pos = max(0, min(len(self._recall), self._recall_pos + step))
        line = self._recall[self._recall_pos] if self._recall_pos < len(self._recall) else ""
        self.value = line

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        """Show the length once the text passes the server's limit."""
        count = len(unicodedata.normalize("NFC", self.text))
        self.border_subtitle = f"{count}/{self.max_text}" if count > self.max_text else ""
