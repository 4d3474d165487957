"""What the server tests share: a running in-process server and how to start one."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import trio

from trio_chat.config import Config


@dataclass
class RunningServer:
    port: int
    config: Config
    shutdown: trio.Event


StartServer = Callable[..., Coroutine[Any, Any, RunningServer]]
