"""The settings file (--config), --print-config, the example file, and SIGHUP reloads."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import trio
from chat_client import ChatClient, login

from trio_chat.config import Config
from trio_chat.settings import SETTINGS, SettingsError, Sources, from_argv, parser, to_toml

SERVER = [sys.executable, "-m", "trio_chat"]
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "contrib" / "trio-chat.toml"
UNIT = ROOT / "contrib" / "trio-chat.service"


async def run_cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Exit status, standard output and standard error of a run that ends by itself."""
    with trio.fail_after(30):
        result = await trio.run_process(
            [*SERVER, *args], capture_stdout=True, capture_stderr=True, cwd=cwd, check=False
        )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


# ---------------------------------------------------------------------- one description


def test_every_setting_is_a_config_field_a_flag_and_a_key() -> None:
    fields = {f.name for f in dataclasses.fields(Config)}
    flags = {a.dest for a in parser()._actions}
    for s in SETTINGS:
        assert s.name in fields and s.name in flags
        assert s.flag == "--" + s.name.replace("_", "-")
    assert {"flood_rate", "log_format", "metrics_port"} <= {s.name for s in SETTINGS}


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("flood_rate = 3\nflood_burst = 7\nport = 1234\n")
    sources, show = from_argv(["--config", str(path), "--flood-rate", "5"])
    config = sources.load()
    assert not show
    assert (config.flood_rate, config.flood_burst, config.port) == (5.0, 7, 1234)
    assert config.idle_timeout == Config().idle_timeout  # the rest: defaults


def test_print_config_round_trips(tmp_path: Path) -> None:
    config = dataclasses.replace(Config(), flood_rate=2.5, server_name='odd"name', irc_port=6667)
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config))
    assert Sources(path, {}).load() == config


@pytest.mark.trio
async def test_print_config_prints_the_settings_in_force(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("max_per_ip = 3\n")
    status, out, err = await run_cli(
        "--config", "c.toml", "--flood-burst", "9", "--print-config", cwd=tmp_path
    )
    assert status == 0, err
    printed = tomllib.loads(out)
    assert printed["max_per_ip"] == 3 and printed["flood_burst"] == 9
    assert printed["idle_timeout"] == 60.0 and printed["log_format"] == "text"
    assert "# metrics_port" in out  # off: shown, commented out


BAD_FILES = {
    "unknown key": ("flod_rate = 1\n", "flod_rate", "flood_rate"),
    "wrong type": ('port = "http"\n', "port", "a whole number from 0 to 65535"),
    "bool for a number": ("queue_limit = true\n", "queue_limit", "a whole number"),
    "float for an int": ("max_conns = 1.5\n", "max_conns", "a whole number"),
    "out of range": ("flood_rate = -1\n", "flood_rate", "at least 0"),
    "port too big": ("irc_port = 70000\n", "irc_port", "from 0 to 65535"),
    "not a choice": ('log_format = "xml"\n', "log_format", "one of text, json"),
    "bad server name": ('server_name = "a b"\n', "server_name", "one word"),
    "nan": ("idle_timeout = nan\n", "idle_timeout", "at least 0.001"),
    "a table": ("[server]\nport = 1\n", "server", "no such setting"),
    "half of TLS": ('certfile = "c.pem"\n', "keyfile", "together"),
    "not TOML": ("port = \n", "not valid TOML", "line 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.trio
async def test_a_bad_file_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    text, key, expected = BAD_FILES[case]
    (tmp_path / "bad.toml").write_text(text)
    (tmp_path / "c.pem").write_text("")
    status, _, err = await run_cli("--config", "bad.toml", "--port", "0", cwd=tmp_path)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("trio-chat: error: bad.toml: ")
    assert key in lines[0] and expected in lines[0]


@pytest.mark.trio
async def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    status, _, err = await run_cli("--config", "none.toml", "--port", "0", cwd=tmp_path)
    assert status == 2 and err.strip() == (
        "trio-chat: error: cannot read none.toml: No such file or directory"
    )


def test_errors_name_the_flag_when_the_value_came_from_one(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('keyfile = "k.pem"\n')
    with pytest.raises(SettingsError, match=r"^--certfile: expected a file"):
        Sources(path, {"certfile": tmp_path / "missing.pem"}).load()


# ---------------------------------------------------------------------- contrib/


def test_the_example_file_loads_and_holds_the_defaults() -> None:
    assert Sources(EXAMPLE, {}).load() == Config()


def test_the_example_file_lists_every_setting() -> None:
    text = EXAMPLE.read_text()
    for s in SETTINGS:
        assert re.search(rf"^(# )?{s.name} = ", text, re.M), f"{s.name} is not in {EXAMPLE}"
    active = tomllib.loads(text)
    for s in SETTINGS:
        if s.default is not None:
            assert s.check(active[s.name]) == s.default, s.name


def test_the_service_unit_is_valid(tmp_path: Path) -> None:
    tool = "/usr/bin/systemd-analyze"
    if not Path(tool).exists():
        pytest.skip("systemd-analyze is not installed")
    unit = UNIT.read_text()
    for needed in (
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=trio-chat",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "SystemCallFilter=@system-service",
    ):
        assert needed in unit
    # verify wants the ExecStart binary to exist: point it at this interpreter
    local = tmp_path / "trio-chat.service"
    local.write_text(
        re.sub(r"^ExecStart=\S+", f"ExecStart={sys.executable} -m trio_chat", unit, flags=re.M)
    )
    result = subprocess.run(
        [tool, "verify", str(local)], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [
        line
        for line in result.stderr.splitlines()
        if str(local) in line or "trio-chat.service" in line
    ]
    if result.returncode != 0 and "System has not been booted with systemd" in result.stderr:
        pytest.skip("systemd-analyze verify needs systemd running")
    assert not problems, result.stderr
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------- SIGHUP


class Server:
    """`python -m trio_chat --config FILE` on port 0, its log in a file."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "chat.toml"
        self.log = tmp_path / "server.log"
        self.db = tmp_path / "chat.db"
        self.proc: trio.Process | None = None
        self.port = 0

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await trio.lowlevel.open_process(
                [*SERVER, "--config", str(self.path), "--port", "0", "--db", str(self.db)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        found = await self.wait_for(r"listening on \S+:(\d+)")
        self.port = int(found.group(1))

    async def wait_for(self, pattern: str, after: int = 0) -> re.Match[str]:
        with trio.fail_after(20):
            while True:
                found = re.search(pattern, self.log.read_text()[after:])
                if found:
                    return found
                assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
                await trio.sleep(0.02)

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            return await self.proc.wait()


async def pings_take(client: ChatClient, n: int) -> float:
    """Seconds for n pings to be answered (they are paced by the flood bucket)."""
    start = trio.current_time()
    for i in range(n):
        await client.send(type="ping", id=i)
    for i in range(n):
        await client.expect("pong", re=i)
    return trio.current_time() - start


@pytest.mark.trio
async def test_sighup_reloads_and_says_what_changed(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.path.write_text("flood_rate = 0\nmax_per_ip = 64\n")
    await server.start()
    old = await login(server.port, "Old")
    try:
        server.path.write_text(
            'flood_rate = 4\nflood_burst = 1\nmax_per_ip = 32\nserver_name = "renamed"\n'
        )
        mark = len(server.log.read_text())
        assert server.proc is not None
        server.proc.send_signal(signal.SIGHUP)
        line = (await server.wait_for(r"settings reloaded: .*", mark)).group(0)
        assert "flood_rate 0.0 -> 4.0" in line and "flood_burst 20 -> 1" in line
        assert "max_per_ip 64 -> 32" in line
        assert "kept until a restart: server_name" in line
        # the new flood setting applies to new connections; the open one keeps its own
        new = await login(server.port, "New")
        assert await pings_take(old, 8) < 1.0
        assert await pings_take(new, 8) >= 1.5  # 8 tokens at 4 a second, after a burst of 1
        await new.aclose()
        # a broken file changes nothing, and says so
        server.path.write_text("flood_rate = -5\n")
        mark = len(server.log.read_text())
        server.proc.send_signal(signal.SIGHUP)
        line = (await server.wait_for(r"settings not reloaded.*", mark)).group(0)
        assert "flood_rate" in line and "at least 0" in line
    finally:
        await old.aclose()
        assert await server.stop() == 0
