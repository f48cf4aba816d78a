"""One database handle per URL: an async engine and its session factory."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from loom.db import sqlite, tx
from loom.errors import Invalid

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs too."""
    try:
        parsed = make_url(url)
    except Exception:
        raise Invalid(f"invalid database URL {url!r}") from None
    if parsed.drivername in _ASYNC_DRIVERS:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[parsed.drivername])
    if parsed.drivername not in _ASYNC_DRIVERS.values():
        raise Invalid(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")
    return parsed.render_as_string(hide_password=False)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = async_url(url)
        kwargs: dict[str, Any] = {"echo": echo}
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            path = make_url(self.url).database or ""
            if path in ("", ":memory:"):
                raise Invalid("an in-memory SQLite database cannot be shared between connections: give a file")
            gate = sqlite.WriteGate()
            kwargs["async_creator"] = partial(sqlite.connect, path, gate)
            self._pool: tx.SqlitePool | None = tx.SqlitePool(path, gate)
            # Connections beyond the pool's size are closed when given back,
            # and opening one (with its pragmas) costs as much as a dozen
            # statements: keep enough for the process's concurrent sessions.
            kwargs.update(pool_size=max(pool_size, 30), max_overflow=30)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)
            self._pool = None
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        await self.engine.dispose()

    def transaction(self) -> AbstractAsyncContextManager[tx.Tx]:
        """A transaction for compiled statements (loom.db.tx): cheaper than
        ``session.begin()`` on SQLite."""
        return tx.transaction(self.engine.dialect, self._pool, self.session)

    def new_session(self) -> AsyncSession:
        return self.session()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    for pragma in sqlite.PRAGMAS:
        cur.execute(pragma)
    cur.close()
