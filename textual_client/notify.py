"""Desktop notifications for mentions and direct messages: OSC 9, OSC 777, or the bell.

The sequence is chosen from the environment ("auto") or by the config file. Nothing is
written for one's own lines, nor for the conversation on screen while the terminal has
the focus; the text is stripped of control characters (a message must not be able to
write escape sequences), shortened, and one buffer notifies at most once a few seconds.
"""

from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from textual_client.buffers import Buffer, Entry

Method = Literal["osc9", "osc777", "bell"]
MAX_BODY = 200  # characters of the message shown in a notification
QUIET_SECONDS = 3.0  # a buffer notifies at most once this often
OSC9_PROGRAMS = frozenset({"iTerm.app", "WezTerm", "ghostty"})
OSC9_TERMS = frozenset({"xterm-kitty", "xterm-ghostty", "wezterm"})
OSC777_TERMS = ("foot", "rxvt-unicode")


@dataclass(frozen=True)
class Rules:
    """What notifies, and how ("auto": as the terminal allows)."""

    mention: bool = True
    direct: bool = True
    method: str = "auto"


def detect(env: Mapping[str, str]) -> Method:
    """The notification sequence this terminal shows, judged from its environment."""
    if env.get("TMUX") or env.get("STY"):  # multiplexers drop OSCs they do not know
        return "bell"
    term, program = env.get("TERM", ""), env.get("TERM_PROGRAM", "")
    if program in OSC9_PROGRAMS or term in OSC9_TERMS or "KITTY_WINDOW_ID" in env:
        return "osc9"
    if term.startswith(OSC777_TERMS):
        return "osc777"
    return "bell"


def clean(text: str, limit: int = MAX_BODY) -> str:
    """One line of printable text: controls (ESC, BEL...) become spaces; cut to `limit`."""
    chars = [" " if unicodedata.category(ch).startswith("C") else ch for ch in text]
    line = " ".join("".join(chars).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def sequence(method: Method, title: str, body: str) -> str:
    """The bytes to write for a notification (`title` and `body` already cleaned)."""
    if method == "osc9":
        return f"\x1b]9;{title}: {body}\x07"
    if method == "osc777":
        return f"\x1b]777;notify;{title.replace(';', ',')};{body}\x07"
    return "\x07"


class Notifier:
    """Decides whether a new line notifies, and writes the sequence with `write`."""

    def __init__(
        self,
        rules: Rules,
        write: Callable[[str], None],
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rules = rules
        self.write = write
        method = rules.method
        self.method: Method = (
            detect(os.environ if env is None else env)
            if method not in ("osc9", "osc777", "bell")
            else method  # type: ignore[assignment]
        )
        self._clock = clock
        self._last: dict[str, float] = {}

    def wanted(self, buf: Buffer, entry: Entry) -> bool:
        """Does this line call for a notification by the rules (mention, direct message)?"""
        if entry.own or entry.kind != "message" or entry.deleted:
            return False
        return (self.rules.direct and buf.kind == "dm") or (self.rules.mention and entry.mention)

    def consider(self, buf: Buffer, entry: Entry, *, seen: bool) -> str | None:
        """Notify of a new line unless it is seen (shown, terminal focused); what was written."""
        if seen or not self.wanted(buf, entry):
            return None
        now = self._clock()
        last = self._last.get(buf.title)
        if last is not None and now - last < QUIET_SECONDS:
            return None
        self._last[buf.title] = now
        who = entry.sender
        title = clean(f"{who} in {buf.title}" if buf.kind == "room" else f"{who} (direct)", 80)
        body = clean(f"* {who} {entry.text}" if entry.action else entry.text)
        data = sequence(self.method, f"trio-chat: {title}", body)
        self.write(data)
        return data
