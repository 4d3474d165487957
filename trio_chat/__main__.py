"""The command line (PROTOCOL.md section 7): flags -> Config -> trio.run(serve) until a signal."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from . import __version__
from .config import Config
from .server import serve
from .store import StoreError

log = logging.getLogger("trio_chat")


def _number(kind: Callable[[str], float], low: float, what: str) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not value >= low:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {low}")
        return value

    return convert


def _port(text: str) -> int:
    port = int(_number(int, 0, "a port number")(text))
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trio-chat", description="A self-hosted chat server.")
    count = _number(int, 0, "a whole number")
    seconds = _number(float, 0.001, "a number of seconds")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on [127.0.0.1]")
    p.add_argument("--port", type=_port, default=7878, help="port; 0 picks a free one [7878]")
    p.add_argument("--db", type=Path, default=Path("trio_chat.db"), help="SQLite history file")
    p.add_argument("--handshake-timeout", type=seconds, default=10.0, metavar="S")
    p.add_argument("--idle-timeout", type=seconds, default=60.0, metavar="S")
    p.add_argument("--flood-burst", type=_number(int, 1, "a whole number"), default=20, metavar="N")
    p.add_argument(
        "--flood-rate", type=_number(float, 0, "a rate"), default=10.0, metavar="R",
        help="frames per second after the burst; 0 turns flood control off [10]",
    )  # fmt: skip
    p.add_argument("--queue-limit", type=_number(int, 1, "a whole number"), default=1000)
    p.add_argument("--max-conns", type=count, default=10000, metavar="N", help="0: no cap")
    p.add_argument("--max-per-ip", type=count, default=64, metavar="N", help="0: no cap")
    p.add_argument("--certfile", type=Path, help="serve TLS with this certificate chain")
    p.add_argument("--keyfile", type=Path, help="the certificate's private key")
    p.add_argument(
        "--irc-port", type=_port, metavar="P", help="also speak IRC on this port; 0 picks one [off]"
    )
    p.add_argument(
        "--irc-tls-port", type=_port, metavar="P",
        help="also speak IRC over TLS on this port (needs --certfile/--keyfile) [off]",
    )  # fmt: skip
    p.add_argument(
        "--irc-replay", type=count, default=25, metavar="N",
        help="messages replayed after JOIN to IRC clients without chathistory [25]",
    )  # fmt: skip
    p.add_argument(
        "--server-name", default="trio-chat", metavar="NAME",
        help="how the server calls itself on IRC [trio-chat]",
    )  # fmt: skip
    p.add_argument("--version", action="version", version=f"trio-chat {__version__}")
    return p


def parse_config(argv: Sequence[str] | None = None) -> Config:
    p = parser()
    args = p.parse_args(argv)
    if (args.certfile is None) != (args.keyfile is None):
        p.error("--certfile and --keyfile go together")
    if args.irc_tls_port is not None and args.certfile is None:
        p.error("--irc-tls-port needs --certfile and --keyfile")
    if not args.server_name or any(c.isspace() or c in ":!@" for c in args.server_name):
        p.error("--server-name must be one word without ':', '!' or '@'")
    for path in (args.certfile, args.keyfile):
        if path is not None and not path.is_file():
            p.error(f"no such file: {path}")
    return Config(
        host=args.host,
        port=args.port,
        db=args.db,
        handshake_timeout=args.handshake_timeout,
        idle_timeout=args.idle_timeout,
        flood_burst=int(args.flood_burst),
        flood_rate=args.flood_rate,
        queue_limit=int(args.queue_limit),
        max_conns=int(args.max_conns),
        max_per_ip=int(args.max_per_ip),
        certfile=args.certfile,
        keyfile=args.keyfile,
        irc_port=args.irc_port,
        irc_tls_port=args.irc_tls_port,
        irc_replay=int(args.irc_replay),
        server_name=args.server_name,
    )


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


async def run(config: Config) -> None:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(_watch_signals, shutdown, nursery.cancel_scope)
        await serve(config, shutdown=shutdown)
        nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    failure: str | None = None
    try:
        trio.run(run, config)
    except* StoreError as group:
        failure = str(group.exceptions[0])
    except* OSError as group:
        failure = f"cannot listen on {config.host}:{config.port}: {group.exceptions[0]}"
    if failure is not None:
        print(f"trio-chat: {failure}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
