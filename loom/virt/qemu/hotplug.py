"""PCIe hot-plug over QMP, shared by volumes and NICs, and the record of
what is plugged into an instance (``attachments.json`` in its directory),
from which every later start builds its command line.

On q35 a device can be unplugged only from a root port of its own; the
command line makes ``pcie_ports`` of them up front (command.py) and a
hot-plugged device takes the first empty one. Unplugging needs the guest:
``device_del`` asks it to release the device (ACPI or PCIe native
hot-plug) and QEMU reports ``DEVICE_DELETED`` once it has.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from loom import errors
from loom.virt.driver import DriverError, InstanceInvalidState, PowerState
from loom.virt.qemu import qmp
from loom.virt.qemu.command import InstancePaths

# A guest still booting misses the first request; it is asked again.
UNPLUG_REPEAT = 10.0


class DetachTimeout(DriverError):
    """The guest did not release a device in time; it stays attached."""


def attachments_path(paths: InstancePaths) -> Path:
    return paths.directory / "attachments.json"


def load(paths: InstancePaths) -> dict[str, Any]:
    """{"volumes": [...], "interfaces": [...]}; "interfaces" is absent until
    one is attached or detached (the spec's networks hold them until then)."""
    try:
        return dict(json.loads(attachments_path(paths).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return {"volumes": []}


def save(paths: InstancePaths, record: dict[str, Any]) -> None:
    target = attachments_path(paths)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(record, sort_keys=True, indent=1), encoding="utf-8")
    os.replace(temporary, target)


def check_state(operation: str, uuid: str, state: PowerState) -> bool:
    """Whether a QEMU runs to plug into (else the change waits for the next
    start). A suspended guest's saved device state must match the command
    line it resumes with, so it is left alone; a paused one cannot release
    a device."""
    if state == PowerState.SUSPENDED or state == PowerState.NOSTATE or (
            state == PowerState.PAUSED and operation.startswith("detach")):
        raise InstanceInvalidState(f"cannot {operation} instance {uuid} while it is {state.name}",
                              instance=uuid, power_state=state.name, operation=operation)
    return state != PowerState.SHUTDOWN


async def free_port(monitor: qmp.Monitor, uuid: str) -> str:
    """The id of the first root port with nothing plugged into it."""
    for bus in await monitor.execute("query-pci"):
        for device in bus.get("devices", []):
            bridge = device.get("pci_bridge")
            qdev_id = device.get("qdev_id", "")
            if bridge is not None and qdev_id.startswith("port") and not bridge.get("devices"):
                return str(qdev_id)
    raise errors.NoResources(f"instance {uuid} has no free PCIe root port for another device "
                             "(compute.qemu_pcie_ports sets how many a guest starts with)", instance=uuid)


async def unplug(monitor: qmp.Monitor, device_id: str, what: str, timeout: float) -> None:
    """``device_del`` and wait for the guest to release the device: QEMU's
    DEVICE_DELETED event. DetachTimeout if it does not within ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with monitor.events("DEVICE_DELETED") as events:
        while (left := deadline - loop.time()) > 0:
            try:
                await monitor.execute("device_del", {"id": device_id})
            except qmp.CommandFailed as exc:
                if "not found" in exc.message:
                    return  # already gone
                # Otherwise an unplug is under way already: wait on for it.
            repeat_at = loop.time() + min(UNPLUG_REPEAT, left)
            while (wait := repeat_at - loop.time()) > 0:
                event = await qmp.wait_event(events, wait)
                if event is not None and event.get("data", {}).get("device") == device_id:
                    return
    raise DetachTimeout(f"{what}: the guest did not release device {device_id} within {timeout:.0f}s "
                        "(a guest without PCIe/ACPI hot-plug support cannot); it is still attached",
                        device=device_id)
