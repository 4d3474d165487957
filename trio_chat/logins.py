"""Failed-login limits per client address and per account, in bounded memory.

The door asks `LoginGuard.check` before it hashes a password and reports the
outcome with `failed` or `succeeded`:

    address = client_key(host)           # the host, never "host:port"
    wait = guard.check(address, account.key)
    if wait:
        raise ProtocolError("auth_failed", refusal_message(wait), rid)
    ok = await hasher.verify(password, account.hash, who=address)
    (guard.succeeded if ok else guard.failed)(address, account.key)

Per address: a token bucket of `burst` failed logins, refilled at `rate` per
second. `check` reserves a token (so many hellos sent at once cannot all slip past
it) and `succeeded` gives it back, so only failures spend tokens; an attempt
never reported (the connection dropped mid-hash) counts as failed.

Per account: failures fill the account's leaky bucket, which drains
`account_threshold` per `account_window`. While it holds `account_threshold`
(a guess campaign, maybe from many addresses), an address that failed on that
account within the window gets one try on it per `account_pace` seconds. An
address with no recent failure on the account, or one that logged in to it
within `trust_for`, is never refused because of the account, so an attacker
cannot lock the real user out.

Every table drops an entry once it holds nothing (a full bucket, a drained
account, an old failure) and keeps at most `max_entries`, dropping the least
recently used first; forgetting only ever lets a client try sooner.
"""

from __future__ import annotations

import math
import socket
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DAY = 24 * 60 * 60.0
_V4_MAPPED = bytes(10) + b"\xff\xff"


def client_key(host: str) -> str:
    """The address limits apply to: an IPv4 address, or an IPv6 address's /64 network.

    One IPv6 subscriber usually gets a whole /64, so its addresses count as one.
    A string that is not an IP address (a test's name, an already keyed /64) is kept.
    """
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, host))
    except OSError:
        pass
    try:  # without a zone: fe80::1%eth0
        packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    except OSError:
        return host
    if packed.startswith(_V4_MAPPED):
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed[:8] + bytes(8)) + "/64"


def refusal_message(wait: float) -> str:
    """What the door says when `check` refuses for `wait` seconds."""
    return f"too many failed logins from your address; try again in {math.ceil(wait)} s"


@dataclass(frozen=True)
class GuardStatistics:
    """How many entries each table holds."""

    addresses: int
    accounts: int
    pairs: int
    trusted: int


class _Table(Generic[K, V]):
    """A dict of at most `cap` entries, least recently written first; expired ones go."""

    def __init__(self, cap: int, expired: Callable[[V, float], bool]) -> None:
        self.cap = cap
        self.expired = expired
        self.items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self.items)

    def get(self, key: K, now: float) -> V | None:
        value = self.items.get(key)
        if value is not None and self.expired(value, now):
            del self.items[key]
            return None
        return value

    def put(self, key: K, value: V, now: float) -> None:
        """Store `value` as the newest entry, dropping expired and then the oldest ones."""
        items = self.items
        items[key] = value
        items.move_to_end(key)
        while items:  # each entry is dropped once: O(1) amortised
            oldest = next(iter(items.values()))
            if not (self.expired(oldest, now) or len(items) > self.cap):
                break
            items.popitem(last=False)

    def pop(self, key: K) -> None:
        self.items.pop(key, None)


class _Bucket:
    """Tokens at `stamp`; they grow at the guard's rate up to its burst."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens, self.stamp = tokens, stamp


class _Pair:
    """One address's recent failure on one account, and when it may try that account again."""

    __slots__ = ("failed_at", "next_try")

    def __init__(self, failed_at: float, next_try: float) -> None:
        self.failed_at, self.next_try = failed_at, next_try


class LoginGuard:
    """Refuses password checks for addresses (and address, account pairs) failing too often.

    Defaults: 10 failures at once, then one per 6 s per address (10 a minute, so a
    user who mistypes a few times never waits, and spraying from one address costs
    at most one hash per 6 s). An account with 20 failures faster than 20 per 10
    minutes is under attack (20 is far past any user's typos; it stays so for at
    most 10 minutes after the guessing stops); then each address that failed on
    it gets one try per 30 s there, while its own address and fresh ones are
    never refused. Logins trust an address for that account for 30 days.
    """

    def __init__(
        self,
        *,
        burst: int = 10,
        rate: float = 1 / 6,
        account_threshold: int = 20,
        account_window: float = 600.0,
        account_pace: float = 30.0,
        trust_for: float = 30 * DAY,
        max_entries: int = 100_000,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if burst < 1 or rate <= 0 or account_threshold < 1 or account_window <= 0:
            raise ValueError("burst, rate, account_threshold, account_window must be positive")
        self.burst, self.rate = float(burst), rate
        self.threshold = float(account_threshold)
        self.window, self.pace, self.trust_for = account_window, account_pace, trust_for
        self.leak = account_threshold / account_window  # per second
        self.clock = clock
        self.failures = 0  # wrong passwords so far (metrics)
        self.refusals = 0  # checks refused for too many failures so far (metrics)
        # an address's failure tokens, dropped when full again
        self._addresses: _Table[str, _Bucket] = _Table(
            max_entries, lambda b, now: self._tokens(b, now) >= self.burst
        )
        # an account's failure level, dropped when drained; capped at twice the threshold
        # so an attack ends at most `account_window` after the last failure
        self._accounts: _Table[str, _Bucket] = _Table(
            max_entries, lambda b, now: self._level(b, now) <= 0
        )
        self._pairs: _Table[tuple[str, str], _Pair] = _Table(
            max_entries, lambda p, now: p.failed_at + self.window <= now and p.next_try <= now
        )
        # (account, address) -> until when a login there makes the pair trusted;
        # apart from failures, so a flood of failures cannot evict trust
        self._trusted: _Table[tuple[str, str], float] = _Table(
            max_entries, lambda until, now: until <= now
        )

    def statistics(self) -> GuardStatistics:
        return GuardStatistics(
            len(self._addresses), len(self._accounts), len(self._pairs), len(self._trusted)
        )

    def check(self, address: str, account: str | None = None) -> float:
        """0.0: go ahead (a try is reserved); else refuse, and the seconds to wait.

        `address` is the client's host (see `client_key`); `account` the account's
        key, or None when there is no account (only the address limit applies).
        """
        now = self.clock()
        address = client_key(address)
        bucket = self._addresses.get(address, now)
        tokens = self.burst if bucket is None else self._tokens(bucket, now)
        if tokens < 1:
            self.refusals += 1
            return (1 - tokens) / self.rate
        pair = None if account is None else self._paced(account, address, now)
        if pair is not None:
            if now < pair.next_try:
                self.refusals += 1
                return pair.next_try - now
            pair.next_try = now + self.pace  # this try is the one for this pace
        self._addresses.put(address, _Bucket(tokens - 1, now), now)
        return 0.0

    def failed(self, address: str, account: str | None = None) -> None:
        """The password was wrong: the reserved token stays spent; the account counts it."""
        self.failures += 1
        if account is None:
            return
        now = self.clock()
        address = client_key(address)
        level = self._accounts.get(account, now)
        filled = 1.0 if level is None else min(2 * self.threshold, self._level(level, now) + 1)
        self._accounts.put(account, _Bucket(filled, now), now)
        self._pairs.put((account, address), _Pair(now, now + self.pace), now)

    def succeeded(self, address: str, account: str | None = None) -> None:
        """The password was right: the reserved token comes back; the address is trusted."""
        now = self.clock()
        address = client_key(address)
        bucket = self._addresses.get(address, now)
        if bucket is not None:
            tokens = self._tokens(bucket, now) + 1
            if tokens >= self.burst:
                self._addresses.pop(address)
            else:
                bucket.tokens, bucket.stamp = tokens, now
        if account is not None:
            self._pairs.pop((account, address))
            self._trusted.put((account, address), now + self.trust_for, now)

    def _paced(self, account: str, address: str, now: float) -> _Pair | None:
        """The pair's record when the account is under attack and the pair is suspect."""
        level = self._accounts.get(account, now)
        if level is None or self._level(level, now) < self.threshold:
            return None
        pair = self._pairs.get((account, address), now)
        if pair is None or now - pair.failed_at >= self.window:
            return None
        if self._trusted.get((account, address), now) is not None:
            return None
        return pair

    def _tokens(self, bucket: _Bucket, now: float) -> float:
        return min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)

    def _level(self, level: _Bucket, now: float) -> float:
        return level.tokens - (now - level.stamp) * self.leak
