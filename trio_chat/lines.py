"""Bounded line splitting, sans-IO: the framing both doors share (JSON lines and IRC).

Lines end at LF and a CR before it is dropped. A line longer than `max_line`
(its LF included) raises the door's own error once, as soon as it is known to be
too long, and its other bytes are skipped up to the next LF without being kept,
so one connection never holds more than `max_line` bytes of an unfinished line.
"""

from __future__ import annotations

from collections.abc import Callable


class BoundedLines:
    """Splits a byte stream into lines, keeping at most `max_line` bytes of one line."""

    __slots__ = ("_blank", "_buf", "_scanned", "_skipping", "_start", "_too_long", "max_line")

    def __init__(
        self,
        max_line: int,
        too_long: Callable[[int], Exception],
        *,
        skip_whitespace: bool = False,
    ) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self._too_long = too_long  # the door's error for a line past max_line
        self._blank = skip_whitespace  # also skip lines of white space only
        self._buf = bytearray()
        self._start = 0  # where the unread part of _buf begins
        self._scanned = 0  # _buf[_start:_scanned] holds no LF; _start <= _scanned
        self._skipping = False  # inside a too-long line already reported

    @property
    def buffered(self) -> int:
        """Bytes held that `next_line` has not returned yet."""
        return len(self._buf) - self._start

    def feed(self, data: bytes | bytearray) -> None:
        """Add received bytes; then call `next_line` until it returns None."""
        if self._skipping:
            lf = data.find(b"\n")
            if lf < 0:
                return
            self._skipping = False
            data = data[lf + 1 :]
        if self._start:
            del self._buf[: self._start]
            self._scanned -= self._start
            self._start = 0
        if self._scanned == len(self._buf) and b"\n" not in data:
            # All held bytes belong to one unfinished line: keep no more of it than
            # it takes to know it is too long.
            data = data[: max(0, self.max_line - len(self._buf))]
        self._buf += data

    def next_line(self) -> bytes | None:
        """The next line that is not empty, without its line end; None until more data."""
        buf = self._buf
        while True:
            lf = buf.find(b"\n", self._scanned)
            if lf < 0:
                if len(buf) - self._start >= self.max_line:
                    self._clear()
                    self._skipping = True
                    raise self._too_long(self.max_line)
                self._scanned = len(buf)
                return None
            start = self._start
            self._start = self._scanned = lf + 1
            if lf + 1 - start > self.max_line:
                raise self._too_long(self.max_line)
            end = lf - 1 if lf > start and buf[lf - 1] == 0x0D else lf
            if end == start:
                continue  # an empty line
            line = bytes(buf[start:end])
            if self._start == len(buf):
                self._clear()
            if self._blank and line.isspace():
                continue
            return line

    def _clear(self) -> None:
        self._buf.clear()
        self._start = self._scanned = 0
