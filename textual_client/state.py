"""What the client remembers between runs: each session's rooms and direct conversations.

One small JSON file in the user's config directory, keyed by server and name; beside
it, this installation's device label (section 10), made once.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trio_chat import protocol as p

STATE_FILE = "client-state.json"
DEVICE_FILE = "device"
MAX_DEVICE = 64  # a device label is 1 to 64 characters


def default_state_path() -> Path:
    """`~/.config/trio-chat/client-state.json` on Linux (platformdirs' choice elsewhere)."""
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - textual depends on it
        return Path.home() / ".config" / "trio-chat" / STATE_FILE
    return platformdirs.user_config_path("trio-chat") / STATE_FILE


@dataclass
class Saved:
    """The buffers of one session, in the order shown."""

    rooms: list[str] = field(default_factory=list)
    dms: list[str] = field(default_factory=list)


def session_key(address: str, name: str) -> str:
    return f"{address} {p.name_key(name)}"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load(path: Path, address: str, name: str) -> Saved | None:
    """The saved buffers of `name` on `address`, or None when there are none (or unreadable)."""
    entry = _read(path).get("sessions", {}).get(session_key(address, name))
    if not isinstance(entry, dict):
        return None
    rooms = [r for r in entry.get("rooms", []) if isinstance(r, str)]
    dms = [d for d in entry.get("dms", []) if isinstance(d, str)]
    return Saved(rooms, dms)


def save(path: Path, address: str, name: str, saved: Saved) -> None:
    """Write the buffers of a session (atomically; a failure to write is ignored)."""
    data = _read(path)
    sessions = data.get("sessions")
    if not isinstance(sessions, dict):
        sessions = data["sessions"] = {}
    sessions[session_key(address, name)] = {"rooms": saved.rooms, "dms": saved.dms}
    data["version"] = 1
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)


def device_label(path: Path) -> str | None:
    """The device label kept in `path`, made (a random short id) and saved the first time.

    None when it can be neither read nor saved: a label not kept across runs is no label.
    """
    with contextlib.suppress(OSError, UnicodeDecodeError):
        label = path.read_text(encoding="utf-8").strip()
        if 1 <= len(label) <= MAX_DEVICE and label.isprintable():
            return label
    label = f"textual-{secrets.token_hex(4)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(label + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError:
        return None
    return label
