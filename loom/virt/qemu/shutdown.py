"""A clean shutdown before a resize, a move or a rescue, as Nova's compute
manager does one: the ACPI power button, pressed again every few seconds
(a guest still booting has no handler yet and loses a press), for up to
``timeout`` seconds; then QEMU is stopped."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from loom.virt.driver import DriverError, PowerState
from loom.virt.qemu import process, qmp

if TYPE_CHECKING:
    from loom.virt.qemu.driver import QemuDriver, QemuGuest

# Nova's shutdown_timeout default; the presses are as often as soft reboot's.
TIMEOUT = 60.0
REPEAT = 5.0


async def power_off(driver: QemuDriver, guest: QemuGuest, state: PowerState, timeout: float = TIMEOUT) -> None:
    """Stop the guest: cleanly if it is running, else at once."""
    paths, uuid = guest.paths, guest.spec.uuid
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while state == PowerState.RUNNING and (left := deadline - loop.time()) > 0:
        if process.guest_pid(paths.pidfile, uuid) is None:
            break
        with contextlib.suppress(DriverError):
            await qmp.execute(paths.qmp, "system_powerdown", timeout=5)
        if await process.wait_gone(paths.pidfile, uuid, min(REPEAT, left)):
            break
    await driver._stop(guest, 0)
