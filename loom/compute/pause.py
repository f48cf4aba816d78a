"""Pausing (vCPUs stopped, memory kept) and suspending (memory saved to
disk) a guest on this host, and undoing either."""

from __future__ import annotations

from typing import Any

from loom.compute.operation import perform
from loom.context import RequestContext


async def pause(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    return await perform(compute, ctx, uuid, "pause", "pausing", "paused", lambda: compute.driver.pause(uuid))


async def unpause(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    return await perform(compute, ctx, uuid, "unpause", "unpausing", "active", lambda: compute.driver.unpause(uuid))


async def suspend(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    return await perform(compute, ctx, uuid, "suspend", "suspending", "suspended", lambda: compute.driver.suspend(uuid))


async def resume(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    return await perform(compute, ctx, uuid, "resume", "resuming", "active", lambda: compute.driver.resume(uuid))
