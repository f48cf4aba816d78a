"""The same migrations on a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from loom.db import migrate, services
from loom.db.engine import Database
from tests.functional.test_migrations import schema_diff


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Database]:
    """A fresh database per test, dropped afterwards."""
    name = f"loom_t_{uuid.uuid4().hex[:10]}"
    admin = Database(postgres_url)
    async with admin.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    try:
        yield db
    finally:
        await db.close()
        async with admin.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            await conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        await admin.close()


async def test_migrations_on_postgres(pg: Database) -> None:
    await migrate.upgrade(pg)
    assert await migrate.current_revision(pg) == migrate.head_revision()
    assert await schema_diff(pg) == []
    await migrate.downgrade(pg, "base")
    assert await migrate.current_revision(pg) is None
    await migrate.upgrade(pg)
    assert await schema_diff(pg) == []


async def test_concurrent_first_reports_make_one_row(pg: Database) -> None:
    import asyncio

    await migrate.upgrade(pg)
    await asyncio.gather(*(services.report(pg, "h1", "loom-compute", "compute") for _ in range(10)))
    rows = await services.list_services(pg)
    assert len(rows) == 1 and rows[0].report_count == 10
