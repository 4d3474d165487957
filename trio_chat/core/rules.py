"""The chat's rules for names, rooms and text (PROTOCOL.md section 3), whatever the door.

A name or room is 1 to 32 letters, marks, digits or `_ - .`, compared by its
NFC form case-folded; a text is 1 to 4000 characters, not only white space,
with no control character but LF and TAB.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from .errors import ChatError, ErrorCode

MAX_TEXT: Final = 4000  # code points of a message's text
MAX_NAME: Final = 32
_ASCII_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
_BAD_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
SURROGATE = re.compile("[\ud800-\udfff]")


def nfc_length(text: str) -> int:
    """Length in code points after NFC normalisation (PROTOCOL.md section 3)."""
    if text.isascii():
        return len(text)
    return len(unicodedata.normalize("NFC", text))


@dataclass(frozen=True, slots=True)
class Name:
    """A user or room name: its NFC spelling, and the key two equal names share."""

    spelling: str
    key: str

    def __str__(self) -> str:
        return self.spelling


def name_key(spelling: str) -> str:
    """The identity of a name or room: its NFC form, case-folded."""
    return unicodedata.normalize("NFC", spelling).casefold()


def parse_name(value: object, what: str, code: ErrorCode) -> Name:
    """Validate a name or room (PROTOCOL.md section 3); a bad one raises `code`."""
    if not isinstance(value, str):
        raise ChatError("invalid_field", f"{what} must be a string")
    if value.isascii():
        if not _ASCII_NAME.fullmatch(value):
            raise ChatError(code, _name_rule(what))
        return Name(value, value.lower())
    if SURROGATE.search(value):
        raise ChatError(code, _name_rule(what))
    spelling = unicodedata.normalize("NFC", value)
    if not 1 <= len(spelling) <= MAX_NAME or not all(map(_name_char, spelling)):
        raise ChatError(code, _name_rule(what))
    return Name(spelling, spelling.casefold())


def _name_char(ch: str) -> bool:
    return ch in "_-." or unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) == "Nd"


def _name_rule(what: str) -> str:
    return f"{what} must be 1 to {MAX_NAME} letters, marks, digits or _ - ."


def check_text(value: object) -> str:
    """A message text: 1 to MAX_TEXT characters, not only white space, no control but LF/TAB."""
    if not isinstance(value, str):
        raise ChatError("invalid_field", "text must be a string")
    if _BAD_TEXT.search(value):
        raise ChatError(
            "invalid_field", "text must not hold control characters other than LF and TAB"
        )
    if not 1 <= nfc_length(value) <= MAX_TEXT:
        raise ChatError("invalid_field", f"text must be 1 to {MAX_TEXT} characters")
    if value.isspace():
        raise ChatError("invalid_field", "text must not be only white space")
    return value
