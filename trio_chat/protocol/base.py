"""The protocol's limits, reasons and the peer's-fault error (PROTOCOL.md sections 1 to 5)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal, TypeAlias

from ..core.errors import ChatError, ErrorCode

if TYPE_CHECKING:
    from .frames import Error

PROTOCOL_VERSION: Final = 1
MAX_FRAME: Final = 65536  # bytes of a client frame, its LF included
SMALL_FRAME: Final = 16384  # bytes past which only a valid `say` is accepted
HISTORY_LIMIT: Final = 500  # the most messages one join or history answer holds
DEFAULT_LIMIT: Final = 50
ROOMS_LIMIT: Final = 1000  # rooms in one `rooms` answer, at most and by default
MAX_ID: Final = 64  # characters of a string `id` or a `nonce`
MAX_INT: Final = 2**53  # JSON integers beyond this are not exact everywhere
MIN_PASSWORD: Final = 8
MAX_PASSWORD: Final = 1024
MAX_REASON: Final = 400
# Server frames (a joined with 500 long messages) may be far larger than MAX_FRAME;
# a client decoder still bounds them so a broken server cannot exhaust its memory.
MAX_SERVER_FRAME: Final = 32 * 1024 * 1024

RequestId: TypeAlias = str | int

ByeReason = Literal[
    "quit",
    "shutdown",
    "timeout",
    "replaced",
    "slow_consumer",
    "too_many_errors",
    "server_busy",
    "banned",
]
LeaveReason = Literal["part", "quit", "timeout", "replaced", "gone", "kicked"]
BYE_REASONS: Final[frozenset[str]] = frozenset(ByeReason.__args__)  # type: ignore[attr-defined]
LEAVE_REASONS: Final[frozenset[str]] = frozenset(LeaveReason.__args__)  # type: ignore[attr-defined]


class ProtocolError(ChatError):
    """The peer sent something the protocol does not allow: answer with an error frame.

    Raised only for the peer's faults; the connection may carry on afterwards.
    """

    def __init__(self, code: ErrorCode, message: str, re: RequestId | None = None) -> None:
        super().__init__(code, message)
        self.re = re

    def frame(self) -> Error:
        """The error frame that answers this fault."""
        from .frames import Error  # frames are built on this module

        return Error(code=self.code, message=self.message, re=self.re)
