"""serve(): the listeners, the connection caps, and the orderly shutdown.

Each connection runs in its own task and contains its own failure: an error
in one session is logged with its peer and ends that connection alone.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import ssl
from collections import Counter
from dataclasses import dataclass, field

import trio

from . import logs, settings
from .accounts import PasswordHasher
from .config import Config
from .core.chat import Chat
from .doors.base import DoorSession
from .doors.json_lines import JsonSession
from .hub import Hub
from .metrics import Stats, serve_metrics
from .protocol import Bye, Name, encode
from .store import Draft, Store, Stored, StoreUnavailable

log = logging.getLogger(__name__)

_BUSY = "too many connections; try later"


def tls_context(config: Config) -> ssl.SSLContext | None:
    """TLS 1.2 or newer with the configured certificate, or None for plain TCP."""
    if config.certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.certfile, config.keyfile)
    return context


class Server:
    """The running server: its services, its listeners and every open connection."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.hub = Hub(
            known_rooms=store.rooms,
            last_id=store.last_id,
            max_batch=config.max_batch,
            presence_delay=config.presence_delay,
        )
        for account in store.accounts.values():
            self.hub.add_account(Name(account.name, account.key))
        self.chat = Chat(config, self.hub, store, PasswordHasher(n=config.scrypt_n))
        self.tls = tls_context(config)
        self.sessions: set[DoorSession] = set()
        self.per_ip: Counter[str] = Counter()
        self.connections = 0
        self.stats = Stats()

    def committed(self, batch: list[Stored]) -> None:
        """The store's writer committed a batch: count it, then fan it out."""
        self.stats.commit(batch, self.store.commit_seconds)
        self.hub.publish(batch)

    def failed(self, batch: list[Draft], error: StoreUnavailable) -> None:
        """A batch could not be committed: remember why (/healthz), then tell its senders."""
        self.stats.failed(error)
        self.hub.fail(batch, error)

    def reconfigure(self, new: Config) -> Config:
        """Apply the settings of `new` that can change while running (SIGHUP); log the rest.

        Connections accepted from now on get the new settings (timeouts, flood
        control, outbox bound); open ones keep those they started with, their
        flood bucket included. The caps and the log apply at once. A smaller
        queue_limit makes commit batches smaller at once; a larger one waits
        for a restart (a batch must fit in every open connection's outbox).
        """
        live, restart = settings.changes(self.config, new)
        self.config = applied = settings.reloaded(self.config, new)
        self.chat.config = applied
        if "queue_limit" in live:
            self.hub.max_batch = self.store.max_batch = min(self.hub.max_batch, applied.max_batch)
        if logs.configured() and ("log_level" in live or "log_format" in live):
            logs.configure(applied.log_level, applied.log_format)
        changed = ", ".join(f"{name} {old!r} -> {now!r}" for name, (old, now) in live.items())
        log.info(
            "settings reloaded: %s%s",
            changed or "nothing to change",
            f"; changed but kept until a restart: {', '.join(restart)}" if restart else "",
            extra={"event": "reload", "changed": sorted(live), "restart": restart},
        )
        return applied

    async def follow(self, reloads: trio.abc.ReceiveChannel[Config]) -> None:
        """Apply each new configuration as it comes (from SIGHUP)."""
        async for new in reloads:
            self.reconfigure(new)

    async def connection(self, stream: trio.SocketStream, *, door: _Door) -> None:
        """One connection, from accept to close, its errors kept to itself."""
        try:
            host, port = stream.socket.getpeername()[:2]
        except OSError:  # already gone
            await trio.aclose_forcefully(stream)
            return
        peer = f"{host}:{port}"
        config = self.config
        busy = (config.max_conns and self.connections >= config.max_conns) or (
            config.max_per_ip and self.per_ip[host] >= config.max_per_ip
        )
        if busy:
            await self._refuse(stream, peer, door.busy)
            return
        self.connections += 1
        self.per_ip[host] += 1
        try:
            await self._serve(stream, peer, door)
        except* Exception:
            log.exception("%s: connection failed", peer)
        finally:
            self.connections -= 1
            self.per_ip[host] -= 1
            if not self.per_ip[host]:
                del self.per_ip[host]

    async def _serve(self, stream: trio.SocketStream, peer: str, door: _Door) -> None:
        client: trio.abc.Stream = stream
        # one deadline for the TLS handshake and the hello together
        deadline = trio.current_time() + self.config.handshake_timeout
        if door.tls is not None:
            tls_stream = trio.SSLStream(stream, door.tls, server_side=True)
            with trio.move_on_at(deadline) as timer:
                try:
                    await tls_stream.do_handshake()
                except trio.BrokenResourceError as exc:
                    log.info("%s: TLS handshake failed: %s", peer, exc.__cause__ or exc)
                    self.stats.closes["tls_failed"] += 1
                    await trio.aclose_forcefully(stream)
                    return
            if timer.cancelled_caught:
                log.info("%s: TLS handshake timed out", peer)
                self.stats.closes["timeout"] += 1
                await trio.aclose_forcefully(stream)
                return
            client = tls_stream
        session = door.session(client, peer, self.chat, handshake_deadline=deadline)
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self.stats.closes[session.close_reason or "gone"] += 1

    async def _refuse(self, stream: trio.SocketStream, peer: str, busy: bytes) -> None:
        log.info("%s: refused, too many connections", peer)
        self.stats.closes["server_busy"] += 1
        with trio.move_on_after(1):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(busy)
        await trio.aclose_forcefully(stream)

    async def shut_down(self, conns: trio.Nursery) -> None:
        """Stop reading, commit what was accepted, say bye to everyone, give writers a moment."""
        for session in list(self.sessions):
            session.stop_reading()
        self.store.stop()
        await self.store.drain()
        self.hub.flush()
        bye = Bye("shutdown", "the server is shutting down")
        for session in list(self.sessions):
            session.close(bye, None)
        conns.cancel_scope.deadline = trio.current_time() + self.config.shutdown_grace


def _address(sockname: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Ports:
    """The ports listened on, by door (the real ones with port 0)."""

    json: list[int]
    irc: list[int]
    irc_tls: list[int]
    metrics: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Door:
    """One listening port: which session class speaks there, over TLS or not, and its log word."""

    port: int
    session: type[DoorSession]
    tls: ssl.SSLContext | None
    label: str
    busy: bytes  # what a connection past the caps is told, in the door's words


def _doors(config: Config, tls: ssl.SSLContext | None) -> list[_Door]:
    json_busy = encode(Bye("server_busy", _BUSY))
    irc_busy = f"ERROR :{_BUSY}\r\n".encode()
    doors = [_Door(config.port, JsonSession, tls, "listening on", json_busy)]
    if config.irc_port is None and config.irc_tls_port is None:
        return doors
    from .doors.irc import IrcSession  # the IRC door is loaded only when it is opened

    if config.irc_port is not None:
        doors.append(_Door(config.irc_port, IrcSession, None, "irc listening on", irc_busy))
    if config.irc_tls_port is not None and tls is not None:
        doors.append(_Door(config.irc_tls_port, IrcSession, tls, "irc tls listening on", irc_busy))
    return doors


async def serve(
    config: Config,
    *,
    shutdown: trio.Event | None = None,
    reloads: trio.abc.ReceiveChannel[Config] | None = None,
    task_status: trio.TaskStatus[Ports] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until `shutdown` is set, then stop in order (PROTOCOL.md guarantee 7).

    `task_status.started` gets the ports listened on. Accepting is trio's own
    `serve_listeners` (it retries when file descriptors run out); each
    connection runs in `conns`, so shutdown can first stop accepting, then
    commit and say bye to every connection still open. Each Config received
    from `reloads` (SIGHUP) is applied as far as it can be while running.
    """
    store = Store.open(config.db, max_batch=config.max_batch, max_pending=config.max_pending)
    try:
        server = Server(config, store)
        async with trio.open_nursery() as core:
            await core.start(store.run, server.committed, server.failed)
            await core.start(server.hub.run)
            await core.start(server.chat.moderation.watch)  # the admin command's bans
            opened = [
                (door, await trio.open_tcp_listeners(door.port, host=config.host))
                for door in _doors(config, server.tls)
            ]
            async with trio.open_nursery() as conns:
                async with trio.open_nursery() as acceptors:
                    found: dict[str, list[int]] = {}
                    for door, listeners in opened:
                        handler = functools.partial(server.connection, door=door)
                        acceptors.start_soon(
                            functools.partial(
                                trio.serve_listeners, handler, listeners, handler_nursery=conns
                            )
                        )
                        for listener in listeners:
                            sockname = listener.socket.getsockname()
                            found.setdefault(door.label, []).append(sockname[1])
                            log.info(
                                "%s %s",
                                door.label,
                                _address(sockname),
                                extra={"event": "listening"},
                            )
                    metrics: list[int] = []
                    if config.metrics_port is not None:
                        metrics = await core.start(
                            serve_metrics, server, config.metrics_host, config.metrics_port
                        )
                    if reloads is not None:
                        core.start_soon(server.follow, reloads)
                    task_status.started(
                        Ports(
                            found["listening on"],
                            found.get("irc listening on", []),
                            found.get("irc tls listening on", []),
                            metrics,
                        )
                    )
                    await (trio.Event() if shutdown is None else shutdown).wait()
                    log.info("shutting down")
                    acceptors.cancel_scope.cancel()
                for _, listeners in opened:
                    for listener in listeners:
                        await listener.aclose()
                await server.shut_down(conns)
            core.cancel_scope.cancel()
    finally:
        store.close()
    log.info("stopped")
