"""Client side of the conductor's RPC interface."""

from __future__ import annotations

from typing import Any

from loom.bus.rpc import Bus
from loom.context import RequestContext

TOPIC = "conductor"


class ConductorAPI:
    def __init__(self, bus: Bus) -> None:
        self.client = bus.client(TOPIC)

    async def service_report(self, ctx: RequestContext, host: str, binary: str, topic: str) -> None:
        await self.client.call(ctx, "service_report", host=host, binary=binary, topic=topic)

    async def build_instances(self, ctx: RequestContext, spec: dict[str, Any], instance_uuids: list[str]) -> None:
        await self.client.cast(ctx, "build_instances", spec=spec, instance_uuids=instance_uuids)

    async def instance_update(self, ctx: RequestContext, instance_uuid: str, values: dict[str, Any],
                              expected_task_state: list[str | None] | None = None, event: str | None = None,
                              host: str | None = None, event_start: str | None = None,
                              event_result: str = "Success") -> bool:
        """Update an instance for a compute host; False if its task state
        was not one of ``expected_task_state``. ``event`` records an action
        event that began at ``event_start`` (ISO 8601) and ends now with
        ``event_result``."""
        return bool(await self.client.call(ctx, "instance_update", instance_uuid=instance_uuid, values=values,
                                           expected_task_state=expected_task_state, event=event, host=host,
                                           event_start=event_start, event_result=event_result))

    async def reschedule(self, ctx: RequestContext, instance_uuid: str, spec: dict[str, Any],
                         alternates: list[dict[str, Any]], failed_host: str, reason: str) -> None:
        await self.client.cast(ctx, "reschedule", instance_uuid=instance_uuid, spec=spec, alternates=alternates,
                               failed_host=failed_host, reason=reason)

    async def instance_deleted(self, ctx: RequestContext, instance_uuid: str, host: str) -> None:
        await self.client.call(ctx, "instance_deleted", instance_uuid=instance_uuid, host=host)

    async def update_available_resource(self, ctx: RequestContext, host: str, resources: dict[str, Any]) -> None:
        await self.client.call(ctx, "update_available_resource", host=host, resources=resources)

    async def instance_sync(self, ctx: RequestContext, instance_uuid: str, values: dict[str, Any], *,
                            action: str, event: str, host: str, result: str = "Success",
                            message: str | None = None, expected_vm_state: str | None = None,
                            expected_task_state: list[str | None] | None = None) -> bool:
        """Record what a compute host found out on its own (on restart, or
        syncing power states): update the instance and record ``action`` with
        one ``event``; False if its vm_state or task_state was no longer the
        one expected."""
        return bool(await self.client.call(ctx, "instance_sync", instance_uuid=instance_uuid, values=values,
                                           action=action, event=event, host=host, result=result, message=message,
                                           expected_vm_state=expected_vm_state,
                                           expected_task_state=expected_task_state))

    async def instance_states(self, ctx: RequestContext, instance_uuids: list[str]) -> dict[str, dict[str, Any]]:
        """uuid → {"host", "deleted"} for those of ``instance_uuids`` the database knows."""
        return dict(await self.client.call(ctx, "instance_states", instance_uuids=instance_uuids))

    async def instances_on_host(self, ctx: RequestContext, host: str) -> list[dict[str, Any]]:
        return list(await self.client.call(ctx, "instances_on_host", host=host))


class ConductorServiceRegistry:
    """Heartbeats for hosts that never open the database (compute)."""

    def __init__(self, bus: Bus) -> None:
        self.conductor = ConductorAPI(bus)

    async def report(self, ctx: RequestContext, host: str, binary: str, topic: str) -> None:
        await self.conductor.service_report(ctx, host, binary, topic)
