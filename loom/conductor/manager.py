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
from loom.conductor import build
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
    async def instance_deleted(self, ctx: RequestContext, instance_uuid: str, host: str) -> None:
        """The host destroyed the instance: free its claim, then mark it
        deleted, so that once a server is gone its resources are too (a
        restart between the two finishes the delete again)."""
        await placement.release(self.db, instance_uuid)
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
    async def instances_on_host(self, ctx: RequestContext, host: str) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            rows = await session.scalars(select(Instance).where(Instance.host == host, Instance.deleted.is_(False)))
            return [{"uuid": r.uuid, "vm_state": r.vm_state, "task_state": r.task_state,
                     "power_state": r.power_state} for r in rows]
