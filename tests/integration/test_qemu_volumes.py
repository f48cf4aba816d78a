"""Volumes on the QEMU driver with real guests: a raw file hot-plugged into
a running guest shows up in it (the test guest prints hot-plugged disks on
its serial console) and goes again; an attached volume is on the command
line of every later start (power off/on, a stopped guest, a new driver);
refused shapes and a failed hot-plug leave nothing behind.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from loom import errors
from loom.virt.driver import InstanceInvalidState, PowerState
from loom.virt.qemu import QemuDriver, hotplug, qmp
from loom.virt.qemu.command import InstancePaths
from tests.integration import test_qemu_driver as base
from tests.integration.test_qemu_driver import BOOT_TIMEOUT, file_source, spec, wait_for_markers

# The driver tests' fixtures: the test guest, the accelerator, drivers on a
# temporary state directory.
guest_image, accelerator, state_dir, make_driver = base.guest_image, base.accelerator, base.state_dir, base.make_driver

SECTORS = 4096  # a 2 MiB volume


@pytest.fixture
async def driver(make_driver: Any) -> QemuDriver:
    return await make_driver()


def volume(directory: Path, name: str = "volume.raw") -> tuple[dict[str, Any], str]:
    """A raw file volume's connection_info (Cinder's shape) and its id."""
    volume_id = str(uuid.uuid4())
    path = directory / name
    path.write_bytes(bytes(SECTORS * 512))
    return {"driver_volume_type": "file", "serial": volume_id,
            "data": {"device_path": str(path), "volume_id": volume_id, "access_mode": "rw"}}, volume_id


async def wait_for_line(driver: QemuDriver, instance: str, text: str, count: int = 1,
                        timeout: float = BOOT_TIMEOUT) -> list[str]:
    """The whole console lines holding ``text`` once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        out = await driver.console_output(instance)
        lines = [line for line in out[:out.rfind("\n") + 1].splitlines() if text in line]
        if len(lines) >= count:
            return lines
        assert time.monotonic() < deadline, f"no {count}x {text!r} in {timeout}s; console:\n{out}"
        await asyncio.sleep(0.3)


async def last_ready(driver: QemuDriver, instance: str, count: int) -> str:
    """The ``count``th READY line, once the guest has printed all of it."""
    return (await wait_for_line(driver, instance, "LOOM-GUEST-READY", count))[count - 1]


async def block_nodes(paths: InstancePaths) -> set[str]:
    return {node["node-name"] for node in await qmp.execute(paths.qmp, "query-named-block-nodes")}


async def pci_ids(paths: InstancePaths) -> set[str]:
    ids = set()
    for bus in await qmp.execute(paths.qmp, "query-pci"):
        for device in bus["devices"]:
            ids.add(device.get("qdev_id", ""))
            for child in (device.get("pci_bridge") or {}).get("devices", []):
                ids.add(child.get("qdev_id", ""))
    return ids


async def test_a_volume_hot_plugged_into_a_running_guest_shows_up_and_goes(
        driver: QemuDriver, guest_image: Path, tmp_path: Path) -> None:
    s = spec()
    paths = InstancePaths(driver.state_dir / "instances" / s.uuid)
    await driver.spawn(s, file_source(guest_image))
    await wait_for_markers(driver, s.uuid)
    connection, volume_id = volume(tmp_path)
    await driver.attach_volume(s.uuid, connection, "/dev/vdb")
    added = (await wait_for_line(driver, s.uuid, "LOOM-GUEST-DISK-ADDED"))[0]
    # virtio keeps 20 characters of the serial: /dev/disk/by-id/virtio-<those>
    assert f"serial={volume_id[:20]}" in added and f"sectors={SECTORS}" in added
    assert {"volume-vdb", "volume-vdb-file"} <= await block_nodes(paths)
    assert "volume-vdb" in await pci_ids(paths)
    with pytest.raises(errors.Conflict):
        await driver.attach_volume(s.uuid, connection, "/dev/vdb")
    with pytest.raises(errors.Conflict):
        await driver.attach_volume(s.uuid, volume(tmp_path, "other.raw")[0], "/dev/vda")  # the root disk

    # A paused guest cannot let go of a disk: refused at once, and a device_del
    # it cannot answer times out with a clear error, the disk still there.
    await driver.pause(s.uuid)
    with pytest.raises(InstanceInvalidState):
        await driver.detach_volume(s.uuid, "/dev/vdb")
    async with qmp.connect(paths.qmp) as monitor:
        with pytest.raises(hotplug.DetachTimeout, match="did not release device volume-vdb"):
            await hotplug.unplug(monitor, "volume-vdb", "detaching", timeout=3)
    assert "volume-vdb" in await pci_ids(paths)
    await driver.unpause(s.uuid)

    await driver.detach_volume(s.uuid, "/dev/vdb")
    await wait_for_line(driver, s.uuid, "LOOM-GUEST-DISK-REMOVED name=vdb")
    assert not {"volume-vdb", "volume-vdb-file"} & await block_nodes(paths)
    assert "volume-vdb" not in await pci_ids(paths)
    with pytest.raises(errors.NotFound):
        await driver.detach_volume(s.uuid, "/dev/vdb")
    assert await _state(driver, s.uuid) == PowerState.RUNNING
    await driver.destroy(s.uuid)


async def test_an_attached_volume_stays_through_power_cycles_reboots_and_a_new_driver(
        make_driver: Any, guest_image: Path, tmp_path: Path) -> None:
    driver = await make_driver()
    s = spec()
    await driver.spawn(s, file_source(guest_image))
    await wait_for_markers(driver, s.uuid)
    connection, volume_id = volume(tmp_path)
    await driver.attach_volume(s.uuid, connection, "/dev/vdc")
    await wait_for_line(driver, s.uuid, "LOOM-GUEST-DISK-ADDED")
    await driver.power_off(s.uuid)
    await driver.power_on(s.uuid)
    assert volume_id[:20] in await last_ready(driver, s.uuid, 2)  # on the new QEMU's command line
    await driver.reboot(s.uuid, hard=True)
    assert volume_id[:20] in await last_ready(driver, s.uuid, 3)

    restarted = await make_driver()  # the compute service restarted
    await restarted.power_off(s.uuid)
    await restarted.power_on(s.uuid)
    assert volume_id[:20] in await last_ready(restarted, s.uuid, 4)
    await restarted.detach_volume(s.uuid, "/dev/vdc")
    await wait_for_line(restarted, s.uuid, "LOOM-GUEST-DISK-REMOVED")
    await restarted.power_off(s.uuid)
    await restarted.power_on(s.uuid)
    assert volume_id[:20] not in await last_ready(restarted, s.uuid, 5)
    await restarted.destroy(s.uuid)


async def test_a_volume_attached_to_a_stopped_guest_is_there_when_it_starts(
        driver: QemuDriver, guest_image: Path, tmp_path: Path) -> None:
    s = spec()
    paths = InstancePaths(driver.state_dir / "instances" / s.uuid)
    await driver.spawn(s, file_source(guest_image))
    await driver.power_off(s.uuid)
    connection, volume_id = volume(tmp_path)
    connection["data"]["access_mode"] = "ro"
    await driver.attach_volume(s.uuid, connection, "/dev/vdb")
    assert await _state(driver, s.uuid) == PowerState.SHUTDOWN  # recorded, not started
    await driver.power_on(s.uuid)
    assert volume_id[:20] in await last_ready(driver, s.uuid, 1)
    nodes = {n["node-name"]: n for n in await qmp.execute(paths.qmp, "query-named-block-nodes")}
    assert nodes["volume-vdb"]["ro"] is True
    await driver.power_off(s.uuid)
    await driver.detach_volume(s.uuid, "/dev/vdb")  # no QEMU: only the record changes
    await driver.power_on(s.uuid)
    assert volume_id[:20] not in await last_ready(driver, s.uuid, 2)
    await driver.destroy(s.uuid)


async def test_refused_volumes_and_a_failed_hot_plug_leave_nothing(
        make_driver: Any, guest_image: Path, tmp_path: Path) -> None:
    driver = await make_driver(pcie_ports=0)  # no free root port: device_add cannot happen
    s = spec()
    paths = InstancePaths(driver.state_dir / "instances" / s.uuid)
    await driver.spawn(s, file_source(guest_image))
    before = await block_nodes(paths)
    good, _volume_id = volume(tmp_path)
    refused = [
        ({"driver_volume_type": "iscsi", "data": {"target_iqn": "iqn.2010-10.org.openstack:volume-1"}}, "/dev/vdb"),
        ({"data": {"device_path": good["data"]["device_path"]}}, "/dev/vdb"),
        ({"driver_volume_type": "file", "data": {}}, "/dev/vdb"),
        ({"driver_volume_type": "file", "data": {"device_path": str(tmp_path / "missing.raw")}}, "/dev/vdb"),
        ({"driver_volume_type": "file", "data": {"device_path": str(tmp_path)}}, "/dev/vdb"),
        ({"driver_volume_type": "file", "data": {**good["data"], "format": "vmdk"}}, "/dev/vdb"),
        ({"driver_volume_type": "file", "data": {**good["data"], "access_mode": "rx"}}, "/dev/vdb"),
        (good, "vdb"),
        (good, "/dev/../etc/passwd"),
    ]
    for connection, mountpoint in refused:
        with pytest.raises(errors.Invalid):
            await driver.attach_volume(s.uuid, connection, mountpoint)
    with pytest.raises(errors.NoResources, match="no free PCIe root port"):
        await driver.attach_volume(s.uuid, good, "/dev/vdb")
    assert await block_nodes(paths) == before  # blockdev-add rolled back
    assert hotplug.load(paths).get("volumes") == []  # nothing recorded
    with pytest.raises(errors.NotFound):
        await driver.detach_volume(s.uuid, "/dev/vdb")
    assert await _state(driver, s.uuid) == PowerState.RUNNING
    await driver.destroy(s.uuid)


async def _state(driver: QemuDriver, instance: str) -> PowerState:
    return (await driver.get_info(instance)).power_state
