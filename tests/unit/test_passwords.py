"""Password hashing: what bcrypt alone gets wrong, and the event loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import statistics
import string
import time
from collections.abc import Awaitable, Callable

import bcrypt
import pytest

from loom.identity.passwords import DEFAULT_ROUNDS, generate_secret, hash_password, verify_password

ROUNDS = 4  # bcrypt's minimum: fast tests


async def test_hash_and_verify() -> None:
    hashed = await hash_password("correct horse", ROUNDS)
    assert hashed.startswith("$2b$04$")
    assert await verify_password("correct horse", hashed)
    assert not await verify_password("correct horsf", hashed)
    assert not await verify_password("", hashed)


async def test_hashes_are_salted() -> None:
    assert await hash_password("same", ROUNDS) != await hash_password("same", ROUNDS)


def test_the_default_cost_is_twelve() -> None:
    assert DEFAULT_ROUNDS == 12


async def test_long_passwords_count_in_full() -> None:
    """bcrypt alone reads 72 bytes: two 200-byte passwords differing only
    at the end would match (or be refused, by bcrypt 5)."""
    long = "a" * 199 + "b"
    hashed = await hash_password(long, ROUNDS)
    assert await verify_password(long, hashed)
    assert not await verify_password("a" * 200, hashed)
    assert not await verify_password("a" * 72, hashed)


@pytest.mark.parametrize(
    "password", ["pässwörd", "密码密码", "🔑" * 30, "\ud800 lone surrogate", "nul\0byte"]
)
async def test_any_unicode_password(password: str) -> None:
    hashed = await hash_password(password, ROUNDS)
    assert await verify_password(password, hashed)
    assert not await verify_password(password + " ", hashed)


async def test_a_hash_bcrypt_cannot_read_matches_nothing() -> None:
    assert not await verify_password("anything", "")
    assert not await verify_password("anything", "{SSHA}not-bcrypt")


async def timed(coro_factory: Callable[[], Awaitable[object]], runs: int = 7) -> float:
    """Median seconds of ``runs`` awaits of ``coro_factory()``."""
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        await coro_factory()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


async def test_no_hash_is_false_after_the_same_bcrypt_work() -> None:
    """An unknown user must cost what a wrong password costs. The bound is
    loose (a quarter) so a busy machine cannot make it flaky; skipping
    bcrypt would be a hundred times faster."""
    rounds = 6
    hashed = await hash_password("secret", rounds)
    assert not await verify_password("secret", None, rounds=rounds)
    real = await timed(lambda: verify_password("wrong", hashed))
    missing = await timed(lambda: verify_password("wrong", None, rounds=rounds))
    assert missing > real / 4


async def test_no_hash_costs_more_at_a_higher_cost() -> None:
    cheap = await timed(lambda: verify_password("x", None, rounds=4))
    dearer = await timed(lambda: verify_password("x", None, rounds=7))
    assert dearer > cheap * 2  # eight times the work


async def test_hashing_does_not_block_the_event_loop() -> None:
    ticks = 0
    hashing = True

    async def ticker() -> None:
        nonlocal ticks
        while hashing:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        hashed = await hash_password("slow", 9)  # ~35 ms of bcrypt
        assert await verify_password("slow", hashed)
    finally:
        hashing = False
        await task
    assert ticks >= 5


async def test_hashes_are_plain_bcrypt_of_the_prehash() -> None:
    """The stored format is a standard bcrypt hash, so other tools can check
    it given the documented pre-hash."""
    hashed = await hash_password("pw", ROUNDS)
    prehash = base64.b64encode(hashlib.sha256(b"pw").digest())
    assert bcrypt.checkpw(prehash, hashed.encode())


def test_generate_secret() -> None:
    secrets = {generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert len(secret) == 64
        assert set(secret) <= set(string.ascii_letters + string.digits + "-_")
