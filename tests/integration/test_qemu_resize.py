"""Resize, cold migration and rescue of real guests on the qemu driver.

The test guest's READY line says what the guest sees (``mem_mb``: its
MemTotal, ``cpus``, ``disks`` with their serials), so each step is proven
from inside the guest:

- through the API with the stock CLI on a one-host cloud
  (``allow_resize_to_same_host``): a resize to more RAM and two vCPUs shows
  them in the guest; revert brings the old RAM, vCPUs and the very same
  root disk back; a second resize is confirmed and the kept disk goes;
  rescue boots the rescue disk with the root disk second, unrescue the
  guest's own disk again;
- with two drivers of their own state directories (two hosts): a cold
  migration to the other host with a bigger flavor, its revert and its
  confirmation, and the refusals (a smaller disk, operations in rescue).

Guests of 128 and 256 MB, one running at a time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loom import errors
from loom.virt.driver import InstanceInvalidState, PowerState
from loom.virt.qemu import QemuDriver
from tests.functional.cloud import Cloud
from tests.integration.test_qemu_api import console, qemu_cloud, qemu_state, wait_for, wait_status  # noqa: F401  (fixture)
from tests.integration.test_qemu_driver import (  # noqa: F401  (session fixtures)
    accelerator,
    file_source,
    guest_image,
    options,
    spec,
    wait_for_markers,
)
from tests.virt_contract import power_state

READY = "LOOM-GUEST-READY"
GIB = 1 << 30


def last_ready(out: str) -> dict[str, str]:
    """The fields of the last READY line."""
    line = [line for line in out.splitlines() if line.startswith(READY)][-1]
    return dict(field.split("=", 1) for field in line.strip().split()[1:] if "=" in field)


def virtual_size(disk: Path) -> int:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(disk)], check=True, capture_output=True,
                         text=True).stdout
    return int(json.loads(out)["virtual-size"])


# Through the API.


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path,  # noqa: F811
          accelerator: str, qemu_state: Path) -> Iterator[Cloud]:  # noqa: F811
    with qemu_cloud(tmp_path_factory.mktemp("cloud"), guest_image, accelerator, qemu_state,
                    **{"compute.allow_resize_to_same_host": True}) as c:
        c.openstack("flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1", "q.small")
        c.openstack("flavor", "create", "--ram", "256", "--disk", "2", "--vcpus", "2", "q.big")
        yield c


def resize_to(cloud: Cloud, server: str, flavor: str, boots: int) -> dict[str, str]:
    cloud.openstack("server", "resize", "--flavor", flavor, "--wait", server)
    wait_status(cloud, server, "VERIFY_RESIZE")
    return last_ready(wait_for(cloud, server, READY, boots))


def test_resize_revert_confirm_and_rescue_through_the_cli(cloud: Cloud, qemu_state: Path) -> None:  # noqa: F811
    server = cloud.openstack("server", "create", "--flavor", "q.small", "--image", "demo", "--wait", "grow-me")
    uuid = str(server["id"])
    instance, kept = qemu_state / "instances" / uuid, qemu_state / "kept" / uuid
    small = last_ready(wait_for(cloud, uuid, READY))
    assert small["cpus"] == "1" and 0 < int(small["mem_mb"]) <= 128, small
    original = (instance / "disk.qcow2").stat().st_ino
    assert virtual_size(instance / "disk.qcow2") == 1 * GIB

    # Resized: the guest sees two CPUs and more memory; the original disk is kept aside.
    big = resize_to(cloud, uuid, "q.big", 1)  # a new instance directory: a new console log
    assert big["cpus"] == "2" and 128 < int(big["mem_mb"]) <= 256, big
    assert virtual_size(instance / "disk.qcow2") == 2 * GIB
    assert (kept / "disk.qcow2").stat().st_ino == original

    # Reverted: the old size and the very same disk, as it was.
    cloud.openstack("server", "resize", "revert", uuid)
    shown = wait_status(cloud, uuid, "ACTIVE")
    assert "q.small" in json.dumps(shown["flavor"])
    reverted = last_ready(wait_for(cloud, uuid, READY, 2))  # the kept log: its first boot, then this one
    assert reverted["cpus"] == "1" and reverted["mem_mb"] == small["mem_mb"], reverted
    assert (instance / "disk.qcow2").stat().st_ino == original
    assert virtual_size(instance / "disk.qcow2") == 1 * GIB
    assert not kept.exists()

    # Resized again and confirmed: the kept copy goes.
    big = resize_to(cloud, uuid, "q.big", 1)
    assert big["cpus"] == "2" and 128 < int(big["mem_mb"]) <= 256, big
    assert kept.exists()
    cloud.openstack("server", "resize", "confirm", uuid)
    wait_status(cloud, uuid, "ACTIVE")
    deadline = time.monotonic() + 120
    while kept.exists():
        assert time.monotonic() < deadline, "the kept copy outlived the confirmation"
        time.sleep(0.5)
    assert not (qemu_state / "kept").exists() or list((qemu_state / "kept").iterdir()) == []

    # Rescue: the guest boots the rescue disk, its own disk attached second.
    boots = console(cloud, uuid).count(READY)
    cloud.openstack("server", "rescue", uuid)
    wait_status(cloud, uuid, "RESCUE")
    rescued = last_ready(wait_for(cloud, uuid, READY, boots + 1))
    assert rescued["disks"].split(",")[:2] == ["vda:loom-rescue", "vdb"], rescued
    assert (instance / "disk.rescue.qcow2").exists()
    cloud.openstack("server", "unrescue", uuid)
    wait_status(cloud, uuid, "ACTIVE")
    own = last_ready(wait_for(cloud, uuid, READY, boots + 2))
    assert own["disks"].split(",")[0] == "vda" and "loom-rescue" not in own["disks"], own
    assert own["cpus"] == "2"
    assert not (instance / "disk.rescue.qcow2").exists()

    cloud.openstack("server", "delete", "--wait", uuid)
    assert not instance.exists() and not kept.exists()


# Two hosts: two drivers, each with its own state directory.


@pytest.fixture
async def two_hosts(accelerator: str) -> Any:  # noqa: F811
    made = []
    for host in ("host-a", "host-b"):
        driver = QemuDriver(Path(tempfile.mkdtemp(prefix="loom-qemu-", dir="/tmp")), options(accelerator))
        await driver.init_host(host)
        made.append(driver)
    yield made
    for driver in made:
        for uuid in await driver.list_instances():
            await driver.destroy(uuid)
        await driver.cleanup()
        shutil.rmtree(driver.state_dir, ignore_errors=True)


async def test_cold_migration_to_another_host_reverted_then_confirmed(two_hosts: Any, guest_image: Path) -> None:  # noqa: F811
    source, dest = two_hosts
    small = spec(config_drive=True)
    bigger = dataclasses.replace(small, vcpus=2, memory_mb=256, root_gb=2)
    await source.spawn(small, file_source(guest_image))
    before = last_ready(await wait_for_markers(source, small.uuid))
    disk = source.state_dir / "instances" / small.uuid / "disk.qcow2"
    original = disk.stat().st_ino
    busy = await source.host_resources()

    await dest.prepare_migration(bigger)
    with pytest.raises(errors.Invalid, match="cannot shrink"):
        await source.migrate_disk_and_power_off(small.uuid, "host-b", dataclasses.replace(small, root_gb=0))
    assert await power_state(source, small.uuid) == PowerState.RUNNING  # a refused move changes nothing

    disk_info = await source.migrate_disk_and_power_off(small.uuid, "host-b", bigger)
    kept = source.state_dir / "kept" / small.uuid
    assert await source.list_instances() == [] and (kept / "disk.qcow2").stat().st_ino == original
    assert (await source.host_resources()).memory_mb_used == busy.memory_mb_used  # the kept copy holds its share
    assert "LOOM-GUEST-POWER-BUTTON" in (kept / "console.log").read_text()  # a clean shutdown
    await dest.finish_migration(bigger, disk_info, True)
    after = last_ready(await wait_for_markers(dest, small.uuid))
    assert after["cpus"] == "2" and int(after["mem_mb"]) > int(before["mem_mb"]), after
    assert after["config_drive"] == "yes" and after["hostname"] == small.hostname
    assert virtual_size(dest.state_dir / "instances" / small.uuid / "disk.qcow2") == 2 * GIB
    assert [p.name for p in (dest.state_dir / "_base").iterdir() if not p.name.endswith(".json")] == [
        p.name for p in (source.state_dir / "_base").iterdir() if not p.name.endswith(".json")]

    # Reverted: the destination's copy goes, the source's comes back as it was.
    await dest.destroy(small.uuid)
    await source.finish_revert_migration(small, True)
    await source.finish_revert_migration(small, True)  # repeated: nothing more happens
    back = last_ready(await wait_for_markers(source, small.uuid, 2))
    assert (back["cpus"], back["mem_mb"]) == (before["cpus"], before["mem_mb"])
    assert disk.stat().st_ino == original and virtual_size(disk) == 1 * GIB and not kept.exists()

    # Again, stopped on arrival, and confirmed: the source's copy and share go.
    disk_info = await source.migrate_disk_and_power_off(small.uuid, "host-b", bigger)
    await dest.finish_migration(bigger, disk_info, False)
    assert await power_state(dest, small.uuid) == PowerState.SHUTDOWN
    await source.confirm_migration(small.uuid)
    await source.confirm_migration(small.uuid)  # repeated: no error
    assert not kept.exists() and (await source.host_resources()).memory_mb_used == 0
    await dest.power_on(small.uuid)
    assert last_ready(await wait_for_markers(dest, small.uuid))["cpus"] == "2"


async def test_a_disk_not_reachable_from_the_destination_is_refused(two_hosts: Any, guest_image: Path) -> None:  # noqa: F811
    source, dest = two_hosts
    s = spec()
    await source.spawn(s, file_source(guest_image))
    await wait_for_markers(source, s.uuid)
    disk_info = await source.migrate_disk_and_power_off(s.uuid, "host-b", s)
    moved = {**disk_info, "path": f"/nonexistent/kept/{s.uuid}"}
    with pytest.raises(errors.LoomError, match="not reachable"):
        await dest.finish_migration(s, moved, True)
    assert await dest.list_instances() == [] and not (dest.state_dir / "instances" / s.uuid).exists()
    await source.finish_revert_migration(s, False)
    assert await power_state(source, s.uuid) == PowerState.SHUTDOWN


async def test_rescue_with_an_image_and_what_rescue_refuses(two_hosts: Any, guest_image: Path) -> None:  # noqa: F811
    driver = two_hosts[0]
    s = spec()
    await driver.spawn(s, file_source(guest_image))
    assert last_ready(await wait_for_markers(driver, s.uuid))["disks"] == "vda"
    await driver.rescue(s.uuid, file_source(guest_image))
    out = await wait_for_markers(driver, s.uuid, 2)
    assert "LOOM-GUEST-POWER-BUTTON" in out  # shut down cleanly first
    assert last_ready(out)["disks"] == "vda:loom-rescue,vdb"
    for refused in (driver.rescue(s.uuid), driver.snapshot(s.uuid),
                    driver.resize(s.uuid, dataclasses.replace(s, memory_mb=256)),
                    driver.migrate_disk_and_power_off(s.uuid, "host-b", s), driver.rebuild(s)):
        with pytest.raises(InstanceInvalidState, match="in rescue"):
            await refused
    await driver.power_off(s.uuid)
    await driver.power_on(s.uuid)  # still rescued: the rescue disk boots again
    assert last_ready(await wait_for_markers(driver, s.uuid, 3))["disks"] == "vda:loom-rescue,vdb"
    await driver.unrescue(s.uuid)
    assert last_ready(await wait_for_markers(driver, s.uuid, 4))["disks"] == "vda"
    directory = driver.state_dir / "instances" / s.uuid
    assert not [p for p in os.listdir(directory) if "rescue" in p]
    with pytest.raises(InstanceInvalidState, match="not in rescue"):
        await driver.unrescue(s.uuid)
