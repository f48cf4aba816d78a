"""The conductor's part of an evacuation: rebuild a server whose host is
down on another host.

Phases: the migration takes the source's allocation → the scheduler claims
a destination (any host but the source, or the one asked for) → the server
is given that host and the destination's compute service spawns it from
its image. With no destination the allocation is given back and the server
goes to ERROR (as Nova), its migration to ``error``. The source's
allocation stays with the migration until the source's compute service
starts again and removes the guest it left behind (loom/compute/evacuate.py).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from sqlalchemy import select

from loom.conductor import destination, move_state
from loom.conductor.build import instance_dict
from loom.context import RequestContext
from loom.db.models import Migration
from loom.errors import LoomError
from loom.objects import instances, migrations
from loom.timeutils import isotime, utcnow

LOG = logging.getLogger(__name__)
EVENT = "rebuild_server"
COMPUTE_EVENT = "compute_rebuild_instance"
# Evacuations whose source may still hold a guest (Nova's list).
UNCLEANED = ("accepted", "pre-migrating", "done")


async def evacuate(conductor: Any, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                   host: str | None, force: bool, orig_vm_state: str) -> None:
    started = utcnow()
    row = await destination.load(conductor.db, instance_uuid)
    source = row.host or ""
    try:
        chosen = await destination.claim(conductor, ctx, row, migration["uuid"], host, force)
    except LoomError as exc:
        LOG.info("no destination to evacuate %s to: %s", instance_uuid, exc.message)
        await _no_destination(conductor, ctx, instance_uuid, migration["id"], exc, started)
        return
    async with conductor.db.session.begin() as session:
        await migrations.set_fields(session, migration["id"], {"status": "pre-migrating",
                                                               "dest_compute": chosen.host,
                                                               "dest_node": chosen.nodename})
        # The server belongs to its new host from here: a restart there settles it.
        moved = await instances.update_fields(session, instance_uuid, {
            "host": chosen.host, "node": chosen.nodename,
            "availability_zone": chosen.availability_zone or row.availability_zone},
            expected_task_state=["rebuilding"])
        if moved is not None:
            await instances.event(session, ctx.request_id, instance_uuid, EVENT, host=None, start=started,
                                  result="Success")
    if moved is None:
        LOG.info("instance %s left the evacuation before it was sent (deleted?)", instance_uuid)
        await destination.give_back(conductor.db, instance_uuid, migration["uuid"])
        await move_state.release_migration(conductor.db, migration["id"], "error")
        return
    migration = {**migration, "status": "pre-migrating", "dest_compute": chosen.host,
                 "dest_node": chosen.nodename, "source_compute": source}
    await conductor.compute.evacuate_instance(ctx, chosen.host, instance_dict(moved), migration, orig_vm_state)


async def _no_destination(conductor: Any, ctx: RequestContext, instance_uuid: str, migration_id: int,
                          exc: LoomError, started: Any) -> None:
    fault = {"code": exc.status, "message": exc.message[:255], "details": "", "created": isotime(utcnow())}
    async with conductor.db.session.begin() as session:
        await migrations.set_fields(session, migration_id, {"status": "error"})
        await instances.set_fields(session, instance_uuid, {"vm_state": "error", "task_state": None,
                                                            "fault": fault}, expected_task_state=["rebuilding"])
        await instances.event(session, ctx.request_id, instance_uuid, EVENT, host=None, start=started,
                              result="Error",
                              traceback="".join(traceback.format_exception(exc)) if exc.status >= 500 else None)


async def finished(conductor: Any, ctx: RequestContext, instance_uuid: str, migration_id: int,
                   values: dict[str, Any], host: str, event_start: str) -> bool:
    """The destination runs the server: the evacuation is ``done`` (its
    migration keeps the source's allocation until the source is cleaned)."""
    return await move_state.commit(
        conductor.db, ctx, instance_uuid, migration_id, {**values, "task_state": None, "launched_at": utcnow()},
        {"status": "done"}, expected_task_state=["rebuilding", "rebuild_spawning"], event=COMPUTE_EVENT,
        host=host, event_start=event_start)


async def failed(conductor: Any, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any], reason: str,
                 host: str, event_start: str) -> None:
    """The destination could not spawn it (and cleaned up): the server goes
    back to its source in ERROR with a fault, holding the source's
    allocation again; the destination's claim is released."""
    fault = {"code": 500, "message": reason[:255], "details": reason, "created": isotime(utcnow())}
    done = await move_state.commit(
        conductor.db, ctx, instance_uuid, migration["id"],
        {"vm_state": "error", "task_state": None, "power_state": 0, "fault": fault,
         "host": migration["source_compute"], "node": migration.get("source_node")},
        {"status": "failed"}, expected_task_state=["rebuilding", "rebuild_spawning"], allocations_change="revert",
        event=COMPUTE_EVENT, host=host, event_start=event_start, event_result="Error")
    if not done:
        await move_state.release_migration(conductor.db, migration["id"], "failed")


async def uncleaned_from(conductor: Any, host: str) -> list[dict[str, Any]]:
    """The evacuations away from ``host`` whose leftovers there were not
    removed yet."""
    async with conductor.db.session() as session:
        rows = await session.scalars(select(Migration).where(
            Migration.source_compute == host, Migration.migration_type == "evacuation",
            Migration.status.in_(UNCLEANED), Migration.deleted.is_(False)))
        return [migrations.to_dict(r) for r in rows]


async def cleaned(conductor: Any, migration_id: int) -> None:
    """The source removed its copy: the evacuation is ``completed`` and the
    source's allocation (held by the migration) is released."""
    await move_state.release_migration(conductor.db, migration_id, "completed")
