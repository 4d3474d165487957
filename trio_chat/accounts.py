"""Account passwords: salted scrypt hashes, computed in worker threads behind a small limiter.

scrypt comes with Python (no new dependency) and at OWASP's cost (N=2**17, r=8,
p=1) one hash takes ~0.4 s and 128 MiB, so at most `concurrency` run at once:
a burst of logins neither blocks the event loop nor exhausts memory.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import trio

OWASP_N = 2**17


class PasswordHasher:
    """Hashes and checks passwords off the event loop."""

    def __init__(self, n: int = OWASP_N, r: int = 8, p: int = 1, concurrency: int = 2) -> None:
        self.n, self.r, self.p = n, r, p
        self._limiter = trio.CapacityLimiter(concurrency)

    async def hash(self, password: str) -> str:
        salt = os.urandom(16)
        digest = await trio.to_thread.run_sync(
            _scrypt, password, salt, self.n, self.r, self.p, limiter=self._limiter
        )
        return f"scrypt${self.n}${self.r}${self.p}${salt.hex()}${digest.hex()}"

    async def verify(self, password: str, encoded: str) -> bool:
        """True when `password` matches; the comparison takes the same time either way."""
        try:
            scheme, n, r, p, salt, expected = encoded.split("$")
            params = int(n), int(r), int(p)
            salt_bytes, expected_bytes = bytes.fromhex(salt), bytes.fromhex(expected)
        except ValueError:
            return False
        if scheme != "scrypt":
            return False
        digest = await trio.to_thread.run_sync(
            _scrypt, password, salt_bytes, *params, limiter=self._limiter
        )
        return hmac.compare_digest(digest, expected_bytes)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    memory = 128 * n * r * p
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=2 * memory + 2**20, dklen=32
    )
