"""Client side of the conductor's RPC interface."""

from __future__ import annotations

from loom.bus.rpc import Bus
from loom.context import RequestContext

TOPIC = "conductor"


class ConductorAPI:
    def __init__(self, bus: Bus) -> None:
        self.client = bus.client(TOPIC)

    async def service_report(self, ctx: RequestContext, host: str, binary: str, topic: str) -> None:
        await self.client.call(ctx, "service_report", host=host, binary=binary, topic=topic)


class ConductorServiceRegistry:
    """Heartbeats for hosts that never open the database (compute)."""

    def __init__(self, bus: Bus) -> None:
        self.conductor = ConductorAPI(bus)

    async def report(self, ctx: RequestContext, host: str, binary: str, topic: str) -> None:
        await self.conductor.service_report(ctx, host, binary, topic)
