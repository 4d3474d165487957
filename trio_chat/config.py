"""The server's settings: PROTOCOL.md section 7's flags, and a few knobs tests turn.

The flags and the TOML file are described in settings.py, from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .accounts import OWASP_N


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 7878
    db: Path = Path("trio_chat.db")
    handshake_timeout: float = 10.0
    idle_timeout: float = 60.0
    flood_burst: int = 20
    flood_rate: float = 10.0  # frames per second; 0 turns flood control off
    queue_limit: int = 1000  # unsent frames per client before slow_consumer
    max_conns: int = 10000  # 0: no cap
    max_per_ip: int = 64  # 0: no cap
    certfile: Path | None = None
    keyfile: Path | None = None
    irc_port: int | None = None  # the IRC door (PROTOCOL.md section 12); None: off
    irc_tls_port: int | None = None  # the IRC door over TLS, with the same certificate
    irc_replay: int = 25  # messages replayed after JOIN to IRC clients without chathistory
    server_name: str = "trio-chat"  # how the server calls itself on IRC
    log_level: str = "info"  # debug, info, warning, error
    log_format: str = "text"  # text or json (one object per line)
    metrics_port: int | None = None  # Prometheus /metrics and /healthz; None: off
    metrics_host: str = "127.0.0.1"
    admin: tuple[str, ...] = ()  # server admins' account names (section 11); --admin repeatable
    # Not flags: bounds that follow from the above, and a cheaper hash for tests.
    send_timeout: float = 30.0  # a writer stuck this long on one send_all: the peer is gone
    max_pending: int = 8192  # messages waiting for a commit before readers are slowed
    scrypt_n: int = OWASP_N
    shutdown_grace: float = 5.0  # time given to the last writes at shutdown
    presence_delay: float = 0.02  # presence is gathered this long and fanned out per batch

    @property
    def max_batch(self) -> int:
        """Messages per commit: a batch for one room stays well below the outbox bound."""
        return max(1, min(1024, self.queue_limit // 4))
