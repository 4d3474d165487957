"""The command line (PROTOCOL.md section 7): flags -> Config -> trio.run(serve) until a signal."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

import trio

from . import logs
from .config import Config
from .metrics import ListenError
from .server import serve
from .settings import SettingsError, Sources, from_argv, parser, to_toml
from .store import StoreError

log = logging.getLogger("trio_chat")


def load(argv: Sequence[str] | None = None) -> tuple[Config, Sources, bool]:
    """The settings in force (defaults, then the file, then the flags), their sources, and
    whether --print-config was asked. A bad flag or setting: one line and exit 2."""
    sources, show = from_argv(argv)
    try:
        return sources.load(), sources, show
    except SettingsError as exc:
        if sources.file is None:  # only flags: argparse's usage and its one error line
            parser().error(str(exc))
        print(f"trio-chat: error: {exc}", file=sys.stderr)
        sys.exit(2)


def parse_config(argv: Sequence[str] | None = None) -> Config:
    """The settings of a command line (as `load`, without the rest)."""
    return load(argv)[0]


async def _watch_signals(
    shutdown: trio.Event,
    cancel: trio.CancelScope,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The first SIGINT/SIGTERM starts an orderly shutdown; a second one stops at once."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            if shutdown.is_set():
                log.warning("second %s: stopping now", signal.Signals(signum).name)
                cancel.cancel()
                return
            log.info("%s received", signal.Signals(signum).name)
            shutdown.set()


async def _watch_reloads(
    sources: Sources,
    reloads: trio.MemorySendChannel[Config],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """On SIGHUP, read the settings again (the file, then the same flags) and hand them on."""
    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        task_status.started()
        async for _ in signals:
            log.info("SIGHUP received: reading the settings again")
            try:
                config = sources.load()
            except SettingsError as exc:
                log.error("settings not reloaded, nothing changed: %s", exc,
                          extra={"event": "reload_failed"})  # fmt: skip
                continue
            await reloads.send(config)


async def run(config: Config, sources: Sources | None = None) -> None:
    shutdown = trio.Event()
    send, receive = trio.open_memory_channel[Config](1)
    async with trio.open_nursery() as nursery:
        await nursery.start(_watch_signals, shutdown, nursery.cancel_scope)
        if sources is not None:
            await nursery.start(_watch_reloads, sources, send)
        await serve(config, shutdown=shutdown, reloads=receive)
        nursery.cancel_scope.cancel()


def _first_leaf(error: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups: one plain line, not a tree."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["admin"]:  # `trio-chat admin ...`: the database, not the server
        from .admin import main as admin

        return admin(args[1:])
    config, sources, show = load(argv)
    if show:
        sys.stdout.write(to_toml(config))
        return 0
    logs.configure(config.log_level, config.log_format)
    failure: str | None = None
    try:
        trio.run(run, config, sources)
    except* StoreError as group:
        failure = str(group.exceptions[0])
    except* ListenError as group:
        failure = str(group.exceptions[0])
    except* OSError as group:
        ports = ", ".join(
            str(port)
            for port in (config.port, config.irc_port, config.irc_tls_port, config.metrics_port)
            if port is not None
        )
        failure = f"cannot listen on {config.host} (ports {ports}): {_first_leaf(group)}"
    if failure is not None:
        print(f"trio-chat: {failure}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
