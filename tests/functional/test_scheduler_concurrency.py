"""Concurrent schedulers never overcommit a host: placement's claim is the
only arbiter. Two schedulers, each with its own database engine as two
processes would have, serve requests over the bus at the same time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from loom.bus.rpc import Bus, RPCServer
from loom.config import Settings
from loom.context import RequestContext
from loom.db.engine import Database
from loom.db.models import PlacementAllocation, ProviderInventory, ResourceProvider
from loom.scheduler.errors import NoValidHost
from loom.scheduler.manager import SchedulerManager
from loom.scheduler.request import FlavorSpec, RequestSpec, Selection
from loom.scheduler.rpcapi import TOPIC, SchedulerAPI
from tests.functional.test_scheduler_select import add_host, make_context

TINY = FlavorSpec("1", "m1.tiny", 1, 512, 1)


def spec() -> RequestSpec:
    return RequestSpec(project_id="p1", user_id="u1", flavor=TINY)


@pytest.fixture
async def schedulers(settings: Settings, db: Database, bus: Bus) -> AsyncIterator[list[RPCServer]]:
    second_db = Database(settings.database_url)
    servers = [bus.server(TOPIC, name, SchedulerManager(name, database, host_subset_size=subset))
               for name, database, subset in (("sched1", db, 1), ("sched2", second_db, 3))]
    for server in servers:
        await server.start()
    yield servers
    for server in servers:
        await server.stop_consuming()
    await second_db.close()


async def overcommitted(db: Database) -> list[tuple[str, str, int, float]]:
    """(host, class, used, capacity) wherever usage exceeds capacity."""
    used = (select(PlacementAllocation.provider_id, PlacementAllocation.resource_class,
                   func.sum(PlacementAllocation.used).label("used"))
            .group_by(PlacementAllocation.provider_id, PlacementAllocation.resource_class).subquery())
    async with db.session() as session:
        rows = await session.execute(
            select(ResourceProvider.name, ProviderInventory.resource_class, used.c.used, ProviderInventory.total,
                   ProviderInventory.reserved, ProviderInventory.allocation_ratio)
            .join(ProviderInventory, ProviderInventory.provider_id == ResourceProvider.id)
            .join(used, (used.c.provider_id == ResourceProvider.id)
                  & (used.c.resource_class == ProviderInventory.resource_class)))
        return [(name, rc, n, (total - reserved) * ratio) for name, rc, n, total, reserved, ratio in rows
                if n > (total - reserved) * ratio]


async def consumers_per_host(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.execute(
            select(ResourceProvider.name, func.count(func.distinct(PlacementAllocation.consumer_uuid)))
            .join(PlacementAllocation, PlacementAllocation.provider_id == ResourceProvider.id)
            .group_by(ResourceProvider.name))
        return {name: n for name, n in rows}


async def test_two_schedulers_never_overcommit(db: Database, bus: Bus, schedulers: list[RPCServer]) -> None:
    # Ten hosts with room for two tiny instances each: 20 places, 40 requests.
    for i in range(10):
        await add_host(db, f"cmp{i}", vcpus=2, memory_mb=1024, disk_gb=2)
    api = SchedulerAPI(bus)
    results = await asyncio.gather(*(api.select_destinations(RequestContext(), spec(), [str(uuid.uuid4())])
                                     for _ in range(40)), return_exceptions=True)
    placed = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, NoValidHost)]
    assert (len(placed), len(refused)) == (20, 20), [r for r in results if isinstance(r, BaseException)
                                                     and not isinstance(r, NoValidHost)]
    assert all(server.handled > 0 for server in schedulers)
    assert await overcommitted(db) == []
    assert await consumers_per_host(db) == {f"cmp{i}": 2 for i in range(10)}
    chosen: list[Selection] = [found[0][0] for found in placed]
    assert sorted(c.host for c in chosen) == sorted(f"cmp{i}" for i in range(10) for _ in range(2))


async def test_200_concurrent_requests_fill_10_hosts_exactly(db: Database, bus: Bus,
                                                              schedulers: list[RPCServer]) -> None:
    # Room for 15 tiny instances per host: 150 places for 200 requests.
    for i in range(10):
        await add_host(db, f"cmp{i}", vcpus=15, memory_mb=15 * 512, disk_gb=100)
    api = SchedulerAPI(bus)
    results = await asyncio.gather(*(api.select_destinations(RequestContext(), spec(), [str(uuid.uuid4())])
                                     for _ in range(200)), return_exceptions=True)
    assert sum(isinstance(r, list) for r in results) == 150
    assert sum(isinstance(r, NoValidHost) for r in results) == 50
    assert await overcommitted(db) == []
    assert await consumers_per_host(db) == {f"cmp{i}": 15 for i in range(10)}


async def test_one_request_of_200_instances(db: Database) -> None:
    for i in range(10):
        await add_host(db, f"cmp{i}", vcpus=20, memory_mb=20 * 512, disk_gb=20)
    from loom.scheduler.select import select_destinations

    uuids = [str(uuid.uuid4()) for _ in range(200)]
    found = await select_destinations(db, spec(), uuids, return_alternates=True, context=make_context(db))
    assert len(found) == 200
    assert await overcommitted(db) == []
    assert await consumers_per_host(db) == {f"cmp{i}": 20 for i in range(10)}
    # One more does not fit anywhere, and nothing of it stays claimed.
    with pytest.raises(NoValidHost):
        await select_destinations(db, spec(), [str(uuid.uuid4())], return_alternates=True,
                                  context=make_context(db))
    assert sum((await consumers_per_host(db)).values()) == 200
