"""`python -m textual_client` / `trio-chat-client`: parse flags, check the server, run the app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from textual_client import settings as cfg
from textual_client.state import DEVICE_FILE, default_state_path, device_label
from trio_chat import protocol as p

PROG = "trio-chat-client"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A terminal client for a trio-chat server.",
        epilog="With --serve it starts a local server too; otherwise start one with:"
        " python -m trio_chat",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the settings file (written with every setting on the first run; flags win over it)"
        f" [{cfg.default_config_path()}]",
    )
    parser.add_argument("--host", help="server host [the config file's, else 127.0.0.1]")
    parser.add_argument(
        "--port",
        type=_port,
        help="server port; with --serve, 0 picks a free one [the config file's, else 7878]",
    )
    parser.add_argument(
        "--name",
        type=_name,
        help="log in with this name (skips typing it) [the config file's, else asked for]",
    )
    parser.add_argument(
        "--room",
        action="append",
        type=_room,
        metavar="ROOM",
        help="a room to join besides the last session's; repeatable, replaces the config file's"
        " rooms [the config file's rooms, else lobby]",
    )
    parser.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        help="connect with TLS (--no-tls: plain TCP) [the config file's, else off]",
    )
    parser.add_argument(
        "--cafile",
        type=Path,
        help="CA certificate(s) to trust (implies --tls)"
        " [the config file's, else the system's CAs]",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="also start a local server on --port, with its history in --db (stopped on exit)"
        " [off]",
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("trio_chat.db"),
        help="with --serve: the server's history file; its log goes beside it [trio_chat.db]",
    )
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="start even if the server cannot be reached now (the prompt retries) [off: check]",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"where the rooms and conversations of each session are kept between runs"
        f" [{default_state_path()}]",
    )
    parser.add_argument(
        "--no-state",
        action="store_true",
        help="do not restore or keep rooms and conversations, nor a device label, between runs"
        " [off]",
    )
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, not {port}")
    return port


def _name(text: str) -> str:
    try:
        return p.parse_name(text, "name", "name_invalid").spelling
    except p.ChatError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _room(text: str) -> str:
    try:
        return p.parse_name(text.lstrip("#"), "room", "room_invalid").spelling
    except p.ChatError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def apply_config(args: argparse.Namespace) -> cfg.ClientSettings:
    """Fill the flags not given from the config file (written first if it is the default and
    missing); keeps the settings and the file in `args.settings` / `args.config_path`."""
    path = args.config or cfg.default_config_path()
    settings = cfg.load(path, create=args.config is None)
    for flag, value in (
        ("host", settings.host),
        ("port", settings.port),
        ("name", settings.name),
        ("cafile", settings.cafile),
        ("tls", settings.tls),
        ("room", list(settings.rooms) or None),
    ):
        if getattr(args, flag) is None:
            setattr(args, flag, value)
    args.settings, args.config_path = settings, path if path.is_file() else None
    return settings


def make_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context the flags ask for, or None for plain TCP; raises OSError/SSLError."""
    if not args.tls and args.cafile is None:
        return None
    if args.cafile is not None and not args.cafile.is_file():
        raise FileNotFoundError(f"--cafile {args.cafile}: no such file")
    return ssl.create_default_context(cafile=args.cafile)


async def probe(host: str, port: int, context: ssl.SSLContext | None) -> None:
    """Open and close one connection (a TLS handshake too), so a bad address fails here."""
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=host if context else None),
        10,
    )
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        apply_config(args)
    except cfg.ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if args.port == 0 and not args.serve:
        parser.error("a port is 1 to 65535 (0, a free port, only with --serve)")
    if not args.serve:
        return run(args)
    from textual_client.local_server import LocalServer, LocalServerError

    log = args.db.with_suffix(".log")
    try:
        with LocalServer(args.port, args.db, log) as server, server.stopped_on_signals():
            print(f"{PROG}: started a server on 127.0.0.1:{server.port} (log: {log})")
            args.host, args.port = "127.0.0.1", server.port
            return run(args)
    except LocalServerError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    """Check the server can be reached, then run the app against it."""
    try:
        context = make_ssl_context(args)
    except (OSError, ssl.SSLError) as exc:
        print(f"{PROG}: TLS setup failed: {exc}", file=sys.stderr)
        return 2
    if not args.no_check:
        try:
            asyncio.run(probe(args.host, args.port, context))
        except ssl.SSLError as exc:
            print(f"{PROG}: TLS with {args.host}:{args.port} failed: {exc}", file=sys.stderr)
            return 1
        except (OSError, TimeoutError) as exc:
            from textual_client.connection import describe_error

            print(
                f"{PROG}: cannot connect to {args.host}:{args.port}: {describe_error(exc)}\n"
                f"(is a server running there? start one with: python -m trio_chat"
                f" --port {args.port})",
                file=sys.stderr,
            )
            return 1

    from textual_client.app import ChatApp  # Textual loads slowly: only once it is needed

    state_path = None if args.no_state else args.state or default_state_path()
    # the device label lives beside the state: in the config dir unless --state says otherwise
    device = device_label(state_path.with_name(DEVICE_FILE)) if state_path else None
    app = ChatApp(
        args.host,
        args.port,
        user_name=args.name,
        rooms=args.room,
        ssl_context=context,
        state_path=state_path,
        device=device,
        settings=args.settings,
        config_path=args.config_path,
    )
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
