"""Transaction-scoped locks on names, for checks that span many rows (a
project's quota). PostgreSQL takes an advisory lock; SQLite already runs
one writer at a time, so a transaction that writes before it counts holds
the database until it commits."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock(session: AsyncSession, name: str) -> None:
    """Hold ``name`` until the session's transaction ends."""
    if session.bind.dialect.name != "postgresql":
        return
    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
