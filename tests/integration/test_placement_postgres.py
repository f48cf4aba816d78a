"""Placement's claims on a real PostgreSQL: concurrent claims queue on the
provider rows and never overcommit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from loom import placement
from loom.db import migrate
from loom.db.engine import Database
from loom.placement import providers, usages


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Database]:
    """A fresh, migrated database, dropped afterwards."""
    name = f"loom_t_{uuid.uuid4().hex[:10]}"
    admin = Database(postgres_url)
    async with admin.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {name}"))
    db = Database(make_url(postgres_url).set(database=name).render_as_string(hide_password=False))
    try:
        await migrate.upgrade(db)
        yield db
    finally:
        await db.close()
        async with admin.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            await conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        await admin.close()


async def test_50_concurrent_claims_never_overcommit(pg: Database) -> None:
    rp_uuid = str(uuid.uuid4())
    await placement.ensure_provider(pg, rp_uuid, "pg-host")
    await placement.set_inventory(pg, rp_uuid, {"VCPU": {"total": 20}, "MEMORY_MB": {"total": 20 * 1024}})

    async def one() -> bool:
        try:
            await placement.claim(pg, str(uuid.uuid4()), {rp_uuid: {"VCPU": 1, "MEMORY_MB": 1024}}, "p", "u", None)
        except placement.InsufficientCapacity:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(50)))
    assert sum(results) == 20
    async with pg.session() as session:
        rp = await providers.get(session, rp_uuid)
        assert await usages.of_provider(session, rp) == {"MEMORY_MB": 20 * 1024, "VCPU": 20}
        assert rp.generation == 1 + 20


async def test_concurrent_claims_across_two_providers_and_inventory_updates(pg: Database) -> None:
    hosts = [str(uuid.uuid4()) for _ in range(2)]
    for i, h in enumerate(hosts):
        await placement.ensure_provider(pg, h, f"pg-host-{i}")
        await placement.set_inventory(pg, h, {"VCPU": {"total": 10}})

    async def claim_both() -> bool:
        try:
            await placement.claim(pg, str(uuid.uuid4()), {h: {"VCPU": 1} for h in reversed(hosts)}, "p", "u", None)
        except placement.InsufficientCapacity:
            return False
        return True

    async def report() -> None:
        # A host re-reporting an unchanged inventory races the claims harmlessly.
        await placement.set_inventory(pg, hosts[0], {"VCPU": {"total": 10}})

    results = await asyncio.gather(*(claim_both() for _ in range(30)), *(report() for _ in range(5)))
    assert sum(r for r in results if r is not None) == 10
    async with pg.session() as session:
        for h in hosts:
            assert await usages.of_provider(session, await providers.get(session, h)) == {"VCPU": 10}


async def test_migrations_agree_on_postgres(pg: Database) -> None:
    from tests.functional.test_migrations import schema_diff

    assert await schema_diff(pg) == []
