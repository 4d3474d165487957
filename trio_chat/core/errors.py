"""The chat's refusals: a code from PROTOCOL.md section 5 and a sentence, for any door to encode."""

from __future__ import annotations

from typing import Final, Literal

ErrorCode = Literal[
    "bad_frame",
    "frame_too_large",
    "unknown_type",
    "invalid_field",
    "handshake_required",
    "bad_state",
    "name_invalid",
    "name_taken",
    "auth_failed",
    "auth_required",
    "room_invalid",
    "not_in_room",
    "no_such_user",
    "unavailable",
    "forbidden",
    "banned",
    "no_such_message",
]
ERROR_CODES: Final[frozenset[str]] = frozenset(ErrorCode.__args__)  # type: ignore[attr-defined]


class ChatError(Exception):
    """A request the chat refuses; the connection carries on. Each door encodes it its own way."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
        self.message = message
