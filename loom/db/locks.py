"""Transaction-scoped locks on names, for checks that span many rows (a
project's quota). PostgreSQL takes an advisory lock; SQLite already runs
one writer at a time, so a transaction that writes before it counts holds
the database until it commits.

``begin_write`` makes a SQLite transaction take that one writer's lock
before it reads, for read-check-write transactions that would otherwise
race (placement's generation checks); PostgreSQL gets the same from the
transaction's ``FOR UPDATE`` row locks."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from loom.db import sqlite
from loom.db.fast import Session
from loom.db.tx import Tx


async def lock(session: Session, name: str) -> None:
    """Hold ``name`` until the session's transaction ends."""
    if isinstance(session, Tx):
        if session.session is None:
            return  # SQLite
        session = session.session
    if session.bind.dialect.name != "postgresql":
        return
    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def begin_write(session: Session) -> None:
    """On SQLite, hold the database's write lock from now until the
    session's transaction ends; nothing on other databases."""
    if isinstance(session, Tx):
        if session.driver is not None:
            await session.driver.begin_write()
        return
    if session.bind.dialect.name != "sqlite":
        return
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if isinstance(driver, sqlite.Connection):
        await driver.begin_write()
