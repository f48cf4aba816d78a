"""The conductor: runs workflows and owns database access on behalf of
compute hosts, which never open the database themselves. Its methods only
dispatch; each workflow lives in its own module."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from loom import placement
from loom.bus.rpc import Bus, expose
from loom.compute.rpcapi import ComputeAPI
from loom.conductor import (
    build,
    evacuate,
    heal,
    live_migrate,
    migrate,
    move_state,
    rebuild,
    reclaim,
    shelve,
    unshelve,
    usage_audit,
)
from loom.conductor.rpcapi import TOPIC
from loom.context import RequestContext
from loom.db import services
from loom.db.engine import Database
from loom.db.models import Instance
from loom.manager import Manager
from loom.objects import compute_nodes, instances, server_groups
from loom.scheduler.hosts import compute_node_uuid
from loom.scheduler.rpcapi import SchedulerAPI
from loom.timeutils import utcnow


class ConductorManager(Manager):
    binary = "loom-conductor"
    topic = TOPIC

    def __init__(self, host: str, db: Database, bus: Bus) -> None:
        super().__init__(host)
        self.db = db
        self.scheduler = SchedulerAPI(bus)
        self.compute = ComputeAPI(bus)

    @expose
    async def service_report(self, ctx: RequestContext, host: str, binary: str, topic: str) -> None:
        await services.report(self.db, host, binary, topic)

    @expose
    async def build_instances(self, ctx: RequestContext, spec: dict[str, Any], instance_uuids: list[str]) -> None:
        await build.build_instances(self, ctx, spec, instance_uuids)

    @expose
    async def reschedule(self, ctx: RequestContext, instance_uuid: str, spec: dict[str, Any],
                         alternates: list[dict[str, Any]], failed_host: str, reason: str) -> None:
        await build.reschedule(self, ctx, instance_uuid, spec, alternates, failed_host, reason)

    @expose
    async def rebuild_instance(self, ctx: RequestContext, instance_uuid: str, orig_image_ref: str | None,
                               orig_vm_state: str, spec: dict[str, Any], preserve_ephemeral: bool = False) -> None:
        await rebuild.rebuild_instance(self, ctx, instance_uuid, orig_image_ref, orig_vm_state, spec,
                                       preserve_ephemeral)

    @expose
    async def instance_update(self, ctx: RequestContext, instance_uuid: str, values: dict[str, Any],
                              expected_task_state: list[str | None] | None = None, event: str | None = None,
                              host: str | None = None, event_start: str | None = None,
                              event_result: str = "Success") -> bool:
        if "launched_at" in values and values["launched_at"] == "now":
            values = {**values, "launched_at": utcnow()}
        async with self.db.session.begin() as session:
            updated = await instances.set_fields(session, instance_uuid, values, expected_task_state)
            if updated and event:
                start = dt.datetime.fromisoformat(event_start) if event_start else utcnow()
                await instances.event(session, ctx.request_id, instance_uuid, event, host=host, start=start,
                                      result=event_result)
        return updated

    @expose
    async def claim_reclaimable(self, ctx: RequestContext, host: str, interval: float) -> list[str]:
        return await reclaim.claim_reclaimable(self, ctx, host, interval)

    @expose
    async def instance_usage_audit(self, ctx: RequestContext, host: str) -> None:
        await usage_audit.audit_host(self, host)

    @expose
    async def heal_allocations(self, ctx: RequestContext, host: str) -> dict[str, list[str]]:
        return await heal.heal_host(self, host)

    @expose
    async def migrate_server(self, ctx: RequestContext, instance_uuid: str, migration_id: int, host: str | None,
                             same_host: bool) -> None:
        await migrate.migrate_server(self, ctx, instance_uuid, migration_id, host, same_host)

    @expose
    async def move_update(self, ctx: RequestContext, instance_uuid: str, migration_id: int,
                          instance_values: dict[str, Any], migration_values: dict[str, Any],
                          expected_task_state: list[str | None], expected_vm_state: str | None = None,
                          allocations: str | None = None, event: str | None = None, host: str | None = None,
                          event_start: str | None = None) -> bool:
        return await move_state.commit(self.db, ctx, instance_uuid, migration_id, instance_values, migration_values,
                                       expected_task_state=expected_task_state, expected_vm_state=expected_vm_state,
                                       allocations_change=allocations, event=event, host=host,
                                       event_start=event_start)

    @expose
    async def move_failed(self, ctx: RequestContext, instance_uuid: str, migration_id: int, step: str, reason: str,
                          host: str | None, event_start: str | None, power_state: int | None) -> None:
        await move_state.failed(self, ctx, instance_uuid, migration_id, step, reason, host=host,
                                event_start=event_start, power_state=power_state)

    @expose
    async def move_of(self, ctx: RequestContext, instance_uuid: str) -> dict[str, Any] | None:
        return await migrate.move_of(self, instance_uuid)

    @expose
    async def confirm_due_resizes(self, ctx: RequestContext, host: str, window: float) -> int:
        return await migrate.confirm_due(self, ctx, host, window)

    @expose
    async def instance_deleted(self, ctx: RequestContext, instance_uuid: str, host: str) -> None:
        """The host destroyed the instance: free its claim, then mark it
        deleted, so that once a server is gone its resources are too (a
        restart between the two finishes the delete again)."""
        await placement.release(self.db, instance_uuid)
        await migrate.forget(self, ctx, instance_uuid)
        async with self.db.session.begin() as session:
            now = utcnow()
            await instances.set_fields(session, instance_uuid, {
                "vm_state": "deleted", "task_state": None, "power_state": 0, "deleted": True, "deleted_at": now,
                "terminated_at": now})
            await server_groups.remove_member(session, instance_uuid)
            await instances.event(session, ctx.request_id, instance_uuid, "compute_terminate_instance",
                                  host=host, start=now, result="Success")

    @expose
    async def update_available_resource(self, ctx: RequestContext, host: str, resources: dict[str, Any]) -> None:
        """A compute host's inventory, as a resource provider in placement."""
        uuid = compute_node_uuid(host)
        await placement.ensure_provider(self.db, uuid, host)
        await placement.set_inventory(self.db, uuid, resources["inventories"])
        if "node" in resources:
            await compute_nodes.report(self.db, uuid, host, resources["node"])

    @expose
    async def instance_sync(self, ctx: RequestContext, instance_uuid: str, values: dict[str, Any], action: str,
                            event: str, host: str, result: str = "Success", message: str | None = None,
                            expected_vm_state: str | None = None,
                            expected_task_state: list[str | None] | None = None) -> bool:
        async with self.db.session.begin() as session:
            if not await instances.set_fields(session, instance_uuid, values, expected_task_state,
                                              expected_vm_state=expected_vm_state):
                return False
            await instances.start_action(session, ctx, instance_uuid, action, message=message)
            await instances.event(session, ctx.request_id, instance_uuid, event, host=host, start=utcnow(),
                                  result=result)
        return True

    @expose
    async def instance_states(self, ctx: RequestContext, instance_uuids: list[str]) -> dict[str, dict[str, Any]]:
        async with self.db.session() as session:
            rows = await session.execute(select(Instance.uuid, Instance.host, Instance.deleted)
                                         .where(Instance.uuid.in_(instance_uuids)))
            return {uuid: {"host": host, "deleted": bool(deleted)} for uuid, host, deleted in rows}

    @expose
    async def shelve_finished(self, ctx: RequestContext, instance_uuid: str, host: str, image_id: str,
                              power_state: int, offload: bool, event_start: str) -> bool:
        return await shelve.shelve_finished(self, ctx, instance_uuid, host, image_id, power_state, offload,
                                            event_start)

    @expose
    async def shelve_offloaded(self, ctx: RequestContext, instance_uuid: str, host: str, power_state: int,
                               event_start: str) -> bool:
        return await shelve.shelve_offloaded(self, ctx, instance_uuid, host, power_state, event_start)

    @expose
    async def shelved_to_offload(self, ctx: RequestContext, host: str, shelved_before: float) -> list[str]:
        return await shelve.shelved_to_offload(self, ctx, host, shelved_before)

    @expose
    async def unshelve_instance(self, ctx: RequestContext, instance_uuid: str,
                                availability_zone: str | None = None) -> None:
        await unshelve.unshelve_instance(self, ctx, instance_uuid, availability_zone)

    @expose
    async def unshelve_finished(self, ctx: RequestContext, instance_uuid: str, host: str, task_state: str,
                                power_state: int, event: str, event_start: str) -> str | None:
        return await unshelve.unshelve_finished(self, ctx, instance_uuid, host, task_state, power_state, event,
                                                event_start)

    @expose
    async def unshelve_failed(self, ctx: RequestContext, instance_uuid: str, host: str, task_state: str,
                              reason: str, event_start: str) -> None:
        await unshelve.unshelve_failed(self, ctx, instance_uuid, host, task_state, reason, event_start)

    @expose
    async def live_migrate_instance(self, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                                    host: str | None, block_migration: bool | None, force: bool,
                                    down_time: float) -> None:
        await live_migrate.live_migrate(self, ctx, instance_uuid, migration, host, block_migration, force, down_time)

    @expose
    async def live_migration_finished(self, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                                      values: dict[str, Any], event_start: str) -> bool:
        return await live_migrate.finished(self, ctx, instance_uuid, migration, values, event_start)

    @expose
    async def live_migration_rolled_back(self, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                                         status: str, values: dict[str, Any], event_start: str) -> bool:
        return await live_migrate.rolled_back(self, ctx, instance_uuid, migration, status, values, event_start)

    @expose
    async def live_migration_interrupted(self, ctx: RequestContext, instance_uuid: str, host: str,
                                         values: dict[str, Any]) -> bool:
        return await live_migrate.interrupted(self, ctx, instance_uuid, host, values)

    @expose
    async def migration_update(self, ctx: RequestContext, migration_id: int, values: dict[str, Any],
                               expected_status: list[str] | None = None) -> bool:
        return await live_migrate.update_migration(self, migration_id, values, expected_status)

    @expose
    async def evacuate_instance(self, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                                host: str | None, force: bool, orig_vm_state: str) -> None:
        await evacuate.evacuate(self, ctx, instance_uuid, migration, host, force, orig_vm_state)

    @expose
    async def evacuation_finished(self, ctx: RequestContext, instance_uuid: str, migration_id: int,
                                  values: dict[str, Any], host: str, event_start: str) -> bool:
        return await evacuate.finished(self, ctx, instance_uuid, migration_id, values, host, event_start)

    @expose
    async def evacuation_failed(self, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                                reason: str, host: str, event_start: str) -> None:
        await evacuate.failed(self, ctx, instance_uuid, migration, reason, host, event_start)

    @expose
    async def evacuations_from_host(self, ctx: RequestContext, host: str) -> list[dict[str, Any]]:
        return await evacuate.uncleaned_from(self, host)

    @expose
    async def evacuation_cleaned(self, ctx: RequestContext, migration_id: int) -> None:
        await evacuate.cleaned(self, migration_id)

    @expose
    async def instances_on_host(self, ctx: RequestContext, host: str) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            rows = await session.scalars(select(Instance).where(Instance.host == host, Instance.deleted.is_(False)))
            return [{"uuid": r.uuid, "vm_state": r.vm_state, "task_state": r.task_state,
                     "power_state": r.power_state} for r in rows]
