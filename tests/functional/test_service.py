"""The service runtime: registration, heartbeats, periodic tasks, stop."""

from __future__ import annotations

import asyncio
import time

from loom.bus.rpc import Bus, expose
from loom.conductor.manager import ConductorManager
from loom.conductor.rpcapi import ConductorServiceRegistry
from loom.config import Settings
from loom.context import RequestContext
from loom.db import services
from loom.db.engine import Database
from loom.db.registry import DbServiceRegistry
from loom.manager import Manager, periodic
from loom.service import Service
from tests.bus_contract import wait_for


class Worker(Manager):
    binary = "loom-worker"
    topic = "worker"

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.ticks: list[float] = []
        self.failures = 0
        self.release = asyncio.Event()
        self.finished: list[str] = []

    @periodic(0.02)
    async def tick(self) -> None:
        self.ticks.append(time.monotonic())

    @periodic(lambda self: 0.02)
    async def always_fails(self) -> None:
        self.failures += 1
        raise RuntimeError("periodic task failure")

    @expose
    async def work(self, ctx: RequestContext, name: str) -> str:
        await self.release.wait()
        self.finished.append(name)
        return name


def make_service(manager: Manager, bus: Bus, settings: Settings, db: Database) -> Service:
    return Service(manager, bus=bus, settings=settings.service, registry=DbServiceRegistry(db))


async def test_registers_and_heartbeats(settings: Settings, bus: Bus, db: Database) -> None:
    service = make_service(Worker("h1"), bus, settings, db)
    await service.start()
    try:
        row = await services.get_service(db, "h1", "loom-worker")
        assert row.topic == "worker" and services.is_up(row, settings.service.down_time)
        first = row.report_count
        await asyncio.sleep(0.3)
        row = await services.get_service(db, "h1", "loom-worker")
        assert row.report_count >= first + 2
    finally:
        await service.stop()
    await asyncio.sleep(settings.service.down_time + 0.1)
    row = await services.get_service(db, "h1", "loom-worker")
    assert not services.is_up(row, settings.service.down_time)


async def test_failing_periodic_task_does_not_kill_the_service(
    settings: Settings, bus: Bus, db: Database
) -> None:
    worker = Worker("h1")
    service = make_service(worker, bus, settings.replace(**{"service.periodic_jitter": 0.5}), db)
    await service.start()
    try:
        await wait_for(lambda: worker.failures >= 3 and len(worker.ticks) >= 5)
        worker.release.set()
        assert await bus.client("worker").call(None, "work", name="still serving") == "still serving"
    finally:
        await service.stop()
    gaps = [b - a for a, b in zip(worker.ticks, worker.ticks[1:], strict=False)]
    # With jitter the spacing varies from run to run.
    assert max(gaps) - min(gaps) > 0.002


async def test_stop_finishes_in_flight_work(settings: Settings, bus: Bus, db: Database) -> None:
    worker = Worker("h1")
    service = make_service(worker, bus, settings, db)
    await service.start()
    call = asyncio.create_task(bus.client("worker").call(None, "work", name="in flight"))
    await wait_for(lambda: service.rpc.inflight == 1)
    stopping = asyncio.create_task(service.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()
    worker.release.set()
    await asyncio.wait_for(stopping, 5)
    assert await call == "in flight"
    assert worker.finished == ["in flight"]


async def test_compute_heartbeats_through_the_conductor(
    settings: Settings, bus: Bus, db: Database
) -> None:
    conductor = make_service(ConductorManager("ctl", db, bus), bus, settings, db)
    await conductor.start()
    worker = Service(Worker("c1"), bus=bus, settings=settings.service,
                     registry=ConductorServiceRegistry(bus))
    await worker.start()
    try:
        row = await services.get_service(db, "c1", "loom-worker")
        assert services.is_up(row, settings.service.down_time)
    finally:
        await worker.stop()
        await conductor.stop()


async def test_waits_for_the_conductor_to_come_up(settings: Settings, bus: Bus, db: Database) -> None:
    worker = Service(Worker("c1"), bus=bus, settings=settings.service,
                     registry=ConductorServiceRegistry(bus))
    starting = asyncio.create_task(worker.start())
    await asyncio.sleep(0.3)
    assert not starting.done()
    conductor = make_service(ConductorManager("ctl", db, bus), bus, settings, db)
    await conductor.start()
    try:
        await asyncio.wait_for(starting, 10)
        await services.get_service(db, "c1", "loom-worker")
    finally:
        await worker.stop()
        await conductor.stop()


async def test_ping_reports_who_answers(settings: Settings, bus: Bus, db: Database) -> None:
    service = make_service(Worker("h7"), bus, settings, db)
    await service.start()
    try:
        info = await bus.client("worker").prepare(server="h7").call(None, "ping")
        assert info["host"] == "h7" and info["binary"] == "loom-worker" and info["uptime"] >= 0
    finally:
        await service.stop()
