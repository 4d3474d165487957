"""Password hashing: salted scrypt in worker threads behind a small limiter."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_chat.accounts import PasswordHasher

pytestmark = pytest.mark.trio

CHEAP = 2**10  # the cost parameter N; the server uses OWASP's 2**17


async def test_hash_then_verify() -> None:
    hasher = PasswordHasher(n=CHEAP)
    encoded = await hasher.hash("correct horse")
    scheme, n, r, p, salt, digest = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(CHEAP), "8", "1")
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest)) == 32
    assert "correct horse" not in encoded
    assert await hasher.verify("correct horse", encoded)
    assert not await hasher.verify("correct horsE", encoded)


async def test_each_hash_has_its_own_salt() -> None:
    hasher = PasswordHasher(n=CHEAP)
    assert await hasher.hash("same") != await hasher.hash("same")


async def test_old_hashes_verify_with_their_own_parameters() -> None:
    encoded = await PasswordHasher(n=CHEAP).hash("kept")
    assert await PasswordHasher(n=2 * CHEAP).verify("kept", encoded)


@pytest.mark.parametrize(
    "encoded", ["", "plain", "md5$1$2$3$00$00", "scrypt$x$8$1$00$00", "scrypt$1024$8$1$zz$00"]
)
async def test_a_malformed_hash_never_verifies(encoded: str) -> None:
    assert not await PasswordHasher(n=CHEAP).verify("anything", encoded)


async def test_hashing_leaves_the_event_loop_free_and_runs_two_at_a_time() -> None:
    """While hashes run in worker threads, other tasks go on; a third waits for a slot."""
    hasher = PasswordHasher(n=2**14, concurrency=2)
    done: list[str] = []

    async def login(password: str) -> None:
        await hasher.hash(password)
        done.append(password)

    async with trio.open_nursery() as nursery:
        for password in ("one", "two", "three"):
            nursery.start_soon(login, password)
        await trio.testing.wait_all_tasks_blocked()
        assert done == []  # the hashes are running, yet this task runs
        stats = hasher._limiter.statistics()
        assert stats.borrowed_tokens == 2 and stats.tasks_waiting == 1
    assert sorted(done) == ["one", "three", "two"]
