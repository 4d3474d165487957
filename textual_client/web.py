"""`trio-chat-web`: the Textual client in a browser (textual-serve), one client process per tab.

Needs the `web` extra: pip install 'trio-chat[web]'. The page loads nothing from the network:
textual-serve's page asks Google Fonts for Roboto Mono, which the package ships itself, so the
page is served from a copy of its template that loads the font from /static instead.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import re
import shlex
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual_client.__main__ import _port, _room

if TYPE_CHECKING:
    from aiohttp import web
    from textual_serve.server import Server

PROG = "trio-chat-web"
DEFAULT_SERVER = "127.0.0.1:7878"
TEMPLATE = "app_index.html"
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
# a stylesheet or script the page would fetch from another site
_EXTERNAL = re.compile(
    r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>"
    r"|<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>",
    re.IGNORECASE,
)
_LOCAL_FONTS = """<style>
      @font-face {
        font-family: "Roboto Mono";
        font-style: normal;
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf")
          format("truetype");
      }
      @font-face {
        font-family: "Roboto Mono";
        font-style: italic;
        src: url("{{ config.static.url }}fonts/RobotoMono-Italic-VariableFont_wght.ttf")
          format("truetype");
      }
    </style>
    <link rel="preload" as="font" type="font/ttf" crossorigin
      href="{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf" />"""


@dataclass(frozen=True)
class Address:
    """A chat server's host and port, as given to --server."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """HOST:PORT (an IPv6 host in brackets) with a host name or IP address; else an error."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}")
    port = _port(port_text)
    if port == 0:
        raise argparse.ArgumentTypeError("the chat server's port is 1 to 65535, not 0")
    if host.startswith("[") and host.endswith("]"):
        try:
            return Address(str(ipaddress.IPv6Address(host[1:-1])), port)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an IPv6 address: {host!r}") from None
    if not _HOSTNAME.fullmatch(host) or len(host) > 253:
        raise argparse.ArgumentTypeError(f"not a host name or IPv4 address: {host!r}")
    return Address(host, port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve the trio-chat terminal client to web browsers (textual-serve):"
        " each browser tab runs its own client process, connected to the chat server.",
        epilog="Needs the web extra: pip install 'trio-chat[web]'. The page loads nothing from"
        " the internet. Behind a reverse proxy (https), give --public-url.",
    )
    parser.add_argument(
        "--server",
        type=parse_address,
        default=parse_address(DEFAULT_SERVER),
        metavar="HOST:PORT",
        help=f"the chat server the clients connect to, from this machine [{DEFAULT_SERVER}]",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the web server listens on; 0.0.0.0 for every interface [127.0.0.1]",
    )
    parser.add_argument(
        "--port", type=_web_port, default=8000, help="port the web server listens on [8000]"
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the URL browsers reach this at, e.g. https://chat.example.org"
        " [http://, and the host the browser asked for]",
    )
    parser.add_argument(
        "--title", default="trio-chat", help="the page's title while it starts [trio-chat]"
    )
    parser.add_argument(
        "--room",
        action="append",
        type=_room,
        metavar="ROOM",
        help="a room each client joins; repeatable [lobby]",
    )
    parser.add_argument(
        "--tls", action="store_true", help="clients connect to the chat server with TLS [off]"
    )
    parser.add_argument(
        "--cafile",
        type=Path,
        help="CA certificate(s) the clients trust (implies --tls) [the system's CAs]",
    )
    return parser


def _web_port(text: str) -> int:
    port = _port(text)
    if port == 0:
        raise argparse.ArgumentTypeError("give the web server a port (browsers are told it)")
    return port


def client_argv(args: argparse.Namespace) -> list[str]:
    """The client each tab runs: no state file (tabs are different people), no startup check."""
    server: Address = args.server
    argv = [sys.executable, "-m", "textual_client", "--host", server.host]
    argv += ["--port", str(server.port), "--no-check", "--no-state"]
    if args.tls:
        argv.append("--tls")
    if args.cafile is not None:
        argv += ["--cafile", str(args.cafile.resolve())]
    for room in args.room or ():
        argv += ["--room", room]
    return argv


def client_command(args: argparse.Namespace) -> str:
    """The client as the shell command textual-serve runs: every word quoted, exec'd."""
    return "exec " + shlex.join(client_argv(args))


def offline_page(template: str) -> str:
    """textual-serve's page with external stylesheets and scripts dropped, fonts from /static."""
    page = _EXTERNAL.sub("", template)
    return page.replace("</head>", f"  {_LOCAL_FONTS}\n  </head>", 1)


def external_references(html: str, origin: str) -> list[str]:
    """The URLs a page refers to that are not on `origin` (an SVG namespace is not fetched)."""
    found = re.findall(r"""(?:[a-z]+:)?//[^\s"'<>)]+""", html)
    ours = (f"{origin}/", f"ws{origin.removeprefix('http')}/", "http://www.w3.org/2000/svg")
    return [url for url in found if not url.startswith(ours)]


def make_server(args: argparse.Namespace) -> Server:
    """The textual-serve server for the flags, serving the offline page."""
    import aiohttp_jinja2
    import jinja2
    from aiohttp import web
    from textual_serve.server import Server, to_int

    class ChatWebServer(Server):
        """textual-serve's server with an offline page and URLs from the request's Host."""

        def __init__(self) -> None:
            super().__init__(client_command(args), args.host, args.port, title=args.title)
            self.fixed_url: str | None = args.public_url.rstrip("/") if args.public_url else None
            self.page = offline_page((self.templates_path / TEMPLATE).read_text("utf-8"))
            self.sessions: set[asyncio.Task[Any]] = set()

        async def _make_app(self) -> web.Application:
            app = web.Application()
            aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({TEMPLATE: self.page}))
            app.add_routes(
                [
                    web.get("/", self.index, name="index"),
                    web.get("/ws", self.session, name="websocket"),
                    web.get("/download/{key}", self.handle_download, name="download"),
                    web.static("/static", self.statics_path, name="static"),
                ]
            )
            app.on_shutdown.append(self.on_shutdown)
            return app

        async def session(self, request: web.Request) -> web.StreamResponse:
            """One tab's websocket and client process, ended when the server stops."""
            task = asyncio.current_task()
            assert task is not None
            self.sessions.add(task)
            try:
                return await self.handle_websocket(request)
            finally:
                self.sessions.discard(task)

        async def on_shutdown(self, app: web.Application) -> None:
            # an open tab would hold the exit up until its websocket times out
            for task in self.sessions:
                task.cancel()

        async def index(self, request: web.Request) -> web.Response:
            """The page, its URLs the ones the browser used (unless --public-url)."""
            base = self.fixed_url or f"{request.scheme}://{request.host}"
            scheme, rest = base.split(":", 1)
            context: dict[str, Any] = {
                "font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": f"{'wss' if scheme == 'https' else 'ws'}:{rest}/ws",
                "config": {"static": {"url": f"{base}/static/"}},
                "application": {"name": self.title},
            }
            return aiohttp_jinja2.render_template(TEMPLATE, request, context)

        def serve(self, debug: bool = False) -> None:
            """Serve until SIGINT or SIGTERM; says where once it listens."""
            self.debug = debug
            self.initialize_logging()
            where = self.fixed_url or f"http://{_url_host(args.host)}:{args.port}"
            web.run_app(
                self._make_app(),
                host=args.host,
                port=args.port,
                shutdown_timeout=10,
                print=lambda *_: print(
                    f"{PROG}: listening on {where} (clients of {args.server})", file=sys.stderr
                ),
            )

    return ChatWebServer()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def warn_if_unreachable(server: Address) -> None:
    """A warning (not an error: it may start later) when the chat server cannot be reached."""
    try:
        socket.create_connection((server.host, server.port), timeout=3).close()
    except OSError as exc:
        print(f"{PROG}: warning: chat server {server} not reachable now: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.public_url is not None and not re.fullmatch(r"https?://[^\s/]+/?", args.public_url):
        parser.error(f"--public-url is http(s)://HOST[:PORT], not {args.public_url!r}")
    if args.cafile is not None and not args.cafile.is_file():
        parser.error(f"--cafile {args.cafile}: no such file")
    try:
        server = make_server(args)
    except ImportError as exc:
        print(f"{PROG}: needs the web extra ({exc}): pip install 'trio-chat[web]'", file=sys.stderr)
        return 2
    warn_if_unreachable(args.server)
    try:
        server.serve()
    except OSError as exc:
        print(f"{PROG}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
