"""The client's config file: `client.toml` in the user's config dir, made on first run.

Every setting is described once (`SPECS`): its TOML key, its check, its default and its
help; the file written on first run lists them all, commented. Flags win over the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trio_chat import protocol as p

CONFIG_FILE = "client.toml"
DEFAULT_THEME = "textual-dark"
NOTIFY_METHODS = ("auto", "osc9", "osc777", "bell")


class ConfigError(Exception):
    """A fault in the config file, as the one line to show (file, key, what is expected)."""


@dataclass(frozen=True)
class ClientSettings:
    """What the config file can set; the defaults are a first run's."""

    host: str = "127.0.0.1"
    port: int = 7878
    tls: bool = False
    cafile: Path | None = None
    name: str | None = None
    rooms: tuple[str, ...] = ()
    theme: str = DEFAULT_THEME
    notify_mention: bool = True
    notify_direct: bool = True
    notify_method: str = "auto"


@dataclass(frozen=True)
class Spec:
    """One setting: where it is in the file, how it is checked, and what it means."""

    table: str  # "" for the top level
    key: str
    field: str
    check: Callable[[Any], Any]  # the value, or ValueError(what is expected)
    help: str
    example: str = ""  # for a setting with no default: a commented-out example value

    @property
    def dotted(self) -> str:
        return f"{self.table}.{self.key}" if self.table else self.key


def default_config_path() -> Path:
    """`~/.config/trio-chat/client.toml` on Linux (platformdirs' choice elsewhere)."""
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - textual depends on it
        return Path.home() / ".config" / "trio-chat" / CONFIG_FILE
    return platformdirs.user_config_path("trio-chat") / CONFIG_FILE


# ---------------------------------------------------------------------- checks


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("a non-empty string")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("a port number from 1 to 65535")
    return value


def _name(value: Any) -> str:
    try:
        return p.parse_name(_str(value), "name", "name_invalid").spelling
    except (ValueError, p.ChatError):
        raise ValueError('a user name, such as "ann"') from None


def _rooms(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError('a list of room names, such as ["lobby", "rust"]')
    try:
        rooms = [p.parse_name(_str(r).lstrip("#"), "room", "room_invalid").spelling for r in value]
    except (ValueError, p.ChatError):
        raise ValueError('a list of room names, such as ["lobby", "rust"]') from None
    return tuple(rooms)


def _path(value: Any) -> Path:
    return Path(_str(value)).expanduser()


def theme_names() -> list[str]:
    """The themes Textual ships (an app may register more)."""
    from textual.theme import BUILTIN_THEMES

    return sorted(BUILTIN_THEMES)


def _theme(value: Any) -> str:
    names = theme_names()
    if not isinstance(value, str) or value not in names:
        raise ValueError(f"one of {', '.join(names)}")
    return value


def _method(value: Any) -> str:
    if value not in NOTIFY_METHODS:
        raise ValueError(f"one of {', '.join(repr(m) for m in NOTIFY_METHODS)}")
    return str(value)


SPECS: tuple[Spec, ...] = (
    Spec("", "name", "name", _name, "log in with this name (unset: asked for)", '"ann"'),
    Spec(
        "",
        "rooms",
        "rooms",
        _rooms,
        "rooms joined at every start, besides those open when you last quit",
    ),
    Spec("", "theme", "theme", _theme, "colour theme; the theme picker (F4) saves its choice here"),
    Spec("server", "host", "host", _str, "the server's host name or address"),
    Spec("server", "port", "port", _port, "the server's port"),
    Spec("server", "tls", "tls", _bool, "connect with TLS"),
    Spec(
        "server",
        "cafile",
        "cafile",
        _path,
        "CA certificate(s) to trust, implies TLS (unset: the system's CAs)",
        '"~/ca.pem"',
    ),
    Spec("notify", "mention", "notify_mention", _bool, "notify when a line mentions your name"),
    Spec("notify", "direct", "notify_direct", _bool, "notify on a direct message"),
    Spec(
        "notify",
        "method",
        "notify_method",
        _method,
        'how: "auto" (a desktop notification where the terminal has them, else the bell),'
        ' "osc9", "osc777" or "bell"; set mention and direct to false for none',
    ),
)
TABLES = ("server", "notify")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _near(key: str, known: Iterable[str]) -> str:
    import difflib

    near = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {near[0]}?)" if near else f"; known: {', '.join(known)}"


# ---------------------------------------------------------------------- the file


def to_toml(settings: ClientSettings | None = None) -> str:
    """Every setting with its help above it; one with no value is commented out."""
    settings = settings or ClientSettings()
    lines = [
        "# trio-chat client settings, written on the first run with every setting and its default.",
        "# Flags given on the command line win over this file (trio-chat-client --help).",
        "",
    ]
    table = ""
    for spec in SPECS:
        if spec.table != table:
            table = spec.table
            lines += [f"[{table}]", ""]
        value = getattr(settings, spec.field)
        lines.append(f"# {spec.help}")
        if value is None:
            lines.append(f"# {spec.key} = {spec.example}")
        else:
            lines.append(f"{spec.key} = {_toml(str(value) if isinstance(value, Path) else value)}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def write_default(path: Path) -> bool:
    """Write the first-run file (atomically); False when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(to_toml(), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        return False
    return True


def read(path: Path) -> ClientSettings:
    """The settings of a file, each checked; ConfigError (one line) for any fault."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from None
    by_key = {spec.dotted: spec for spec in SPECS}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in TABLES and isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        elif key in TABLES:
            raise ConfigError(f"{path}: {key}: expected a table ([{key}])")
        else:
            flat[key] = value
    values: dict[str, Any] = {}
    for key, value in flat.items():
        spec = by_key.get(key)
        if spec is None:
            raise ConfigError(f"{path}: {key}: no such setting{_near(key, by_key)}")
        try:
            values[spec.field] = spec.check(value)
        except ValueError as exc:
            raise ConfigError(f"{path}: {key}: expected {exc}, got {_shown(value)}") from None
    cafile = values.get("cafile")
    if cafile is not None and not cafile.is_absolute():  # relative to the file, not the cwd
        values["cafile"] = path.parent / cafile
    return dataclasses.replace(ClientSettings(), **values)


def _shown(value: Any) -> str:
    try:
        return _toml(value)
    except Exception:  # pragma: no cover - tomllib's types all print
        return repr(value)


def load(path: Path | None, *, create: bool) -> ClientSettings:
    """The settings of `path` (None: the defaults); with `create`, a missing file is written."""
    if path is None:
        return ClientSettings()
    if create and not path.exists() and not write_default(path):
        return ClientSettings()
    return read(path)


_THEME_LINE = re.compile(r"^\s*#?\s*theme\s*=")


def save_theme(path: Path, theme: str) -> None:
    """Set `theme` in the file, keeping its comments and other lines (failures are ignored)."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        lines = path.read_text(encoding="utf-8").splitlines()
        line = f"theme = {_toml(theme)}"
        top = next((i for i, t in enumerate(lines) if t.lstrip().startswith("[")), len(lines))
        found = [i for i in range(top) if _THEME_LINE.match(lines[i])]
        if found:
            lines[found[0]] = line
        else:
            lines.insert(top, line)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)


def startup_rooms(restored: Iterable[str], configured: Iterable[str]) -> list[str]:
    """The rooms to join: the last session's (in its order), then the configured ones not
    among them; once each (names compared as the server does)."""
    seen: set[str] = set()
    rooms: list[str] = []
    for room in [*restored, *configured]:
        key = p.name_key(room.lstrip("#"))
        if key not in seen:
            seen.add(key)
            rooms.append(room.lstrip("#"))
    return rooms
