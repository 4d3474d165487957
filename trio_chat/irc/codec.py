"""IRC lines and messages (modern.ircdocs.horse, IRCv3 message-tags), sans-IO.

The door feeds received bytes to a `LineReader`, parses each line with `parse_line`
and sends what `format_message` builds. Nothing here does I/O or imports an event loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ..lines import BoundedLines

MAX_CLIENT_TAG_DATA: Final = 4094  # IRCv3: tag bytes a client may send, without '@' and ' '
MAX_TAGS: Final = MAX_CLIENT_TAG_DATA + 2  # a client line's tags part, its '@' and ' ' included
MAX_TAGS_TO_CLIENT: Final = 8191  # IRCv3: the tags part a client must accept from a server
MAX_MESSAGE: Final = 512  # the rest of a line (source, command, params), its CR LF included
MAX_BODY: Final = MAX_MESSAGE - 2  # the same without CR LF
MAX_LINE: Final = MAX_TAGS + MAX_MESSAGE  # the most a LineReader keeps of one line, LF included

# The command of a raw line that failed to parse, for the error reply.
_PEEK_COMMAND: Final = re.compile(rb" *(?::[^ ]* +)?([A-Za-z]+|[0-9]{3})(?: |\Z)")
_NOT_SPACE: Final = re.compile(r"[^ ]")
_NOT_SPACE_BYTES: Final = re.compile(rb"[^ ]")
_LINE_BREAKER_BYTES: Final = re.compile(rb"[\x00\r\n]")
_NEEDS_ESCAPE: Final = re.compile(r"[; \\\r\n]")
_ESCAPE_SEQUENCE: Final = re.compile(r"\\(.?)", re.DOTALL)
_UNESCAPES: Final = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_BAD_TAG_KEY: Final = re.compile(r"[ ;=\x00\r\n]")


class ParseFailure(StrEnum):
    """Why a line from a client is not a message; the door picks its answer from this."""

    INVALID_UTF8 = "invalid UTF-8"
    BAD_CHARACTER = "NUL, CR or LF inside the line"
    NO_COMMAND = "no command"
    BAD_COMMAND = "not a command"
    TAGS_TOO_LONG = "tags too long"
    INPUT_TOO_LONG = "input line too long"
    LINE_TOO_LONG = "line too long"


class IrcParseError(ValueError):
    """A client line that is not a valid message.

    `command` is the line's command when one could be read, so the door can name it in
    its reply (for BAD_COMMAND the offending token, unless it starts with ':').
    """

    def __init__(self, reason: ParseFailure, command: str | None) -> None:
        super().__init__(reason.value if command is None else f"{reason.value}: {command}")
        self.reason = reason
        self.command = command


class LineTooLong(IrcParseError):
    """A line longer than the reader's limit; it is skipped up to its LF."""

    def __init__(self, limit: int) -> None:
        super().__init__(ParseFailure.LINE_TOO_LONG, None)
        self.limit = limit

    def __str__(self) -> str:
        return f"a line is at most {self.limit} bytes, its LF included"


@dataclass(frozen=True, slots=True)
class IrcMessage:
    """One IRC message: tags ('' for a valueless tag), source, upper-case command, params."""

    tags: Mapping[str, str]
    source: str | None
    command: str
    params: tuple[str, ...]

    def to_bytes(self) -> bytes:
        """The message as one line with its CR LF (see `format_message`)."""
        return format_message(self.command, *self.params, source=self.source, tags=self.tags)


# --------------------------------------------------------------------------- framing


class LineReader(BoundedLines):
    """Splits a byte stream into lines, keeping at most `max_line` bytes of one line.

    Lines end at LF, a CR before it is dropped, and empty lines are skipped. A line
    longer than `max_line` (its LF included) raises `LineTooLong` once.
    """

    __slots__ = ()

    def __init__(self, max_line: int = MAX_LINE) -> None:
        super().__init__(max_line, LineTooLong)


# --------------------------------------------------------------------------- parsing


def parse_line(line: bytes, *, max_tags: int = MAX_TAGS, max_body: int = MAX_BODY) -> IrcMessage:
    """Parse one line (without its CR LF) from a client; raise `IrcParseError` if invalid.

    The tags part ('@', tags and one space) may hold `max_tags` bytes and the rest
    `max_body`; pass larger limits to read lines a server sent.
    """
    tags_end = 0  # where the tags part ends, its space included
    if line[:1] == b"@":
        space = line.find(b" ")
        if space < 0:
            too_long = len(line) + 1 > max_tags
            raise IrcParseError(
                ParseFailure.TAGS_TOO_LONG if too_long else ParseFailure.NO_COMMAND, None
            )
        tags_end = space + 1
        if tags_end > max_tags:
            raise IrcParseError(ParseFailure.TAGS_TOO_LONG, _peek_command(line, tags_end))
    found = _NOT_SPACE_BYTES.search(line, tags_end)
    if found is None:
        raise IrcParseError(ParseFailure.NO_COMMAND, None)
    body_start = found.start()
    if len(line) - body_start > max_body:
        raise IrcParseError(ParseFailure.INPUT_TOO_LONG, _peek_command(line, body_start))
    if _LINE_BREAKER_BYTES.search(line) is not None:
        raise IrcParseError(ParseFailure.BAD_CHARACTER, _peek_command(line, body_start))
    try:
        # Together these cover the whole line: between them are only spaces.
        raw_tags = line[1 : tags_end - 1].decode() if tags_end else ""
        body = line[body_start:].decode()
    except UnicodeDecodeError:
        raise IrcParseError(ParseFailure.INVALID_UTF8, _peek_command(line, body_start)) from None

    source: str | None = None
    pos = 0
    if body[0] == ":":
        space = body.find(" ")
        if space < 0:
            raise IrcParseError(ParseFailure.NO_COMMAND, None)
        source = body[1:space] or None
        found_text = _NOT_SPACE.search(body, space)
        if found_text is None:
            raise IrcParseError(ParseFailure.NO_COMMAND, None)
        pos = found_text.start()
    end = body.find(" ", pos)
    if end < 0:
        end = len(body)
    token = body[pos:end]
    if not is_command(token):
        raise IrcParseError(ParseFailure.BAD_COMMAND, None if token[0] == ":" else token)

    # " :" can only start a parameter: a middle one never starts with ':'.
    middle, colon, trailing = body[end:].partition(" :")
    params = [param for param in middle.split(" ") if param]
    if colon:
        params.append(trailing)
    tags = _parse_tags(raw_tags) if raw_tags else {}
    return IrcMessage(tags, source, token.upper(), tuple(params))


def is_command(token: str) -> bool:
    """Whether `token` is a command: ASCII letters, or a three-digit numeric."""
    if not token.isascii():
        return False
    return token.isalpha() or (len(token) == 3 and token.isdigit())


def _parse_tags(raw: str) -> dict[str, str]:
    """`key[=value];...` into a dict: empty items are skipped and the last duplicate wins."""
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        key, _, value = item.partition("=")
        if key:
            tags[key] = unescape_tag_value(value) if "\\" in value else value
    return tags


def _peek_command(line: bytes, body_start: int) -> str | None:
    """The command of a line that failed to parse, when it has a valid one."""
    found = _PEEK_COMMAND.match(line, body_start)
    return None if found is None else found[1].decode("ascii").upper()


def unescape_tag_value(value: str) -> str:
    """Undo IRCv3 tag value escaping; an unknown escape or a trailing '\\' loses its '\\'."""
    if "\\" not in value:
        return value
    return _ESCAPE_SEQUENCE.sub(lambda m: _UNESCAPES.get(m[1], m[1]), value)


def escape_tag_value(value: str) -> str:
    """IRCv3 tag value escaping: ';' ' ' '\\' CR LF become '\\:' '\\s' '\\\\' '\\r' '\\n'."""
    if _NEEDS_ESCAPE.search(value) is None:
        return value
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\:")
        .replace(" ", "\\s")
        .replace("\r", "\\r")
        .replace("\n", "\\n")
    )


# --------------------------------------------------------------------------- formatting


def format_message(
    command: str,
    *params: str,
    source: str | None = None,
    tags: Mapping[str, str] | None = None,
    trailing: bool = False,
) -> bytes:
    """One IRC line with its CR LF; the last param goes as trailing when it must, or always
    with `trailing` (texts are sent as `:text`, as clients expect and ergo sends them).

    Raises ValueError on what would not parse back the same: a middle param that is
    empty, holds a space or starts with ':', a bad tag key, source or command, or a
    NUL, CR or LF anywhere outside tag values. Line length is the caller's business.
    """
    parts: list[str] = []
    if tags:
        items = []
        for key, value in tags.items():
            if not key or _BAD_TAG_KEY.search(key) is not None:
                raise ValueError(f"bad tag key {key!r}")
            if not value:
                items.append(key)
            elif _NEEDS_ESCAPE.search(value) is None:
                items.append(key + "=" + value)
            else:
                items.append(key + "=" + escape_tag_value(value))
        parts.append("@" + ";".join(items))
    if source is not None:
        if not source or " " in source:
            raise ValueError(f"bad source {source!r}")
        parts.append(":" + source)
    if not is_command(command):
        raise ValueError(f"bad command {command!r}")
    parts.append(command)
    if params:
        last = params[-1]
        for param in params[:-1]:
            if not param or " " in param or param[0] == ":":
                raise ValueError(f"a middle param cannot be {param!r}")
            parts.append(param)
        parts.append(":" + last if trailing or not last or " " in last or last[0] == ":" else last)
    line = " ".join(parts)
    if "\n" in line or "\r" in line or "\x00" in line:
        raise ValueError(f"NUL, CR or LF in a message: {line!r}")
    return (line + "\r\n").encode()
