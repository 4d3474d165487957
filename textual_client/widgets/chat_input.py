"""The input line: Tab completes commands and names (Tab again cycles), Up/Down recall lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input

from trio_chat.protocol import name_key


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


class ChatInput(Input):
    """A chat input line; `names` is asked for the names to complete when Tab is pressed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete", show=False),
        Binding("up", "recall(-1)", "Previous line", show=False),
        Binding("down", "recall(1)", "Next line", show=False),
    ]

    def __init__(
        self, commands: list[str], *, placeholder: str = "", id: str | None = None
    ) -> None:
        super().__init__(placeholder=placeholder, id=id, select_on_focus=False)
        self.commands = commands
        self.names: Callable[[], list[str]] = list
        self._cycle: _Cycle | None = None
        self._recall: list[str] = []
        self._recall_pos = 0

    def action_complete(self) -> None:
        value, cursor = self.value, self.cursor_position
        cycle = self._cycle
        if cycle is not None and cycle.result == (value, cursor):
            cycle.index = (cycle.index + 1) % len(cycle.candidates)
        else:
            start = max(value.rfind(" ", 0, cursor), value.rfind("\t", 0, cursor)) + 1
            word = value[start:cursor]
            at_start = value[:start].strip() == ""
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

    def action_recall(self, step: int) -> None:
        if not self._recall:
            return
        self._recall_pos = max(0, min(len(self._recall), self._recall_pos + step))
        line = self._recall[self._recall_pos] if self._recall_pos < len(self._recall) else ""
        self.value = line
        self.cursor_position = len(line)
