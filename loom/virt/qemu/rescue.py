"""Rescue and unrescue, as Nova's libvirt driver does them.

Rescue shuts the guest down cleanly and starts it again from a rescue disk:
a fresh overlay (``disk.rescue.qcow2``) on the rescue image, or on the
instance's own base image when none is given, with the instance's root
disk attached second (and its config drive). The rescue disk's serial is
``loom-rescue``, so a guest can tell which disk it booted. Every later
start of a rescued guest (power on, hard reboot, resume) boots the rescue
disk again; unrescue stops it and starts it from its own disk, removing
the rescue disk. While rescued, the operations the fake refuses are
refused: rescue again, resize and migration, snapshot, rebuild.

``rescue``, ``unrescue`` and ``rebuild`` are QemuDriver's methods (the
driver's class takes them as they are: ``driver`` is its ``self``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from loom.virt.driver import (
    DriverError,
    ImageSource,
    InstanceInvalidState,
    InstanceSpec,
    PowerState,
    SpawnFailed,
    VirtDriver,
)
from loom.virt.qemu import disks, shutdown
from loom.virt.qemu.command import InstancePaths
from loom.virt.qemu.images import GIB, BaseImage

if TYPE_CHECKING:
    from loom.virt.qemu.driver import QemuDriver, QemuGuest

LOG = logging.getLogger(__name__)


def rescued(paths: InstancePaths) -> bool:
    return paths.rescue_disk.exists()


def refuse_rescued(paths: InstancePaths, uuid: str, operation: str) -> None:
    if rescued(paths):
        raise InstanceInvalidState(f"cannot {operation} instance {uuid}: it is in rescue", instance=uuid)


async def rescue(driver: QemuDriver, uuid: str, open_image: ImageSource | None = None) -> None:
    driver.check_capability("rescue")
    async with driver._operate(uuid, "rescue") as (guest, state):
        paths = guest.paths
        refuse_rescued(paths, uuid, "rescue")
        # The rescue disk first: a bad image leaves the guest as it was.
        base = await _rescue_base(driver, guest, open_image)
        partial = paths.directory / "disk.rescue.partial"
        stopped = False
        try:
            size_gb = guest.spec.root_gb if base.virtual_size <= guest.spec.root_gb * GIB else 0
            await driver.images.create_overlay(base, partial, size_gb)
            stopped = True
            await shutdown.power_off(driver, guest, state)
            partial.rename(paths.rescue_disk)
            await driver._start(guest)
        except BaseException:
            partial.unlink(missing_ok=True)
            if stopped:
                await driver._stop(guest, 0)
                paths.rescue_disk.unlink(missing_ok=True)
                if state == PowerState.RUNNING:  # back as it was, on its own disk
                    with contextlib.suppress(DriverError):
                        await driver._start(guest)
            raise


async def unrescue(driver: QemuDriver, uuid: str) -> None:
    driver.check_capability("rescue")
    async with driver._operate(uuid, "unrescue") as (guest, _state):
        paths = guest.paths
        if not rescued(paths):
            raise InstanceInvalidState(f"cannot unrescue instance {uuid}: it is not in rescue", instance=uuid)
        await driver._stop(guest, 0)  # the rescue system is not asked: Nova destroys it too
        paths.suspend_state.unlink(missing_ok=True)  # a suspended rescue system's memory goes with it
        paths.rescue_disk.unlink()
        await driver._start(guest)


async def rebuild(driver: QemuDriver, spec: InstanceSpec, open_image: ImageSource | None = None) -> None:
    """The contract's rebuild (destroy, then spawn), refused in rescue."""
    refuse_rescued(driver._guest(spec.uuid).paths, spec.uuid, "rebuild")
    await VirtDriver.rebuild(driver, spec, open_image)


async def _rescue_base(driver: QemuDriver, guest: QemuGuest, open_image: ImageSource | None) -> BaseImage:
    """The rescue image, cached as any image (by content: it comes without
    an id), else the base image the instance's disk is an overlay on."""
    if open_image is not None:
        return await driver.images.fetch(None, open_image)
    root = await disks.info(driver.options.qemu_img, guest.paths.disk)
    if root.backing_file is None:
        raise SpawnFailed(f"instance {guest.spec.uuid} has no base image to rescue it with; give a rescue image",
                          instance=guest.spec.uuid)
    disks.check_qcow2(root, driver.images.directory)
    return await driver.images.fetch(Path(root.backing_file).name, None)
