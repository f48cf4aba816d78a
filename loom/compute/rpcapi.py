"""Client side of the compute service's RPC interface: every message goes to
the one host that owns the instance (``compute.<host>``)."""

from __future__ import annotations

from typing import Any

from loom.bus.rpc import Bus
from loom.context import RequestContext

TOPIC = "compute"


class ComputeAPI:
    def __init__(self, bus: Bus) -> None:
        self.client = bus.client(TOPIC)

    async def build_and_run_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                                     spec: dict[str, Any], alternates: list[dict[str, Any]]) -> None:
        await self.client.prepare(server=host).cast(ctx, "build_and_run_instance", instance=instance, spec=spec,
                                                    alternates=alternates)

    async def terminate_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "terminate_instance", instance_uuid=instance_uuid)

    async def stop_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "stop_instance", instance_uuid=instance_uuid)

    async def start_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "start_instance", instance_uuid=instance_uuid)

    async def reboot_instance(self, ctx: RequestContext, host: str, instance_uuid: str, reboot_type: str) -> None:
        """``reboot_type``: "SOFT" or "HARD"."""
        await self.client.prepare(server=host).cast(ctx, "reboot_instance", instance_uuid=instance_uuid,
                                                    reboot_type=reboot_type)

    async def pause_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "pause_instance", instance_uuid=instance_uuid)

    async def unpause_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "unpause_instance", instance_uuid=instance_uuid)

    async def suspend_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "suspend_instance", instance_uuid=instance_uuid)

    async def resume_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "resume_instance", instance_uuid=instance_uuid)

    async def get_host_uptime(self, ctx: RequestContext, host: str) -> str:
        return str(await self.client.prepare(server=host).call(ctx, "get_host_uptime"))
