"""Each real guest's QEMU in a cgroup of its own: the process is in it with
the limits its flavor gives (memory, CPU cap and weight), a new driver finds
it again and destroys it, a powered-off guest comes back into it, and a
spawn that fails leaves no group behind.

The groups go under a parent of this test's own (removed at the end), in
whichever cgroup version the driver finds delegable here; the tests skip
only where neither version offers the memory and cpu controllers.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loom.virt.driver import PowerState, SpawnFailed
from loom.virt.qemu import QemuDriver, cgroups, process
from loom.virt.qemu.command import InstancePaths
from tests.integration.test_qemu_driver import (  # noqa: F401  (fixtures)
    accelerator,
    file_source,
    guest_image,
    make_driver,
    spec,
    state_dir,
    wait_for_markers,
)
from tests.virt_contract import power_state

SPECS = {"quota:cpu_period": "50000", "quota:cpu_quota": "40000", "quota:cpu_shares": "300"}


@pytest.fixture
def parent() -> Iterator[str]:
    """A parent group of this test's own, skipped where none can be made."""
    name = f"loom-test-{uuid.uuid4().hex[:8]}.slice"
    probe = cgroups.Cgroups("auto", name)
    probe.probe()
    if not probe.available:
        pytest.skip(f"this host cannot delegate cgroup controllers: {probe.reason}")
    yield name
    for base in probe._bases:
        for leftover in sorted(base.glob("*/"), reverse=True):
            if (leftover / "cgroup.procs").exists():
                leftover.rmdir()
        base.rmdir()


def directories(driver: QemuDriver, instance: str) -> list[Path]:
    group = driver.cgroups.group(instance)
    assert group is not None
    return group.directories


def limit(directory: Path, name: str) -> str:
    return (directory / name).read_text(encoding="utf-8").strip()


def assert_limits(driver: QemuDriver, instance: str, pid: int) -> None:
    group = driver.cgroups.group(instance)
    assert group is not None and group.holds(pid), Path(f"/proc/{pid}/cgroup").read_text()
    memory = (128 + 256 + 2) << 20  # the guest, QEMU's overhead, 1/64 of the guest
    if group.version == 2:
        (directory,) = group.directories
        assert limit(directory, "memory.max") == str(memory)
        assert limit(directory, "cpu.max") == "40000 50000"  # one vCPU: the flavor's quota per period
        assert limit(directory, "cpu.weight") == "300"
        assert str(pid) in limit(directory, "cgroup.procs").split()
    else:
        memory_dir, cpu_dir = group.directories
        assert limit(memory_dir, "memory.limit_in_bytes") == str(memory)
        assert (limit(cpu_dir, "cpu.cfs_period_us"), limit(cpu_dir, "cpu.cfs_quota_us")) == ("50000", "40000")
        assert limit(cpu_dir, "cpu.shares") == "300"
        for directory in group.directories:
            assert str(pid) in limit(directory, "cgroup.procs").split()


async def test_a_guest_runs_in_its_group_across_a_driver_restart(make_driver: Any, guest_image: Path,  # noqa: F811
                                                                 parent: str) -> None:
    driver = await make_driver(cgroup_parent=parent)
    assert driver.cgroups.available, driver.cgroups.reason
    s = spec(extra_specs=SPECS)
    await driver.spawn(s, file_source(guest_image))
    await wait_for_markers(driver, s.uuid)  # the guest boots within its limits
    paths = InstancePaths(driver.state_dir / "instances" / s.uuid)
    pid = process.guest_pid(paths.pidfile, s.uuid)
    assert pid is not None
    assert_limits(driver, s.uuid, pid)

    # A powered-off guest keeps its group; its next QEMU starts in it.
    await driver.power_off(s.uuid)
    assert all(d.is_dir() for d in directories(driver, s.uuid))
    await driver.power_on(s.uuid)
    pid = process.guest_pid(paths.pidfile, s.uuid)
    assert pid is not None
    assert_limits(driver, s.uuid, pid)

    # A new driver (a restarted compute service) finds the group again.
    again = await make_driver(cgroup_parent=parent)
    assert await power_state(again, s.uuid) == PowerState.RUNNING
    assert_limits(again, s.uuid, pid)
    await again.destroy(s.uuid)
    assert not any(d.exists() for d in directories(again, s.uuid))


async def test_a_failed_spawn_leaves_no_group(make_driver: Any, guest_image: Path, parent: str) -> None:  # noqa: F811
    driver = await make_driver(cgroup_parent=parent)
    # QEMU refuses to start: the group was made for it, and goes with it.
    driver.options = dataclasses.replace(driver.options, binary="/bin/false")
    s = spec(extra_specs=SPECS)
    with pytest.raises(SpawnFailed):
        await driver.spawn(s, file_source(guest_image))
    assert not any(d.exists() for d in directories(driver, s.uuid))
    assert not (driver.state_dir / "instances" / s.uuid).exists()


async def test_without_cgroups_guests_still_start(make_driver: Any, guest_image: Path) -> None:  # noqa: F811
    driver = await make_driver(cgroups="off")
    assert not driver.cgroups.available
    s = spec()
    await driver.spawn(s, file_source(guest_image))
    assert await power_state(driver, s.uuid) == PowerState.RUNNING
    assert not (driver.state_dir / "instances" / s.uuid / cgroups.RECORD).exists()
    await driver.destroy(s.uuid)
