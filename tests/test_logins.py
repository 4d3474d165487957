"""Failed-login limits: per address, per account, in bounded memory."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_chat.accounts import PasswordHasher
from trio_chat.logins import GuardStatistics, LoginGuard, client_key, refusal_message

pytestmark = pytest.mark.trio

CHEAP = 2**10  # the cost parameter N; the server uses OWASP's 2**17


class CountingHasher(PasswordHasher):
    """A cheap hasher that counts the passwords it checks."""

    def __init__(self) -> None:
        super().__init__(n=CHEAP)
        self.checks = 0

    async def verify(self, password: str, encoded: str, *, who: str = "") -> bool:
        self.checks += 1
        return await super().verify(password, encoded, who=who)


class Door:
    """What the session does with a hello for an account, reduced to its outcome."""

    def __init__(self, guard: LoginGuard, hasher: CountingHasher, hashes: dict[str, str]) -> None:
        self.guard, self.hasher, self.hashes = guard, hasher, hashes

    async def login(self, address: str, account: str, password: str) -> str | float:
        """'welcome', 'auth_failed', or the seconds to wait when refused."""
        wait = self.guard.check(address, account)
        if wait:
            return wait
        ok = await self.hasher.verify(password, self.hashes[account], who=address)
        (self.guard.succeeded if ok else self.guard.failed)(address, account)
        return "welcome" if ok else "auth_failed"


@pytest.fixture
async def door() -> Door:
    hasher = CountingHasher()
    hashes = {name: await hasher.hash(f"{name}'s password") for name in ("alice", "bob")}
    hasher.checks = 0
    return Door(LoginGuard(), hasher, hashes)


async def test_the_11th_failure_from_an_address_is_refused_without_hashing(
    door: Door, autojump_clock: trio.testing.MockClock
) -> None:
    for i in range(10):
        assert await door.login("198.51.100.7", "alice", f"guess {i}") == "auth_failed"
    assert door.hasher.checks == 10
    assert await door.login("198.51.100.7", "alice", "guess 10") == pytest.approx(6.0)
    assert await door.login("198.51.100.7", "bob", "bob's password") == pytest.approx(6.0)
    assert door.hasher.checks == 10  # refused at once, no hash
    assert refusal_message(6.0) == ("too many failed logins from your address; try again in 6 s")
    assert await door.login("198.51.100.8", "bob", "bob's password") == "welcome"


async def test_tokens_come_back_with_time_and_a_full_bucket_is_dropped(
    door: Door, autojump_clock: trio.testing.MockClock
) -> None:
    guard = door.guard
    for _ in range(10):
        assert await door.login("198.51.100.7", "bob", "nope") == "auth_failed"
    await trio.sleep(3)
    assert guard.check("198.51.100.7", "bob") == pytest.approx(3.0)
    await trio.sleep(3)
    assert await door.login("198.51.100.7", "bob", "nope") == "auth_failed"  # one token back
    assert guard.check("198.51.100.7", "bob") == pytest.approx(6.0)
    await trio.sleep(60)
    assert guard.statistics().addresses == 1
    assert await door.login("198.51.100.7", "bob", "bob's password") == "welcome"
    assert guard.statistics().addresses == 0  # full again: forgotten


async def test_successful_logins_spend_no_tokens(
    door: Door, autojump_clock: trio.testing.MockClock
) -> None:
    for _ in range(50):
        assert await door.login("192.0.2.1", "alice", "alice's password") == "welcome"
    assert door.guard.statistics().addresses == 0
    for _ in range(10):
        assert await door.login("192.0.2.1", "alice", "typo") == "auth_failed"
    assert await door.login("192.0.2.1", "alice", "alice's password") == pytest.approx(6.0)


async def test_hellos_sent_at_once_cannot_pass_the_limit_together(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """`check` reserves a try: 15 attempts in flight, the last 5 refused before any fails."""
    guard = LoginGuard()
    waits = [guard.check("198.51.100.7", "alice") for _ in range(15)]
    assert waits[:10] == [0.0] * 10 and all(w > 0 for w in waits[10:])
    guard.succeeded("198.51.100.7", "alice")  # one was right: its try comes back
    assert guard.check("198.51.100.7", "alice") == 0.0


async def test_one_ipv6_network_counts_as_one_address(
    autojump_clock: trio.testing.MockClock,
) -> None:
    guard = LoginGuard()
    for i in range(10):
        assert guard.check(f"2001:db8:0:7::{i + 1:x}") == 0.0
        guard.failed(f"2001:db8:0:7::{i + 1:x}")
    assert guard.check("2001:db8:0:7:ffff::1") > 0
    assert guard.check("2001:db8:0:8::1") == 0.0
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key(client_key("2001:db8::1")) == "2001:db8::/64"
    assert client_key("not an address") == "not an address"


async def test_a_distributed_guess_slows_its_addresses_not_the_real_user(
    door: Door, autojump_clock: trio.testing.MockClock
) -> None:
    guard = door.guard
    home, cafe = "192.0.2.10", "203.0.113.20"
    assert await door.login(home, "alice", "alice's password") == "welcome"  # before the attack
    attackers = [f"10.9.0.{i}" for i in range(1, 31)]
    for address in attackers:  # one guess each: no address is near its own limit
        assert await door.login(address, "alice", "123456") == "auth_failed"
    # past 20 failures: each attacking address gets one try per 30 s on alice
    assert await door.login(attackers[0], "alice", "password") == pytest.approx(30.0)
    checks = door.hasher.checks
    assert await door.login(attackers[0], "alice", "qwerty") == pytest.approx(30.0)
    assert door.hasher.checks == checks  # refused without hashing
    assert await door.login(attackers[0], "bob", "qwerty") == "auth_failed"  # only for alice
    # the real user: fresh addresses and home are never refused for alice's count
    assert await door.login(home, "alice", "alice's passwrod") == "auth_failed"
    assert await door.login(home, "alice", "alice's password") == "welcome"
    assert await door.login("198.51.100.99", "alice", "alice's password") == "welcome"
    # from a café, a typo during the attack costs a 30 s wait, not a lock-out
    assert await door.login(cafe, "alice", "alice's pasword") == "auth_failed"
    assert await door.login(cafe, "alice", "alice's password") == pytest.approx(30.0)
    await trio.sleep(30)
    assert await door.login(cafe, "alice", "alice's password") == "welcome"
    # the attack goes on, one guess per address per 30 s
    for address in attackers:
        assert await door.login(address, "alice", "letmein") == "auth_failed"
        assert await door.login(address, "alice", "dragon") == pytest.approx(30.0)
    await trio.sleep(30)
    assert await door.login(attackers[1], "alice", "monkey") == "auth_failed"
    # ten minutes after its last failure on alice, an address is paced no more
    await trio.sleep(601)
    assert all(guard.check(address, "alice") == 0.0 for address in attackers)


async def test_a_guess_campaign_cannot_keep_alice_locked_for_long(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Thousands of failures cap the account's level: calm 10 minutes after the last one."""
    guard = LoginGuard()
    for i in range(5000):
        address = f"10.{i // 250}.{i % 250}.1"
        assert guard.check(address, "alice") == 0.0
        guard.failed(address, "alice")
    assert guard.check("10.0.0.1", "alice") > 0
    await trio.sleep(599)
    assert guard.check("10.0.0.1", "alice") == 0.0  # its 30 s are long over
    guard.failed("10.0.0.1", "alice")
    assert guard.check("10.0.0.1", "alice") > 0  # the level is still at the threshold
    await trio.sleep(601)
    assert guard.check("10.0.0.1", "alice") == 0.0
    guard.failed("10.0.0.1", "alice")
    assert guard.check("10.0.0.1", "alice") == 0.0


async def test_memory_stays_capped_with_200000_addresses(
    autojump_clock: trio.testing.MockClock,
) -> None:
    guard = LoginGuard()  # at most 100,000 entries a table
    for i in range(200_000):
        address = f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"
        assert guard.check(address) == 0.0
        guard.failed(address)
    assert guard.statistics().addresses == 100_000
    # the newest are kept: the last address still has its failure counted
    assert guard._addresses.get("10.3.13.63", trio.current_time()) is not None
    assert guard._addresses.get("10.0.0.0", trio.current_time()) is None
    await trio.sleep(60)  # every bucket is full again
    guard.check("192.0.2.1")
    assert guard.statistics().addresses == 1


async def test_every_table_is_capped_and_expires(autojump_clock: trio.testing.MockClock) -> None:
    guard = LoginGuard(max_entries=1000)
    for i in range(3000):
        address = f"10.0.{i >> 8}.{i & 255}"
        assert guard.check(address, f"user{i % 1500}") == 0.0
        guard.failed(address, f"user{i % 1500}")
        guard.succeeded(f"172.16.{i >> 8}.{i & 255}", f"name{i}")
    assert guard.statistics() == GuardStatistics(1000, 1000, 1000, 1000)
    await trio.sleep(20 * 60)  # every failure, bucket and level has run out
    guard.failed("192.0.2.1", "alice")
    guard.check("192.0.2.2")
    assert guard.statistics() == GuardStatistics(1, 1, 1, 1000)  # trust lasts 30 days
    await trio.sleep(30 * 24 * 3600)
    guard.succeeded("192.0.2.3", "alice")
    assert guard.statistics().trusted == 1
