"""Transactions for compiled statements, without an ORM session.

An ORM session costs about 0.3 ms of CPU to open, check a connection out
of SQLAlchemy's pool, commit and close on SQLite, forty times a compiled
statement (loom.db.fast). Code that runs only compiled statements opens a
``Tx`` instead: on SQLite it holds one of the database's own sqlite
connections (the same write gate as the engine's), on other databases it
wraps an ORM session, where the driver round trip dominates anyway.

A ``Tx`` runs compiled statements only (``fast.rows``, ``fast.run``...);
it has no ORM interface, so a function that needs one fails at once in
tests rather than using a second connection outside the transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loom.db import sqlite

# Idle sqlite connections kept for reuse: opening one (a thread and its
# pragmas) costs as much as a dozen statements.
IDLE_CONNECTIONS = 30


class Tx:
    """One transaction: ``driver`` on SQLite, ``session`` elsewhere."""

    __slots__ = ("dialect", "driver", "session")

    def __init__(self, dialect: Dialect, driver: sqlite.Connection | None = None,
                 session: AsyncSession | None = None) -> None:
        self.dialect = dialect
        self.driver = driver
        self.session = session


class SqlitePool:
    """The database's sqlite connections for ``Tx``."""

    def __init__(self, path: str, gate: sqlite.WriteGate) -> None:
        self.path = path
        self.gate = gate
        self._idle: list[sqlite.Connection] = []

    async def acquire(self) -> sqlite.Connection:
        if self._idle:
            return self._idle.pop()
        conn = await sqlite.connect(self.path, self.gate)
        for pragma in sqlite.PRAGMAS:
            await conn.execute(pragma)
        return conn

    async def release(self, conn: sqlite.Connection) -> None:
        if len(self._idle) < IDLE_CONNECTIONS:
            self._idle.append(conn)
        else:
            await conn.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


@asynccontextmanager
async def transaction(dialect: Dialect, pool: SqlitePool | None,
                      sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Tx]:
    """A ``Tx`` committed when the block ends, rolled back if it raises."""
    if pool is None:
        async with sessions.begin() as session:
            yield Tx(dialect, session=session)
        return
    conn = await pool.acquire()
    done = False
    try:
        yield Tx(dialect, driver=conn)
        await conn.commit()
        done = True
    finally:
        if done:
            await pool.release(conn)
        else:
            await _reset(pool, conn)


async def _reset(pool: SqlitePool, conn: sqlite.Connection) -> None:
    """Roll back and keep the connection; close it if even that fails."""
    try:
        await conn.rollback()
    except Exception:
        conn.stop()
        return
    await pool.release(conn)
