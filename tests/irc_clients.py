"""Real IRC clients for tests: irssi in a detached tmux, weechat-headless over its FIFO.

Each client connects to HOST:PORT on start (optionally with SASL PLAIN) and is read back
through what a person would see: irssi's screen (and its autolog files), weechat's logger
files. `wait_for` polls every 0.05 s; inside a trio test use `wait_for_async`, since a
blocking wait would stall an in-process server.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
import trio

POLL = 0.05
# the executable each client needs, and the Debian package that brings it
PACKAGES = {"irssi": "irssi", "weechat-headless": "weechat-headless", "tmux": "tmux"}
# weechat-headless only recommends the package that has the fifo plugin
FIFO_PLUGIN_DIRS = ["/usr/lib/*/weechat/plugins", "/usr/lib*/weechat/plugins"]
# a UTF-8 locale that Debian has without the locales package, so non-ASCII text survives
UTF8_ENV = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
NICK_MODES = "@%+~&!"


def missing_clients() -> list[str]:
    """The Debian packages missing for the real clients (empty when all are there)."""
    missing = [package for exe, package in PACKAGES.items() if shutil.which(exe) is None]
    if shutil.which("weechat-headless") and not any(
        any(Path("/").glob(f"{folder.lstrip('/')}/fifo.so")) for folder in FIFO_PLUGIN_DIRS
    ):
        missing.append("weechat-plugins")
    return missing


def require_clients() -> None:
    """Return when irssi, weechat-headless and tmux exist; else fail under CI=true, else skip."""
    missing = missing_clients()
    if not missing:
        return
    names = " ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(f"real IRC clients missing, apt packages: {names} (.ci/apt-packages.sh)")
    pytest.skip(
        f"real IRC clients missing, apt packages: {names}; "
        ".ci/run installs them with .ci/apt-packages.sh"
    )


def _refuse_inside_trio() -> None:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return
    raise RuntimeError("a blocking wait inside trio stalls the event loop: use wait_for_async")


def _compile(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    return pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.MULTILINE)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _tail(text: str, chars: int = 4000) -> str:
    return text if len(text) <= chars else "…" + text[-chars:]


class _Client:
    """What both clients share: polling waits, message patterns, context management."""

    nick: str

    def _text(self, log: str | None) -> str:
        raise NotImplementedError

    def _alive(self) -> bool:
        raise NotImplementedError

    def _report(self, log: str | None) -> str:
        """The text shown when a wait fails."""
        return self._text(log)

    def close(self) -> None:
        raise NotImplementedError

    def _check(
        self, regex: re.Pattern[str], log: str | None, deadline: float, timeout: float
    ) -> re.Match[str] | None:
        found = regex.search(self._text(log))
        if found:
            return found
        where = "screen" if log is None and isinstance(self, Irssi) else f"log {log or '(all)'}"
        if not self._alive():
            raise AssertionError(
                f"{type(self).__name__} {self.nick} exited before {regex.pattern!r} "
                f"showed; last {where}:\n{_tail(self._report(log))}"
            )
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{type(self).__name__} {self.nick}: no {regex.pattern!r} within {timeout} s; "
                f"last {where}:\n{_tail(self._report(log))}"
            )
        return None

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, *, log: str | None = None
    ) -> re.Match[str]:
        """Poll until `pattern` (a MULTILINE regex) matches; AssertionError with the text if not."""
        _refuse_inside_trio()
        return self._wait(_compile(pattern), log, timeout)

    def _wait(self, regex: re.Pattern[str], log: str | None, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (found := self._check(regex, log, deadline, timeout)) is None:
            time.sleep(POLL)
        return found

    async def wait_for_async(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, *, log: str | None = None
    ) -> re.Match[str]:
        """`wait_for` that sleeps with trio, for tests whose server runs in the same loop."""
        regex, deadline = _compile(pattern), time.monotonic() + timeout
        # polling is the point: the text is another process's screen or log file
        while (found := self._check(regex, log, deadline, timeout)) is None:  # noqa: ASYNC110
            await trio.sleep(POLL)
        return found

    def message_pattern(self, nick: str, text: str) -> str:
        """A regex for `nick` saying `text` as this client shows it."""
        raise NotImplementedError

    def join_pattern(self, channel: str) -> str:
        """A regex for our own JOIN line in `channel`."""
        raise NotImplementedError

    def registered(self) -> bool:
        """Whether registration finished (001 arrived)."""
        raise NotImplementedError

    def command(self, command: str) -> None:
        raise NotImplementedError

    def wait_registered(self, timeout: float = 10.0) -> None:
        """Wait until the client got 001 from the server."""
        _refuse_inside_trio()
        _poll_flag(self, self.registered, timeout, "registration (001)")

    async def wait_registered_async(self, timeout: float = 10.0) -> None:
        """`wait_registered` that sleeps with trio."""
        await _poll_flag_async(self, self.registered, timeout, "registration (001)")

    def join(self, channel: str, timeout: float = 10.0) -> None:
        """Wait for registration, /join `channel` (it comes to the front), see our JOIN."""
        self.wait_registered(timeout)
        self.command(f"/join {channel}")
        self.wait_for(self.join_pattern(channel), timeout, log=channel)

    async def join_async(self, channel: str, timeout: float = 10.0) -> None:
        """`join` that sleeps with trio."""
        await self.wait_registered_async(timeout)
        self.command(f"/join {channel}")
        await self.wait_for_async(self.join_pattern(channel), timeout, log=channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _irssi_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class Irssi(_Client):
    """irssi in a detached tmux session of a fixed size, with its own --home.

    `wait_for(p)` reads the screen (the active window only; long lines wrap at `width`);
    `wait_for(p, log="#lobby")` reads irssi's autolog of that channel or query instead.
    """

    def __init__(
        self,
        host: str,
        port: int,
        nick: str,
        *,
        home: Path | None = None,
        sasl: tuple[str, str] | None = None,
        password: str | None = None,
        width: int = 100,
        height: int = 30,
        network: str = "test",
    ) -> None:
        self.nick = nick
        self.network = network
        self._own_home = home is None
        self.home = Path(tempfile.mkdtemp(prefix="irssi-")) if home is None else home
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs = self.home / "logs"
        self._registered = self.home / "registered"
        self._registered.unlink(missing_ok=True)
        self._write_config(host, port, sasl, password)
        # a private tmux server per client: nothing shared with a developer's own tmux
        self._socket = f"trio-chat-irssi-{uuid.uuid4().hex[:12]}"
        (self.home / "tmux.conf").write_text(
            "set -g status off\nset -g remain-on-exit on\nset -g default-terminal screen\n"
        )
        self._pid: int | None = None
        self._tmux(
            "-f",
            str(self.home / "tmux.conf"),
            "new-session",
            "-d",
            "-s",
            "irssi",
            "-x",
            str(width),
            "-y",
            str(height),
            "--",
            "irssi",
            "--home",
            str(self.home),
        )
        try:
            self._pid = int(self._tmux("display-message", "-p", "-t", "irssi", "#{pane_pid}"))
            self._wait(_compile(r"Irssi v\d"), None, 10.0)
        except BaseException:
            self.close()
            raise

    def _write_config(
        self, host: str, port: int, sasl: tuple[str, str] | None, password: str | None
    ) -> None:
        q = _irssi_str
        chatnet = [
            'type = "IRC";',
            # runs once registration is done (001): the flag that wait_registered polls
            f"autosendcmd = {q(f'/exec - -nosh touch {self._registered}')};",
        ]
        if sasl is not None:
            chatnet += [
                'sasl_mechanism = "PLAIN";',
                f"sasl_username = {q(sasl[0])};",
                f"sasl_password = {q(sasl[1])};",
            ]
        server = [
            f"address = {q(host)};",
            f"chatnet = {q(self.network)};",
            f'port = "{port}";',
            'use_tls = "no";',
            'autoconnect = "yes";',
        ]
        if password is not None:
            server.append(f"password = {q(password)};")
        log_path = str(self.logs / "$0.log")
        # cmd_queue_speed 0: irssi's flood control would hold a JOIN sent right after
        # connecting for seconds; paste_detect_time 0: typed lines are never a "paste"
        config = f"""\
servers = ( {{ {" ".join(server)} }} );
chatnets = {{ {q(self.network)} = {{ {" ".join(chatnet)} }}; }};
settings = {{
  core = {{
    nick = {q(self.nick)}; user_name = {q(self.nick)}; real_name = {q(self.nick)};
    settings_autosave = "no";
  }};
  "irc/core" = {{ cmd_queue_speed = "0"; cmds_max_at_once = "0"; }};
  "fe-text" = {{ paste_detect_time = "0"; }};
  "fe-common/core" = {{
    autolog = "yes"; autolog_path = {q(log_path)};
    autolog_level = "all -crap -clientcrap -ctcps";
  }};
}};
"""
        (self.home / "config").write_text(config, encoding="utf-8")

    def _tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["tmux", "-u", "-L", self._socket, *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**{k: v for k, v in os.environ.items() if k != "TMUX"}, **UTF8_ENV},
            timeout=10,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        """The visible screen as text (tmux capture-pane)."""
        return self._tmux("capture-pane", "-p", "-t", "irssi", check=False)

    def log_text(self, target: str) -> str:
        """irssi's autolog of a channel or query (names compare case-insensitively)."""
        if self.logs.is_dir():
            for path in self.logs.iterdir():
                if path.name.lower() == f"{target.lower()}.log":
                    return _read(path)
        return ""

    def _text(self, log: str | None) -> str:
        return self.screen() if log is None else self.log_text(log)

    def _report(self, log: str | None) -> str:
        return (
            self.screen() if log is None else f"{self.log_text(log)}\n--- screen:\n{self.screen()}"
        )

    def _alive(self) -> bool:
        dead = self._tmux("display-message", "-p", "-t", "irssi", "#{pane_dead}", check=False)
        return dead == "0\n"

    def type(self, text: str) -> None:
        """Type `text` and Enter into the active window."""
        if "\n" in text or "\r" in text:
            raise ValueError("one line at a time: Enter would send the rest as another line")
        # as hex bytes: tmux takes a trailing ";" of a literal argument as a separator
        keys = [f"{byte:02x}" for byte in f"{text}\r".encode()]
        self._tmux("send-keys", "-t", "irssi", "-H", *keys)

    def command(self, command: str) -> None:
        """Run an irssi command, e.g. `/join #lobby`."""
        if not command.startswith("/"):
            raise ValueError(f"not a command: {command!r}")
        self.type(command)

    def say(self, text: str) -> None:
        """Say `text` in the active window (irssi's `/ ` says a text that starts with /)."""
        self.type(f"/ {text}" if text.startswith("/") else text)

    def registered(self) -> bool:
        """Whether registration finished (001 arrived) once since the start."""
        return self._registered.exists()

    def join_pattern(self, channel: str) -> str:
        """A regex for our own JOIN line in `channel`."""
        return rf"-!- {re.escape(self.nick)}\S* \[[^]]*\] has joined {re.escape(channel)}"

    def message_pattern(self, nick: str, text: str) -> str:
        """`HH:MM <@nick> text`: the mode char is a space when the nick has none."""
        return rf"<[ {re.escape(NICK_MODES)}]?{re.escape(nick)}> {re.escape(text)}"

    def close(self) -> None:
        """/quit, then end the tmux server, then irssi itself if it is still there."""
        with contextlib.suppress(Exception):
            if self._alive():
                self.type("/quit")
                deadline = time.monotonic() + 2.0
                while self._alive() and time.monotonic() < deadline:
                    time.sleep(POLL)
        with contextlib.suppress(Exception):
            self._tmux("kill-server", check=False)
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            self._pid = None
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)


def _poll_flag(client: _Client, flag: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not flag():
        if not client._alive() or time.monotonic() >= deadline:
            raise AssertionError(
                f"{type(client).__name__} {client.nick}: no {what} within {timeout} s; "
                f"last text:\n{_tail(client._report(None))}"
            )
        time.sleep(POLL)


async def _poll_flag_async(
    client: _Client, flag: Callable[[], bool], timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while not flag():
        if not client._alive() or time.monotonic() >= deadline:
            raise AssertionError(
                f"{type(client).__name__} {client.nick}: no {what} within {timeout} s; "
                f"last text:\n{_tail(client._report(None))}"
            )
        await trio.sleep(POLL)


@functools.cache
def weechat_version() -> tuple[int, ...]:
    """weechat-headless --version, as numbers (3.8 -> (3, 8))."""
    out = subprocess.run(
        ["weechat-headless", "--version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    found = re.search(r"\d+(?:\.\d+)*", out)
    assert found, f"weechat-headless --version: {out!r}"
    return tuple(int(part) for part in found.group().split("."))


class Weechat(_Client):
    """weechat-headless in the foreground with its own --dir, driven through the fifo plugin.

    Everything it shows is read back from the logger's files, flushed at once:
    `wait_for(p, log="#lobby")` reads that channel's log, `log="server"` the server
    buffer's, `log="core"` the core buffer's, no `log` all of them.
    """

    REGISTERED = "trio-chat-harness: registered"

    def __init__(
        self,
        host: str,
        port: int,
        nick: str,
        *,
        home: Path | None = None,
        sasl: tuple[str, str] | None = None,
        password: str | None = None,
        capabilities: str = "*",
        server: str = "test",
    ) -> None:
        """`capabilities` is irc.server.NAME.capabilities: "*" is all that weechat supports."""
        self.nick = nick
        self.server = server
        self._own_home = home is None
        self.home = Path(tempfile.mkdtemp(prefix="weechat-")) if home is None else home
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs = self.home / "logs"
        self._stdout_path = self.home / "stdout.txt"
        self._stdout = self._stdout_path.open("wb")
        self.fifo: Path | None = None
        self.proc = subprocess.Popen(
            # only the plugins it needs; no scripts; no autoconnect of anything configured
            [
                *("weechat-headless", "--dir", str(self.home), "--stdout"),
                *("-a", "-s", "-P", "irc,fifo,logger"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
            env={**os.environ, **UTF8_ENV},
            start_new_session=True,
        )
        try:
            self._wait_fifo(10.0)
            self._setup(host, port, sasl, password, capabilities)
        except BaseException:
            self.close()
            raise

    def _wait_fifo(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            found = sorted(self.home.glob("weechat_fifo*"))
            if found:
                self.fifo = found[0]
                return
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                raise AssertionError(
                    f"weechat-headless made no FIFO in {self.home}:\n{_read(self._stdout_path)}"
                )
            time.sleep(POLL)

    def _setup(
        self,
        host: str,
        port: int,
        sasl: tuple[str, str] | None,
        password: str | None,
        capabilities: str,
    ) -> None:
        s = f"irc.server.{self.server}"
        new = weechat_version() >= (4,)
        lines = [
            "/set logger.file.flush_delay 0",
            "/set logger.file.path ${weechat_data_dir}/logs",
            # weechat's anti-flood holds each line after the first for 2 s (3.x: seconds)
            *(
                ["/set irc.server_default.anti_flood 0"]
                if new
                else [
                    "/set irc.server_default.anti_flood_prio_high 0",
                    "/set irc.server_default.anti_flood_prio_low 0",
                ]
            ),
            f"/server add {self.server} {host}/{port}",
            f"/set {s}.{'tls' if new else 'ssl'} off",
            f"/set {s}.nicks {self.nick}",
            f"/set {s}.username {self.nick}",
            f"/set {s}.realname {self.nick}",
            f"/set {s}.autoreconnect off",
            f'/set {s}.capabilities "{capabilities}"',
            # run by weechat once registered (001), before autojoin: the registration flag
            # ($server expands there, so the echo of this /set does not match)
            f'/set {s}.command "/print -core {self.REGISTERED} $server"',
        ]
        if sasl is not None:
            lines += [
                f"/set {s}.sasl_mechanism plain",
                f'/set {s}.sasl_username "{sasl[0]}"',
                f'/set {s}.sasl_password "{sasl[1]}"',
                f"/set {s}.sasl_fail disconnect",
            ]
        if password is not None:
            lines.append(f'/set {s}.password "{password}"')
        lines.append(f"/connect {self.server}")
        self._write_fifo("".join(f"*{line}\n" for line in lines))

    def _write_fifo(self, data: str) -> None:
        assert self.fifo is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"weechat exited:\n{_tail(self._report(None))}")
        data_left, deadline = data.encode(), time.monotonic() + 5.0
        while data_left:
            try:
                # non-blocking: a weechat that died or stalls fails the test, not hangs it
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                try:
                    data_left = data_left[os.write(fd, data_left) :]
                finally:
                    os.close(fd)
            except (BlockingIOError, OSError) as error:
                # ENXIO: weechat made the FIFO but has not opened it yet; EAGAIN: it is full
                if time.monotonic() >= deadline or self.proc.poll() is not None:
                    raise AssertionError(f"weechat's FIFO: {error}") from error
                time.sleep(POLL)

    def command(self, command: str, buffer: str | None = None) -> None:
        """Run a command in the server buffer, or in `buffer` ("#lobby", a nick, "core")."""
        if not command.startswith("/"):
            raise ValueError(f"not a command: {command!r}")
        self._input(command, buffer if buffer is not None else "server")

    def say(self, text: str, buffer: str | None = None) -> None:
        """Say `text` in the current buffer, or in `buffer` (a channel or a nick)."""
        self._input(f"/{text}" if text.startswith("/") else text, buffer)

    def _input(self, text: str, buffer: str | None) -> None:
        if "\n" in text or "\r" in text:
            raise ValueError("one line at a time: the FIFO takes a line as one input")
        self._write_fifo(f"{self._full_name(buffer)} *{text}\n" if buffer else f"*{text}\n")

    def _full_name(self, buffer: str) -> str:
        if buffer == "core":
            return "core.weechat"
        if buffer == "server":
            return f"irc.server.{self.server}"
        return f"irc.{self.server}.{buffer}"

    def log_path(self, buffer: str) -> Path:
        """The logger's file for `buffer` ("#lobby", a nick, "server", "core")."""
        name = self._full_name(buffer)
        return self.logs / f"{name.lower()}.weechatlog"

    def log_text(self, buffer: str | None = None) -> str:
        """One buffer's log, or every log file (core first) when `buffer` is None."""
        if buffer is not None:
            return _read(self.log_path(buffer))
        paths = sorted(
            self.logs.glob("*.weechatlog"),
            key=lambda p: (p.name != "core.weechat.weechatlog", p.name),
        )
        return "".join(f"=== {path.name}\n{_read(path)}" for path in paths)

    def _text(self, log: str | None) -> str:
        return self.log_text(log)

    def _report(self, log: str | None) -> str:
        text = self.log_text(log)
        if self.proc.poll() is not None:
            text += f"\n--- stdout (exit {self.proc.returncode}):\n{_read(self._stdout_path)}"
        return text

    def _alive(self) -> bool:
        return self.proc.poll() is None

    def registered(self) -> bool:
        """Whether registration finished (001 arrived) on this client's server."""
        marker = rf"\t{re.escape(self.REGISTERED)} {re.escape(self.server)}$"
        return re.search(marker, self.log_text("core"), re.MULTILINE) is not None

    def join_pattern(self, channel: str) -> str:
        """A regex for our own JOIN line in `channel`'s log."""
        return rf"\t-->\t{re.escape(self.nick)}\S* \([^)]*\) has joined {re.escape(channel)}"

    def message_pattern(self, nick: str, text: str) -> str:
        """`DATE TIME<TAB>@nick<TAB>text`, as the logger writes a line."""
        return rf"\t[{re.escape(NICK_MODES)}]?{re.escape(nick)}\t{re.escape(text)}$"

    def close(self) -> None:
        """/quit through the FIFO, then kill its process group if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self._write_fifo("*/quit\n")
            try:
                self.proc.wait(3.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._stdout.close()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)
