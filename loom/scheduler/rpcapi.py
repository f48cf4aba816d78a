"""Client side of the scheduler's RPC interface."""

from __future__ import annotations

from collections.abc import Sequence

from loom.bus.rpc import Bus
from loom.context import RequestContext
from loom.scheduler.errors import NoValidHost
from loom.scheduler.request import RequestSpec, Selection

TOPIC = "scheduler"
# Placing a large request waits for one claim per instance: give it time
# (Nova's long_rpc_timeout is 1800 s).
SELECT_TIMEOUT = 600.0

__all__ = ["SELECT_TIMEOUT", "TOPIC", "NoValidHost", "SchedulerAPI"]


class SchedulerAPI:
    def __init__(self, bus: Bus, *, timeout: float = SELECT_TIMEOUT) -> None:
        self.client = bus.client(TOPIC, timeout=timeout)

    async def select_destinations(self, ctx: RequestContext, spec: RequestSpec, instance_uuids: Sequence[str],
                                  return_alternates: bool = True) -> list[list[Selection]]:
        """Per instance (in order): the host claimed for it in placement,
        then up to ``max_attempts - 1`` alternates (not claimed; their
        ``allocation_request["allocations"]`` is what to pass to
        ``placement.claim`` to reschedule there). Raises ``NoValidHost``
        if any instance cannot be placed; then nothing stays claimed."""
        found = await self.client.call(ctx, "select_destinations", spec=spec.to_dict(),
                                       instance_uuids=list(instance_uuids), return_alternates=return_alternates)
        return [[Selection.from_dict(s) for s in choices] for choices in found]

    async def check_host(self, ctx: RequestContext, spec: RequestSpec, host: str, node: str | None = None) -> None:
        """Raise ``NoValidHost`` unless ``host`` passes the filters that run
        on a rebuild (the image ones) for ``spec``; claims nothing."""
        await self.client.call(ctx, "check_host", spec=spec.to_dict(), host=host, node=node)
