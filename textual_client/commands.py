"""The slash commands: their names, their help, and splitting a typed line into one."""

from __future__ import annotations

from typing import Final

COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "/join": ("ROOM", "join a room (it is created if new) and show it"),
    "/part": ("[ROOM]", "leave a room (this one by default), or close a conversation"),
    "/msg": ("NAME TEXT", "send a direct message, in a conversation of its own"),
    "/who": ("[ROOM]", "list who is in a room"),
    "/rooms": ("", "list the server's rooms"),
    "/history": ("", "load older messages here (or scroll to the top)"),
    "/me": ("TEXT", "send an action: shown as * you TEXT"),
    "/edit": ("[TEXT]", "change your last message here (no TEXT: edit it in the box)"),
    "/delete": ("", "delete your last message here"),
    "/search": ("WORDS", "search messages; in:#room, in:@name or from:name narrow it"),
    "/topic": ("[TEXT]", "show or set this room's topic (/topic -delete clears it)"),
    "/kick": ("NAME [REASON]", "put someone out of this room (ops)"),
    "/ban": ("NAME [REASON]", "kick someone and keep them out of this room (ops)"),
    "/unban": ("NAME", "let a banned name join this room again (ops)"),
    "/bans": ("", "list this room's bans (ops)"),
    "/invite": ("NAME", "let an account join this private room (ops)"),
    "/op": ("NAME", "make an account an op of this room (owner)"),
    "/deop": ("NAME", "take an op's mark back (owner)"),
    "/private": ("on|off", "make this room private (invited accounts only) or public (owner)"),
    "/quit": ("[REASON]", "leave the server and exit"),
    "/help": ("", "show this help"),
}
KEYS_HELP: Final = (
    "keys: Enter sends, Shift+Enter / Ctrl+J / Alt+Enter start a new line; "
    "Ctrl+N / Ctrl+P next / previous room, Alt+1..9 (or Esc 1..9) room by number, "
    "F2 / F3 show or hide rooms / members, PgUp / PgDn scroll, "
    "Tab completes names and commands, Up / Down (Ctrl+Up / Ctrl+Down) recall lines, "
    "Up in an empty box edits your last message (Esc cancels), "
    "Alt+Up selects a message: Up / Down move, Enter or r replies, e edits, d or Delete deletes, "
    "Esc goes back; Ctrl+R reconnect now, Ctrl+Q quit; //text sends a line starting with /; "
    "drag the mouse over the log to select text, Ctrl+C copies it (c copies a selected "
    "message); F4 opens the command palette (Theme: pick one, kept in the config file)"
)


def help_lines() -> list[str]:
    """The text of /help, one line a command."""
    width = max(len(f"{c} {a}") for c, (a, _) in COMMANDS.items())
    lines = [f"{f'{c} {a}'.strip():<{width}}  {h}" for c, (a, h) in COMMANDS.items()]
    return [*lines, KEYS_HELP]


def parse_command(line: str) -> tuple[str, str] | None:
    """`("/join", "lobby")` for a command line; None for text to send (`//x` sends `/x`)."""
    if not line.startswith("/") or line.startswith("//"):
        return None
    head, _, rest = line.partition(" ")
    return head.casefold(), rest.strip()


def text_of(line: str) -> str:
    """The text a non-command line sends: a leading `//` stands for `/`."""
    return line[1:] if line.startswith("//") else line
