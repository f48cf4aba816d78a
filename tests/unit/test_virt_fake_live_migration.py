"""The fake hypervisor's live migration over time: progress reports, an
abort that leaves the guest where it was, a forced completion, an
injected failure."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from loom.virt.driver import DriverError, InstanceInvalidState, InstanceSpec, LiveMigrationAborted, MigrationProgress
from loom.virt.fake import FakeDriver

MIB = 1 << 20


@pytest.fixture
async def pair() -> AsyncIterator[tuple[FakeDriver, FakeDriver, InstanceSpec]]:
    """A source with one running guest, and a prepared destination."""
    source, dest = FakeDriver(live_migration_time=5.0), FakeDriver()
    await source.init_host(f"src-{uuid.uuid4().hex[:8]}")
    await dest.init_host(f"dst-{uuid.uuid4().hex[:8]}")
    spec = InstanceSpec(uuid=str(uuid.uuid4()), name="vm", hostname="vm", vcpus=1, memory_mb=256, root_gb=2)
    await source.spawn(spec)
    await dest.pre_live_migration(spec)
    yield source, dest, spec
    await source.cleanup()
    await dest.cleanup()


async def _start(source: FakeDriver, dest: FakeDriver, spec: InstanceSpec,
                 data: dict[str, Any] | None = None) -> tuple[asyncio.Task[None], list[MigrationProgress]]:
    reports: list[MigrationProgress] = []

    async def report(p: MigrationProgress) -> None:
        reports.append(p)

    task = asyncio.create_task(source.live_migration(spec.uuid, dest.host or "", data or {}, report))
    while len(reports) < 2:
        await asyncio.sleep(0.01)
    return task, reports


async def test_progress_then_abort_leaves_the_guest_on_the_source(
        pair: tuple[FakeDriver, FakeDriver, InstanceSpec]) -> None:
    source, dest, spec = pair
    task, reports = await _start(source, dest, spec, {"block_migration": True})
    assert reports[0].memory_total == 256 * MIB and reports[0].disk_total == 2 << 30
    assert reports[-1].memory_processed >= reports[0].memory_processed
    assert all(r.memory_processed + r.memory_remaining == r.memory_total for r in reports)
    await source.live_migration_abort(spec.uuid)
    with pytest.raises(LiveMigrationAborted):
        await task
    assert await source.list_instances() == [spec.uuid] and await dest.list_instances() == []
    await dest.rollback_live_migration_at_destination(spec.uuid)
    assert (await dest.host_resources()).memory_mb_used == 0
    with pytest.raises(InstanceInvalidState, match="no live migration"):
        await source.live_migration_abort(spec.uuid)


async def test_force_complete_finishes_at_once(pair: tuple[FakeDriver, FakeDriver, InstanceSpec]) -> None:
    source, dest, spec = pair
    task, reports = await _start(source, dest, spec)
    await source.live_migration_force_complete(spec.uuid)
    await asyncio.wait_for(task, 1.0)  # well within the 5 s the copy would take
    assert reports[-1].memory_remaining == 0
    assert await source.list_instances() == [] and await dest.list_instances() == [spec.uuid]


async def test_an_injected_failure_leaves_the_guest_on_the_source(
        pair: tuple[FakeDriver, FakeDriver, InstanceSpec]) -> None:
    source, dest, spec = pair
    source.live_migration_time = 0
    source.fail_operations.add("live_migration")
    with pytest.raises(DriverError, match="injected failure"):
        await source.live_migration(spec.uuid, dest.host or "", {})
    assert await source.list_instances() == [spec.uuid] and await dest.list_instances() == []
