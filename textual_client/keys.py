"""Alt keys as terminals send them without a keyboard protocol: Esc, then the key.

tmux (and xterm with metaSendsEscape) send Alt+2 as `ESC 2` and Alt+Enter as
`ESC CR`. Textual reads `ESC 2` as the character macOS types for Option+2 (`™`,
as WezTerm on macOS sends it), so Alt+1..9 typed `¡™£¢∞§¶•ª`; and `ESC CR` as a
plain Enter, which sent the message. This client reads them as Alt+digit (room
switching) and Alt+Enter (a new line).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from textual import _ansi_sequences


class EscKey(StrEnum):
    """The key names Textual's sequence table yields for these `ESC` sequences."""

    ALT_0 = "alt+0"
    ALT_1 = "alt+1"
    ALT_2 = "alt+2"
    ALT_3 = "alt+3"
    ALT_4 = "alt+4"
    ALT_5 = "alt+5"
    ALT_6 = "alt+6"
    ALT_7 = "alt+7"
    ALT_8 = "alt+8"
    ALT_9 = "alt+9"
    ALT_ENTER = "alt+enter"


SEQUENCES: dict[str, EscKey] = {f"\x1b{k.value[-1]}": k for k in EscKey if k.value[-1].isdigit()}
SEQUENCES["\x1b\r"] = EscKey.ALT_ENTER


def read_esc_keys_as_alt() -> None:
    """Make Textual's parser read the sequences above as their Alt keys (idempotent)."""
    table: dict[str, Any] = _ansi_sequences.ANSI_SEQUENCES_KEYS  # type: ignore[assignment]
    for sequence, key in SEQUENCES.items():
        table[sequence] = (key,)
