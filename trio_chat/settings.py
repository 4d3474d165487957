"""Every setting described once: the flags, the TOML file (`--config`), `--print-config`, reload.

`SETTINGS` is the one table. argparse's flags and the TOML loader are both made
from it, so a setting cannot exist in one and be missing from the other; each
is a field of `Config` (its default is that field's default) and its TOML key
is the flag's name with `_` for `-`. Flags given on the command line override
the file. A setting marked `reload` can change on SIGHUP; the others need a
restart.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from . import __version__
from .config import Config
from .core.errors import ChatError
from .core.rules import parse_name

_DEFAULTS: Final[dict[str, Any]] = {f.name: f.default for f in dataclasses.fields(Config)}


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its type and bounds, the words for its flag, whether SIGHUP may change it."""

    name: str  # the Config field and the TOML key; the flag is --name-with-dashes
    kind: type  # str, int, float or Path
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # off (None) unless set
    reload: bool = False
    metavar: str | None = None
    rule: Callable[[Any], bool] | None = None  # a further check; `expect` then says what it wants
    expect: str | None = None
    many: bool = False  # a list: the flag is repeated, the TOML value an array (a tuple here)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default(self) -> Any:
        return _DEFAULTS[self.name]

    def expected(self) -> str:
        """What a value must be, in words."""
        if self.expect is not None:
            return self.expect
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is Path:
            return "a file path (a string)"
        if self.kind is str:
            return "a string"
        what = "a whole number" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            return f"{what} from {_num(self.low)} to {_num(self.high)}"
        if self.low is not None:
            return f"{what}, at least {_num(self.low)}"
        return what

    def check(self, value: Any) -> Any:
        """The value (an int for an int setting, a tuple for a list), or ValueError saying
        what is expected."""
        if self.many:
            if not isinstance(value, list | tuple):
                raise ValueError(f"a list of {self.expected()}")
            return tuple(self._check_one(v) for v in value)
        return self._check_one(value)

    def _check_one(self, value: Any) -> Any:
        kind = self.kind
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
        else:
            ok = isinstance(value, str)
        if ok and kind in (int, float):
            ok = (self.low is None or value >= self.low) and (
                self.high is None or value <= self.high
            )
        if ok and self.choices:
            ok = value in self.choices
        if ok and self.rule is not None:
            ok = self.rule(value)
        if not ok:
            raise ValueError(self.expected())
        if kind is float:
            return float(value)
        return Path(value) if kind is Path else value

    def parse(self, text: str) -> Any:
        """A value from the command line's text (argparse calls this)."""
        value: Any = text
        try:
            if self.kind is int:
                value = int(text)
            elif self.kind is float:
                value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self.expected()}, got {text!r}") from None
        try:
            return self._check_one(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected {exc}, got {text!r}") from None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _server_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c in ":!@" for c in name)


def _account_name(name: str) -> bool:
    try:
        parse_name(name, "admin", "name_invalid")
    except ChatError:
        return False
    return True


def _port(name: str, help: str) -> Setting:
    return Setting(name, int, help, 0, 65535, optional=True, metavar="P")


def _seconds(name: str, help: str) -> Setting:
    return Setting(name, float, help, 0.001, reload=True, metavar="S")


def _count(name: str, help: str, low: int) -> Setting:
    return Setting(name, int, help, low, reload=True, metavar="N")


SETTINGS: Final[tuple[Setting, ...]] = (
    Setting("host", str, "address to listen on", metavar="HOST"),
    Setting("port", int, "port; 0 picks a free one", 0, 65535, metavar="P"),
    Setting("db", Path, "the SQLite history file, created when missing", metavar="PATH"),
    _seconds("handshake_timeout", "no welcome by then (TLS handshake included): bye timeout"),
    _seconds("idle_timeout", "silent that long: ping; half as long again: bye timeout"),
    _count("flood_burst", "frames read at once before the rate applies", 1),
    Setting(
        "flood_rate",
        float,
        "frames per second after the burst; 0 turns flood control off",
        0,
        reload=True,
        metavar="R",
    ),
    _count("queue_limit", "unsent frames per client before bye slow_consumer", 1),
    _count("max_conns", "connections at once; 0: no cap", 0),
    _count("max_per_ip", "connections per address; 0: no cap", 0),
    Setting("certfile", Path, "serve TLS with this chain", optional=True, metavar="FILE"),
    Setting("keyfile", Path, "the certificate's private key", optional=True, metavar="FILE"),
    _port("irc_port", "also speak IRC on this port; 0 picks one"),
    _port("irc_tls_port", "also speak IRC over TLS on this port (needs certfile and keyfile)"),
    _count("irc_replay", "messages replayed after JOIN to IRC clients without chathistory", 0),
    Setting(
        "server_name",
        str,
        "how the server calls itself on IRC",
        metavar="NAME",
        rule=_server_name,
        expect="one word without ':', '!' or '@'",
    ),
    Setting(
        "log_level",
        str,
        "the least important log lines written",
        choices=("debug", "info", "warning", "error"),
        reload=True,
    ),
    Setting(
        "log_format",
        str,
        "a line of text, or a JSON object, per log line",
        choices=("text", "json"),
        reload=True,
    ),
    _port("metrics_port", "serve /metrics and /healthz over HTTP on this port; 0 picks one"),
    Setting("metrics_host", str, "address of the metrics endpoint", metavar="HOST"),
    Setting(
        "admin",
        str,
        "an account that is a server admin (may not exist yet); repeat for more",
        reload=True,
        metavar="NAME",
        rule=_account_name,
        expect="a name: 1 to 32 letters, marks, digits or _ - .",
        many=True,
    ),
)
BY_NAME: Final[dict[str, Setting]] = {s.name: s for s in SETTINGS}


class SettingsError(Exception):
    """A setting cannot be used; its str is one line naming the file (or flag) and the key."""


# ---------------------------------------------------------------------- the command line


def parser() -> argparse.ArgumentParser:
    """The flags, one per setting; a flag not given is absent from the namespace."""
    p = argparse.ArgumentParser(
        prog="trio-chat",
        description="A self-hosted chat server.",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--config", type=Path, metavar="PATH", help="read settings from this TOML file")
    p.add_argument(
        "--print-config", action="store_true", help="print the settings in force as TOML and exit"
    )
    for s in SETTINGS:
        shown = "off" if s.default is None else _num_or_str(s.default)
        p.add_argument(
            s.flag,
            action="append" if s.many else "store",
            type=s.parse,
            metavar=s.metavar or ("{" + ",".join(s.choices) + "}" if s.choices else None),
            help=f"{s.help} [{shown}]" + ("" if s.reload else " (restart to change)"),
        )
    p.add_argument("--version", action="version", version=f"trio-chat {__version__}")
    return p


def _num_or_str(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(value) or "none"
    return _num(value) if isinstance(value, int | float) else str(value)


# ---------------------------------------------------------------------- the file


def read_file(path: Path) -> dict[str, Any]:
    """The settings a TOML file holds, each checked; SettingsError (one line) for any fault."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid TOML: {_one_line(str(exc))}") from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        setting = BY_NAME.get(key)
        if setting is None:
            near = difflib.get_close_matches(key, BY_NAME, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            known = "" if near else f"; known settings: {', '.join(BY_NAME)}"
            raise SettingsError(f"{path}: {key}: no such setting{hint}{known}")
        try:
            values[key] = setting.check(raw)
        except ValueError as exc:
            raise SettingsError(f"{path}: {key}: expected {exc}, got {_toml(raw)}") from None
    return values


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------- together


@dataclass(frozen=True, slots=True)
class Sources:
    """Where settings come from: a file (re-read on reload) and the flags given (they win)."""

    file: Path | None
    flags: Mapping[str, Any]

    def where(self, name: str) -> str:
        """How an error names a setting: its flag when given, else the file and its key."""
        if name in self.flags or self.file is None:
            return BY_NAME[name].flag
        return f"{self.file}: {name}"

    def load(self, base: Config | None = None) -> Config:
        """Defaults (or `base`'s fields that are no settings), then the file, then the flags."""
        values = {} if self.file is None else read_file(self.file)
        values.update(self.flags)
        config = dataclasses.replace(Config() if base is None else base, **(_defaults() | values))
        self._check(config)
        return config

    def _check(self, c: Config) -> None:
        """The rules between settings, and files that must exist."""
        if (c.certfile is None) != (c.keyfile is None):
            name = "keyfile" if c.keyfile is None else "certfile"
            raise SettingsError(f"{self.where(name)}: expected together with the other of "
                                "certfile and keyfile")  # fmt: skip
        if c.irc_tls_port is not None and c.certfile is None:
            raise SettingsError(f"{self.where('irc_tls_port')}: needs certfile and keyfile")
        for name in ("certfile", "keyfile"):
            path = getattr(c, name)
            if path is not None and not path.is_file():
                raise SettingsError(f"{self.where(name)}: expected a file; no such file: {path}")


def _defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SETTINGS}


def from_argv(argv: Sequence[str] | None = None) -> tuple[Sources, bool]:
    """The settings' sources from the command line, and whether --print-config was asked.

    A bad flag exits through argparse (usage and one error line, status 2).
    """
    args: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in vars(parser().parse_args(argv)).items()
    }
    path = args.pop("config", None)
    show = bool(args.pop("print_config", False))
    return Sources(path, args), show


# ---------------------------------------------------------------------- out


def _toml(value: Any) -> str:
    """A value as TOML (strings as basic strings; JSON's escapes are TOML's, DEL aside)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value)).replace("\x7f", "\\u007f")
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


def to_toml(config: Config, *, comments: bool = False) -> str:
    """Every setting of `config` as TOML that `--config` reads back; unset ones commented out.

    With `comments`, each line has its help above it (the example file).
    """
    lines = []
    for s in SETTINGS:
        value = getattr(config, s.name)
        if comments:
            lines.append(f"# {s.help}" + ("" if s.reload else " (restart to change)"))
        if value is None:
            lines.append(f"# {s.name} = (off unless set: {s.expected()})")
        else:
            lines.append(f"{s.name} = {_toml(value)}")
        if comments:
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def changes(old: Config, new: Config) -> tuple[dict[str, tuple[Any, Any]], list[str]]:
    """What differs: the reloadable settings (old, new value), and those needing a restart."""
    live: dict[str, tuple[Any, Any]] = {}
    restart: list[str] = []
    for s in SETTINGS:
        before, after = getattr(old, s.name), getattr(new, s.name)
        if before != after:
            if s.reload:
                live[s.name] = (before, after)
            else:
                restart.append(s.name)
    return live, restart


def reloaded(old: Config, new: Config) -> Config:
    """`old` with the reloadable settings of `new` (the others wait for a restart)."""
    live, _ = changes(old, new)
    return dataclasses.replace(old, **{name: after for name, (_, after) in live.items()})
