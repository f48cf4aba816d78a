"""What only the fake promises about cold migrations and resizes: the
kept source copy outlives the driver object (a restarted compute service
finds it), a move on one host keeps both copies apart, and every step's
failure can be injected where a hypervisor would fail."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loom.virt.driver import DriverError, InstanceSpec, InsufficientResources, PowerState
from loom.virt.fake import FakeDriver


def spec(memory_mb: int = 512, root_gb: int = 1, uuid_: str | None = None) -> InstanceSpec:
    u = uuid_ or str(uuid.uuid4())
    return InstanceSpec(uuid=u, name=f"instance-{u[:8]}", hostname="vm", vcpus=1, memory_mb=memory_mb,
                        root_gb=root_gb)


@pytest.fixture
async def hosts(tmp_path: Path) -> AsyncIterator[tuple[FakeDriver, FakeDriver]]:
    names = [f"fake-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    made = [FakeDriver(memory_mb=2048, disk_gb=50, state_path=tmp_path / n) for n in names]
    for driver, name in zip(made, names, strict=True):
        await driver.init_host(name)
    yield made[0], made[1]
    for driver in made:
        await driver.cleanup()


async def test_the_kept_copy_survives_a_restart(hosts: tuple[FakeDriver, FakeDriver], tmp_path: Path) -> None:
    source, dest = hosts
    old = spec()
    await source.spawn(old)
    disk_info = await source.migrate_disk_and_power_off(old.uuid, dest.host or "", spec(1024, uuid_=old.uuid))
    await dest.finish_migration(spec(1024, uuid_=old.uuid), disk_info, True)
    assert source.state_path is not None
    await source.cleanup()
    again = FakeDriver(memory_mb=2048, disk_gb=50, state_path=source.state_path)
    await again.init_host(source.host or "")
    try:
        assert await again.list_instances() == []
        assert (await again.host_resources()).memory_mb_used == 512  # still held
        await dest.destroy(old.uuid)
        await again.finish_revert_migration(old, True)
        assert (await again.get_info(old.uuid)).power_state == PowerState.RUNNING
    finally:
        await again.cleanup()


async def test_a_move_on_one_host_counts_both_copies(hosts: tuple[FakeDriver, FakeDriver]) -> None:
    host, _ = hosts
    old = spec(512)
    await host.spawn(old)
    bigger = spec(1024, uuid_=old.uuid)
    await host.prepare_migration(bigger)
    with pytest.raises(InsufficientResources):
        await host.prepare_migration(spec(1600, uuid_=old.uuid))
    disk_info = await host.migrate_disk_and_power_off(old.uuid, host.host or "", bigger)
    await host.finish_migration(bigger, disk_info, True)
    assert (await host.host_resources()).memory_mb_used == 1536
    await host.confirm_migration(old.uuid)
    assert (await host.host_resources()).memory_mb_used == 1024
    assert (await host.get_info(old.uuid)).memory_mb == 1024


@pytest.mark.parametrize("operation", ["prepare_migration", "migrate_disk_and_power_off", "finish_migration",
                                       "confirm_migration", "finish_revert_migration", "destroy"])
async def test_each_step_fails_when_told(hosts: tuple[FakeDriver, FakeDriver], operation: str) -> None:
    source, dest = hosts
    old = spec()
    new = spec(1024, uuid_=old.uuid)
    await source.spawn(old)
    for driver in hosts:
        driver.fail_operations.add(operation)
    steps = [lambda: dest.prepare_migration(new),
             lambda: source.migrate_disk_and_power_off(old.uuid, dest.host or "", new)]
    with pytest.raises(DriverError, match=f"injected failure: {operation}"):
        for step in steps:
            disk_info = await step()
        await dest.finish_migration(new, disk_info, True)
        if operation in ("destroy", "finish_revert_migration"):
            await dest.destroy(old.uuid)
            await source.finish_revert_migration(old, True)
        await source.confirm_migration(old.uuid)
    if operation == "migrate_disk_and_power_off":
        # The guest stopped; its disk did not leave.
        assert (await source.get_info(old.uuid)).power_state == PowerState.SHUTDOWN
    if operation == "finish_migration":
        # The disk arrived; the guest did not start (a hard reboot starts it).
        assert (await dest.get_info(old.uuid)).power_state == PowerState.SHUTDOWN
