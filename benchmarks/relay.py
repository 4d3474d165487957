"""A bare trio relay: every line a client sends goes to every client, verbatim.

It is the ceiling for the chat server: the same sockets and per-read fan-out, but no
parsing, no validation and no store. Run: ``python -m benchmarks.relay --port 0``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from functools import partial

import trio

log = logging.getLogger("benchmarks.relay")

GREETING = b'{"type":"relay"}\n'
"""Sent to each client once it is registered, so a client knows it will see every line."""


class Peer:
    """One client: the blobs waiting for its writer task and the event that wakes it."""

    __slots__ = ("pending", "stream", "wake")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.pending: list[bytes] = [GREETING]
        self.wake = trio.Event()
        self.wake.set()

    def push(self, blob: bytes) -> None:
        """Queue one blob of whole lines and wake the writer."""
        self.pending.append(blob)
        self.wake.set()


async def _writer(peer: Peer) -> None:
    """Send everything queued for `peer` in one `send_all` per wake-up."""
    while True:
        await peer.wake.wait()
        peer.wake = trio.Event()
        data = b"".join(peer.pending)
        peer.pending.clear()
        await peer.stream.send_all(data)


async def _reader(peer: Peer, peers: set[Peer]) -> None:
    """Cut what `peer` sends at the last LF and hand the whole lines to every peer."""
    rest = b""
    async for chunk in peer.stream:
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        if cut:
            blob, rest = data[:cut], data[cut:]
            for other in peers:
                other.push(blob)
        else:
            rest = data


async def handle(stream: trio.SocketStream, peers: set[Peer]) -> None:
    """Serve one connection until either direction fails; errors stay in this client."""
    peer = Peer(stream)
    peers.add(peer)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_writer, peer)
            await _reader(peer, peers)
            nursery.cancel_scope.cancel()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        peers.discard(peer)
        await trio.aclose_forcefully(stream)


async def serve(host: str, port: int) -> None:
    """Listen on host:port, log the real address, and relay until cancelled."""
    peers: set[Peer] = set()

    async def handler(stream: trio.SocketStream) -> None:
        await handle(stream, peers)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, port, host=host))
        sockname = listeners[0].socket.getsockname()
        log.info("listening on %s:%d", sockname[0], sockname[1])


def main(argv: list[str] | None = None) -> None:
    """Command line entry point: parse flags, run the relay until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7879)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve, args.host, args.port)


if __name__ == "__main__":
    main()
