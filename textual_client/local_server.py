"""`--serve`: a trio-chat server beside the client, so one command starts both on this machine.

The server runs in a session of its own, so the terminal's Ctrl+C or hang-up reaches
only the client; the client stops it with SIGTERM (an orderly stop that commits every
accepted message) however the client ends: normally, by an exception, or by a signal.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, TracebackType


class LocalServerError(Exception):
    """The local server did not start; the message says why, with the end of its log."""


class LocalServer:
    """`python -m trio_chat` in a child process, its log in a file; SIGTERM when done."""

    def __init__(self, port: int, db: Path, log: Path) -> None:
        self.port = port
        self.db = db
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalServer:
        offset = self.log.stat().st_size if self.log.exists() else 0
        command = [
            sys.executable,
            "-m",
            "trio_chat",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # the terminal's signals are for the client
            )
        try:
            return self._wait_listening(offset)
        except BaseException:  # Ctrl+C while it starts, or it failed: never leave it behind
            self.stop()
            raise

    def _wait_listening(self, offset: int) -> LocalServer:
        assert self.proc is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            output = self.log.read_bytes()[offset:]
            found = re.search(rb"listening on \S+:(\d+)", output)
            if found:
                self.port = int(found.group(1))
                return self
            if self.proc.poll() is not None:
                last = output.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise LocalServerError(f"the local server exited: {last[0]}")
            time.sleep(0.05)
        raise LocalServerError(f"the local server did not listen within 20 s (see {self.log})")

    def stop(self) -> None:
        """Stop it the way an operator would: SIGTERM (it commits and says bye), then wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @contextlib.contextmanager
    def stopped_on_signals(self) -> Iterator[None]:
        """While inside: SIGTERM or SIGHUP to the client stop the server first, then the client."""
        signals = [signal.SIGTERM, signal.SIGHUP]
        old = {sig: signal.getsignal(sig) for sig in signals}

        def handler(sig: int, frame: FrameType | None) -> None:
            self.stop()
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)

        for sig in signals:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, previous in old.items():
                signal.signal(sig, previous)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
