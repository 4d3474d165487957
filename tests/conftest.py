"""Shared fixtures: an in-process server on 127.0.0.1, port 0, with a real SQLite file."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import pytest
import trio
from harness import RunningServer, StartServer

from trio_chat.config import Config
from trio_chat.server import serve


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Test settings: no flood control, a cheap password hash, a quick shutdown."""
    return Config(
        host="127.0.0.1",
        port=0,
        db=tmp_path / "chat.db",
        flood_rate=0,
        scrypt_n=2**10,
        shutdown_grace=1.0,
    )


@pytest.fixture
def start_server(nursery: trio.Nursery, config: Config) -> StartServer:
    """Start a server in the test's nursery, with `overrides` of the test settings."""

    async def start(**overrides: Any) -> RunningServer:
        settings = dataclasses.replace(config, **overrides)
        shutdown = trio.Event()
        ports = await nursery.start(functools.partial(serve, settings, shutdown=shutdown))
        return RunningServer(ports.json[0], settings, shutdown, ports.irc[0] if ports.irc else None)

    return start


@pytest.fixture
async def server(start_server: StartServer) -> RunningServer:
    return await start_server()
