"""Stopping, starting and rebooting a guest on this host."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from loom.compute.operation import perform
from loom.context import RequestContext

LOG = logging.getLogger(__name__)
# Seconds a guest is given to shut down cleanly before it is stopped (Nova's
# shutdown_timeout), and to restart itself on a soft reboot before it is reset.
SHUTDOWN_TIMEOUT = 60.0
SOFT_REBOOT_TIMEOUT = 120.0


async def stop(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    return await perform(
        compute, ctx, uuid, "stop", "powering-off", "stopped", lambda: compute.driver.power_off(uuid, SHUTDOWN_TIMEOUT)
    )


async def start(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    return await perform(compute, ctx, uuid, "start", "powering-on", "active", lambda: compute.driver.power_on(uuid))


async def reboot(compute: Any, ctx: RequestContext, uuid: str, reboot_type: str) -> bool:
    if reboot_type == "HARD":
        return await perform(
            compute, ctx, uuid, "reboot", "rebooting_hard", "active", lambda: compute.driver.reboot(uuid, True)
        )
    return await perform(
        compute, ctx, uuid, "reboot", "rebooting", "active", lambda: soft_reboot(compute, uuid, SOFT_REBOOT_TIMEOUT)
    )


async def soft_reboot(compute: Any, uuid: str, timeout: float) -> None:
    """Ask the guest to restart; if it fails or does not within ``timeout``
    seconds, reset it (as Nova's libvirt driver falls back to a hard reboot)."""
    try:
        await asyncio.wait_for(compute.driver.reboot(uuid, False), timeout)
        return
    except Exception as exc:  # TimeoutError included
        LOG.warning("soft reboot of %s failed (%s); rebooting it hard", uuid, type(exc).__name__)
    await compute.driver.reboot(uuid, True)
