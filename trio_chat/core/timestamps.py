"""Timestamps as every door shows them: UTC, ISO 8601 with milliseconds (PROTOCOL.md section 3).

IRC's server-time tag uses the same form, so a message's `ts` is made once, at its commit.
"""

from __future__ import annotations

import time


def format_ts(seconds: float) -> str:
    """`2026-11-24T22:00:00.123Z` for a time in seconds since the epoch."""
    ms = int(seconds * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def now_ts() -> str:
    return format_ts(time.time())
