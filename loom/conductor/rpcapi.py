"""Client side of the conductor's RPC interface."""

from __future__ import annotations

from typing import Any

from loom.bus.rpc import Bus
from loom.conductor.live_rpcapi import LiveMoveCalls
from loom.context import RequestContext

TOPIC = "conductor"


class MoveCalls:
    """The conductor's side of cold migrations and resizes (loom/conductor/migrate.py, move_state.py)."""

    client: Any

    async def migrate_server(self, ctx: RequestContext, instance_uuid: str, migration_id: int, host: str | None,
                             same_host: bool) -> None:
        """Start the move the API recorded (the server is in resize_prep)."""
        await self.client.cast(ctx, "migrate_server", instance_uuid=instance_uuid, migration_id=migration_id,
                               host=host, same_host=same_host)

    async def move_update(self, ctx: RequestContext, instance_uuid: str, migration_id: int,
                          instance_values: dict[str, Any], migration_values: dict[str, Any], *,
                          expected_task_state: list[str | None], expected_vm_state: str | None = None,
                          allocations: str | None = None, event: str | None = None, host: str | None = None,
                          event_start: str | None = None) -> bool:
        """One step of a move in one transaction (move_state.commit); False
        if the instance was no longer in ``expected_task_state``."""
        return bool(await self.client.call(
            ctx, "move_update", instance_uuid=instance_uuid, migration_id=migration_id,
            instance_values=instance_values, migration_values=migration_values,
            expected_task_state=expected_task_state, expected_vm_state=expected_vm_state, allocations=allocations,
            event=event, host=host, event_start=event_start))

    async def move_failed(self, ctx: RequestContext, instance_uuid: str, migration_id: int, step: str, reason: str,
                          *, host: str | None, event_start: str | None, power_state: int | None) -> None:
        """A step of a move failed: see move_state.FAILURES."""
        await self.client.call(ctx, "move_failed", instance_uuid=instance_uuid, migration_id=migration_id,
                               step=step, reason=reason, host=host, event_start=event_start,
                               power_state=power_state)

    async def move_of(self, ctx: RequestContext, instance_uuid: str) -> dict[str, Any] | None:
        """{"instance", "migration"} of the instance's move under way, or None."""
        found = await self.client.call(ctx, "move_of", instance_uuid=instance_uuid)
        return dict(found) if found else None

    async def confirm_due_resizes(self, ctx: RequestContext, host: str, window: float) -> int:
        return int(await self.client.call(ctx, "confirm_due_resizes", host=host, window=window))


class ConductorAPI(MoveCalls, LiveMoveCalls):
    def __init__(self, bus: Bus) -> None:
        self.client = bus.client(TOPIC)

    async def service_report(self, ctx: RequestContext, host: str, binary: str, topic: str) -> None:
        await self.client.call(ctx, "service_report", host=host, binary=binary, topic=topic)

    async def build_instances(self, ctx: RequestContext, spec: dict[str, Any], instance_uuids: list[str]) -> None:
        await self.client.cast(ctx, "build_instances", spec=spec, instance_uuids=instance_uuids)

    async def rebuild_instance(self, ctx: RequestContext, instance_uuid: str, orig_image_ref: str | None,
                               orig_vm_state: str, spec: dict[str, Any], preserve_ephemeral: bool = False) -> None:
        """Rebuild a server the API moved into ``rebuilding``: a new image
        is first checked against its host (``spec``: a RequestSpec's dict)."""
        await self.client.cast(ctx, "rebuild_instance", instance_uuid=instance_uuid, orig_image_ref=orig_image_ref,
                               orig_vm_state=orig_vm_state, spec=spec, preserve_ephemeral=preserve_ephemeral)

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

    async def shelve_finished(self, ctx: RequestContext, instance_uuid: str, host: str, image_id: str,
                              power_state: int, offload: bool, event_start: str) -> bool:
        """A shelve's guest is off and its image uploaded: SHELVED (or on to
        shelving_offloading); False if the server left shelving meanwhile."""
        return bool(await self.client.call(ctx, "shelve_finished", instance_uuid=instance_uuid, host=host,
                                           image_id=image_id, power_state=power_state, offload=offload,
                                           event_start=event_start))

    async def shelve_offloaded(self, ctx: RequestContext, instance_uuid: str, host: str, power_state: int,
                               event_start: str) -> bool:
        """The guest is destroyed: release the claim, SHELVED_OFFLOADED."""
        return bool(await self.client.call(ctx, "shelve_offloaded", instance_uuid=instance_uuid, host=host,
                                           power_state=power_state, event_start=event_start))

    async def shelved_to_offload(self, ctx: RequestContext, host: str, shelved_before: float) -> list[str]:
        """The servers shelved on ``host`` before ``shelved_before`` (epoch
        seconds), now in shelving_offloading for the host to offload."""
        return list(await self.client.call(ctx, "shelved_to_offload", host=host, shelved_before=shelved_before))

    async def unshelve_instance(self, ctx: RequestContext, instance_uuid: str,
                                availability_zone: str | None = None) -> None:
        await self.client.cast(ctx, "unshelve_instance", instance_uuid=instance_uuid,
                               availability_zone=availability_zone)

    async def unshelve_finished(self, ctx: RequestContext, instance_uuid: str, host: str, task_state: str,
                                power_state: int, event: str, event_start: str) -> str | None:
        """The server runs again: ACTIVE. The shelve image to delete ("" if
        none), or None if the server left ``task_state`` meanwhile."""
        found = await self.client.call(ctx, "unshelve_finished", instance_uuid=instance_uuid, host=host,
                                       task_state=task_state, power_state=power_state, event=event,
                                       event_start=event_start)
        return None if found is None else str(found)

    async def unshelve_failed(self, ctx: RequestContext, instance_uuid: str, host: str, task_state: str,
                              reason: str, event_start: str) -> None:
        await self.client.call(ctx, "unshelve_failed", instance_uuid=instance_uuid, host=host,
                               task_state=task_state, reason=reason, event_start=event_start)

    async def claim_reclaimable(self, ctx: RequestContext, host: str, interval: float) -> list[str]:
        """Move the instances on ``host`` soft-deleted more than ``interval``
        seconds ago (and idle) into deleting; their uuids."""
        return list(await self.client.call(ctx, "claim_reclaimable", host=host, interval=interval))

    async def instance_usage_audit(self, ctx: RequestContext, host: str) -> None:
        """Record the usage audit of ``host`` for the last completed hour,
        unless it was recorded already."""
        await self.client.call(ctx, "instance_usage_audit", host=host)

    async def heal_allocations(self, ctx: RequestContext, host: str) -> dict[str, list[str]]:
        """Give each settled instance on ``host`` that holds no allocation in
        placement its flavor's; what was healed, left, and skipped."""
        return dict(await self.client.call(ctx, "heal_allocations", host=host))


class ConductorServiceRegistry:
    """Heartbeats for hosts that never open the database (compute)."""

    def __init__(self, bus: Bus) -> None:
        self.conductor = ConductorAPI(bus)

    async def report(self, ctx: RequestContext, host: str, binary: str, topic: str) -> None:
        await self.conductor.service_report(ctx, host, binary, topic)
