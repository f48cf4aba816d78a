"""The conductor's part of a live migration: check and claim the
destination, hand the server to its source host, and record how the move
ended (the hosts report through here; they never open the database).

Phases: checks (the source's compute service is up; the destination is
not the source and its compute service is up) → the migration takes the source's allocation → the scheduler
claims the destination for the instance (migration ``preparing``) → the
destination makes room for the guest → the source host is told to copy it.
Any failure before the copy gives the allocations back and leaves the
server where it was, out of its task state, with the migration in
``error``; the source reports how the copy ended (``finished`` or
``rolled_back``).
"""

from __future__ import annotations

import logging
from typing import Any

from loom.conductor import destination, move_state
from loom.conductor.build import instance_dict
from loom.context import RequestContext
from loom.db import services
from loom.errors import Invalid, LoomError
from loom.objects import instances, migrations
from loom.timeutils import utcnow

LOG = logging.getLogger(__name__)
EVENT = "conductor_live_migrate_instance"
COMPUTE_EVENT = "compute_live_migration"
COMPUTE_BINARY = "loom-compute"
IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")


async def live_migrate(conductor: Any, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                       host: str | None, block_migration: bool | None, force: bool, down_time: float) -> None:
    """Raises what refused the move (after undoing it), so that a caller
    waiting for the answer (before microversion 2.34) can report it."""
    started = utcnow()
    try:
        row = await destination.load(conductor.db, instance_uuid)
        source = row.host or ""
        await _check_up(conductor, source, down_time)
        if host == source:
            raise Invalid(f"Unable to migrate instance ({instance_uuid}) to current host ({host}).")
        if host:
            await _check_up(conductor, host, down_time)
        chosen = await destination.claim(conductor, ctx, row, migration["uuid"], host, force)
    except LoomError as exc:
        LOG.info("live migration of %s refused: %s", instance_uuid, exc.message)
        await _refused(conductor, ctx, instance_uuid, migration["id"], started)
        raise
    migration = {**migration, "dest_compute": chosen.host, "dest_node": chosen.nodename,
                 "source_compute": source, "source_node": row.node}
    async with conductor.db.session.begin() as session:
        # Only a queued migration goes on: an abort may have come first.
        await migrations.set_fields(session, migration["id"], {"dest_compute": chosen.host,
                                                               "dest_node": chosen.nodename})
        await migrations.set_fields(session, migration["id"], {"status": "preparing"}, ("queued",))
        await instances.event(session, ctx.request_id, instance_uuid, EVENT, host=None, start=started,
                              result="Success")
    instance = instance_dict(row)
    try:
        migrate_data = await conductor.compute.pre_live_migration(ctx, chosen.host, instance, block_migration)
    except LoomError as exc:
        LOG.warning("pre_live_migration of %s on %s failed: %s", instance_uuid, chosen.host, exc.message)
        values = {"vm_state": row.vm_state, "power_state": row.power_state}
        await rolled_back(conductor, ctx, instance_uuid, migration, "error", values, started.isoformat())
        raise
    await conductor.compute.live_migration(ctx, source, instance, migration, migrate_data)


async def _check_up(conductor: Any, host: str, down_time: float) -> None:
    async with conductor.db.session() as session:
        svc = await services.find(session, host=host, binary=COMPUTE_BINARY)
    if svc is None or not services.is_up(svc, down_time):
        raise Invalid(f"Compute service of {host} is unavailable at this time.")


async def _refused(conductor: Any, ctx: RequestContext, instance_uuid: str, migration_id: int,
                   started: Any) -> None:
    async with conductor.db.session.begin() as session:
        await migrations.set_fields(session, migration_id, {"status": "error"})
        await instances.set_fields(session, instance_uuid, {"task_state": None}, expected_task_state=["migrating"])
        await instances.event(session, ctx.request_id, instance_uuid, EVENT, host=None, start=started,
                              result="Error")


async def finished(conductor: Any, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                   values: dict[str, Any], event_start: str) -> bool:
    """The guest runs on the destination: the server is there, and the
    source's allocation (held by the migration) is released. False if the
    server is being deleted or gone (its guest must go too)."""
    expected: list[str | None] = ["migrating"]
    for _ in range(2):
        if await move_state.commit(
                conductor.db, ctx, instance_uuid, migration["id"],
                {**values, "host": migration["dest_compute"], "node": migration["dest_node"], "task_state": None},
                {"status": "completed"}, expected_task_state=expected, allocations_change="confirm",
                event=COMPUTE_EVENT, host=migration["source_compute"], event_start=event_start):
            return True
        row = await destination.load(conductor.db, instance_uuid)
        if row.deleted or row.task_state == "deleting":
            break
        # Its state was reset meanwhile: the guest runs on the destination all the same.
        expected = [row.task_state]
    await move_state.release_migration(conductor.db, migration["id"], "completed")
    return False


async def rolled_back(conductor: Any, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                      status: str, values: dict[str, Any], event_start: str) -> bool:
    """The guest stayed on the source (failed, or aborted: ``status``
    "error" or "cancelled"): the destination lets its room go, its claim
    is released and the instance holds its source allocation again."""
    try:
        if migration.get("dest_compute"):
            await conductor.compute.rollback_live_migration_at_destination(ctx, migration["dest_compute"],
                                                                           instance_uuid)
    except LoomError:
        LOG.exception("could not tell %s to drop what it prepared for %s", migration["dest_compute"],
                      instance_uuid)
    done = await move_state.commit(
        conductor.db, ctx, instance_uuid, migration["id"], {**values, "task_state": None}, {"status": status},
        expected_task_state=["migrating"], allocations_change="revert", event=COMPUTE_EVENT,
        host=migration["source_compute"], event_start=event_start, event_result="Error")
    if not done:
        await move_state.release_migration(conductor.db, migration["id"], status)
    return done


async def interrupted(conductor: Any, ctx: RequestContext, instance_uuid: str, host: str,
                      values: dict[str, Any]) -> bool:
    """The source's compute service restarted during the instance's live
    migration: the guest stayed (``values``: its state there), the move is
    rolled back and ends in ``error``, as Nova does. False if the instance
    has no live migration under way from ``host``."""
    async with conductor.db.session() as session:
        found = await migrations.of_instance(session, instance_uuid, IN_PROGRESS, "live-migration")
    migration = next((migrations.to_dict(m) for m in found if m.source_compute == host), None)
    if migration is None:
        return False
    await rolled_back(conductor, ctx, instance_uuid, migration, "error", values, utcnow().isoformat())
    return True


async def update_migration(conductor: Any, migration_id: int, values: dict[str, Any],
                           expected_status: list[str] | None = None) -> bool:
    """A host moves a migration on (status, progress); False if its status
    was not one of ``expected_status``."""
    async with conductor.db.session.begin() as session:
        return await migrations.set_fields(session, migration_id, values,
                                           tuple(expected_status) if expected_status is not None else None)
