"""Start and stop the servers under test: trio-chat, the bare relay, and the IRC servers.

Each runs as a subprocess on 127.0.0.1 with its logs in a temporary directory, and is
stopped (SIGTERM, then SIGKILL) when its `with` block ends, whatever happened inside.
"""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "benchmarks" / "irc"
IRC_SERVERS = ("irc-door", "ngircd", "inspircd", "miniircd")
"""IRC servers run with the IRC load; `irc-door` is trio-chat itself through its IRC door."""
MINIIRCD_MAX_CLIENTS = 500
"""miniircd uses select() (at most FD_SETSIZE = 1024 descriptors) and its joins take
quadratic time (47 s for 500 clients here, minutes for 1000): larger runs skip it."""

_LISTENING = re.compile(r"(?<!irc )listening on \[?([^\s\]]+?)\]?:(\d+)")
_IRC_LISTENING = re.compile(r"irc listening on \[?([^\s\]]+?)\]?:(\d+)")


class ServerUnavailable(Exception):
    """The server is not installed here, or cannot take this run: skip it with a note."""


@dataclass(frozen=True)
class Target:
    """A running server: what dialect it speaks, where, and its process id."""

    name: str
    dialect: str
    host: str
    port: int
    pid: int
    workdir: Path


def raise_file_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (children inherit it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    """A port free on 127.0.0.1 right now, for servers that cannot take port 0."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _process(
    name: str,
    dialect: str,
    argv: list[str],
    workdir: Path,
    port: int | None,
    listening: re.Pattern[str] = _LISTENING,
) -> Iterator[Target]:
    """Run `argv`, wait until it listens (its log line, or `port` accepting), stop it after.

    It runs from the repository root (so `-m benchmarks.relay` imports) and logs to `workdir`.
    """
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
    try:
        found = _wait_listening(proc, log_path, port, listening)
        yield Target(name, dialect, HOST, found, proc.pid, workdir)
    finally:
        stop(proc)


def _wait_listening(
    proc: subprocess.Popen[bytes], log_path: Path, port: int | None, listening: re.Pattern[str]
) -> int:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail}")
        if port is None:
            match = listening.search(log_path.read_text(errors="replace"))
            if match:
                return int(match.group(2))
        else:
            try:
                with socket.create_connection((HOST, port), timeout=1):
                    return port
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"server not listening after 30 s; see {log_path}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a few seconds' grace, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def _workdir(name: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def chat_server(
    queue_limit: int = 100_000, db: Path | None = None, *, irc: bool = False, metrics: bool = False
) -> Iterator[Target]:
    """trio-chat with flood control and connection caps off, on a fresh (or given) db.

    With `irc`, the target is its IRC door (the load speaks IRC to it); with
    `metrics`, the server also serves /metrics (scraped by nobody: the cost is its counting).
    """
    raise_file_limit()
    with _workdir("chat") as workdir:
        argv = [
            sys.executable,
            "-m",
            "trio_chat",
            "--host",
            HOST,
            "--port",
            "0",
            "--db",
            str(db or workdir / "bench.db"),
            "--flood-rate",
            "0",
            "--max-per-ip",
            "0",
            "--max-conns",
            "0",
            "--queue-limit",
            str(queue_limit),
        ]
        if metrics:
            argv += ["--metrics-port", "0"]
        if irc:
            argv += ["--irc-port", "0"]
            with _process("irc-door", "irc", argv, workdir, None, _IRC_LISTENING) as target:
                yield target
            return
        with _process("server", "chat", argv, workdir, None) as target:
            yield target


@contextmanager
def relay_server() -> Iterator[Target]:
    """The bare trio relay of `benchmarks.relay`."""
    raise_file_limit()
    with _workdir("relay") as workdir:
        argv = [sys.executable, "-m", "benchmarks.relay", "--host", HOST, "--port", "0"]
        with _process("relay", "relay", argv, workdir, None) as target:
            yield target


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise ServerUnavailable(f"{name} is not installed (apt-get install {name})")
    return found


@contextmanager
def irc_server(name: str, clients: int = 0) -> Iterator[Target]:
    """ngircd, inspircd or miniircd with the configs in benchmarks/irc/ (caps and floods off)."""
    if name == "irc-door":
        with chat_server(irc=True) as target:
            yield target
        return
    if name == "miniircd":
        if importlib.util.find_spec("miniircd") is None:
            raise ServerUnavailable("miniircd is not installed (pip install miniircd)")
        if clients > MINIIRCD_MAX_CLIENTS:
            raise ServerUnavailable(
                f"miniircd is not run above {MINIIRCD_MAX_CLIENTS} clients"
                " (select() and quadratic joins: minutes to connect 1000)"
            )
    binary = sys.executable if name == "miniircd" else _binary(name)
    raise_file_limit()
    port = free_port()
    with _workdir(name) as workdir:
        fill = {"port": port, "dir": workdir, "piddir": workdir}
        if name == "ngircd":
            conf = workdir / "ngircd.conf"
            conf.write_text(Template((CONFIGS / "ngircd.conf").read_text()).substitute(fill))
            (workdir / "ngircd.motd").write_text("bench\n")
            argv = [binary, "--nodaemon", "--config", str(conf)]
        elif name == "inspircd":
            conf = workdir / "inspircd.conf"
            conf.write_text(Template((CONFIGS / "inspircd.conf").read_text()).substitute(fill))
            (workdir / "motd.txt").write_text("bench\n")
            argv = [binary, "--nofork", "--runasroot", "--config", str(conf)]
        elif name == "miniircd":
            argv = [binary, "-m", "miniircd", "--listen", HOST, "--ports", str(port)]
            if os.geteuid() == 0:
                argv += ["--setuid", "root"]
        else:
            raise ValueError(f"unknown IRC server {name!r}")
        with _process(name, "irc", argv, workdir, port) as target:
            yield target


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid`, from /proc/PID/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def machine() -> str:
    """One line about this machine: CPU model, cores, memory, OS and Python."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    uname = os.uname()
    python = sys.version.split()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kb / 2**20:.0f} GiB, "
        f"{uname.sysname} {uname.release}, Python {python}"
    )
