"""The cold migration and resize workflow, as far as the conductor runs it:

1. the migration record takes over the instance's allocation on the
   source host (placement ``move``), so that
2. the scheduler can claim the destination for the instance itself, with
   the new flavor (not the source host, unless a resize may stay on it;
   only the named host when the admin asked for one);
3. the destination is written into the migration and the destination
   host is asked to prepare (``prep_resize``); the hosts go on from there
   (loom/compute/resize/).

A failure before the hand-over puts the allocation back on the instance
and the server back in its state (move_state.FAILURES["schedule"]). Also
here: what the periodic confirmation and the delete of a server in the
middle of a move need from the database.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select

from loom import placement
from loom.conductor import destination, move_state
from loom.context import RequestContext
from loom.db.models import Migration
from loom.errors import LoomError
from loom.objects import instances, migrations
from loom.scheduler.request import FlavorSpec
from loom.timeutils import utcnow

LOG = logging.getLogger(__name__)
EVENT = "conductor_migrate_server"
_FLAVOR_FIELDS = ("flavorid", "name", "vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap", "extra_specs")
# Migration statuses after the source handed its disk over: the source keeps a copy.
_SOURCE_KEEPS_COPY = ("post-migrating", "finished", "confirming", "reverting")


async def migrate_server(conductor: Any, ctx: RequestContext, instance_uuid: str, migration_id: int,
                         host: str | None, same_host: bool) -> None:
    started = utcnow().isoformat()
    async with conductor.db.session() as session:
        row = await instances.get_any(session, instance_uuid)
        migration = await migrations.get(session, migration_id)
    flavor = row.new_flavor or row.flavor
    try:
        await placement.move(conductor.db, instance_uuid, migration.uuid)
        # The server group comes along, so a move never breaks its policy.
        spec = await destination.request_spec(conductor.db, row)
        spec.flavor = FlavorSpec(**{"extra_specs": {}, **{k: flavor[k] for k in _FLAVOR_FIELDS if k in flavor}})
        spec.ignore_hosts = [] if same_host else [migration.source_compute or ""]
        spec.requested_host = host
        choices = await conductor.scheduler.select_destinations(ctx, spec, [instance_uuid], return_alternates=False)
    except Exception as exc:
        code = exc.status if isinstance(exc, LoomError) else 500
        reason = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
        await move_state.failed(conductor, ctx, instance_uuid, migration_id, "schedule", reason, host=None,
                                event_start=started, power_state=None, code=code)
        return
    chosen = choices[0][0]
    dest = {"dest_compute": chosen.host, "dest_node": chosen.nodename, "dest_host": chosen.host}
    if not await move_state.commit(conductor.db, ctx, instance_uuid, migration_id, {}, dest,
                                   expected_task_state=["resize_prep"], event=EVENT, event_start=started):
        await _abandoned(conductor, instance_uuid, migration_id)
        return
    LOG.info("moving %s from %s to %s (migration %s)", instance_uuid, migration.source_compute, chosen.host,
             migration.uuid)
    try:
        await conductor.compute.prep_resize(ctx, chosen.host, migrations.move_instance(row),
                                            {**migrations.to_dict(migration), **dest}, flavor)
    except Exception as exc:
        await move_state.failed(conductor, ctx, instance_uuid, migration_id, "schedule", f"{exc}", host=None,
                                event_start=started, power_state=None)


async def _abandoned(conductor: Any, instance_uuid: str, migration_id: int) -> None:
    """The instance left resize_prep while it was scheduled: deleted (free
    everything), or the move was undone meanwhile (by a restarting source
    host, which gave the instance its allocation back already)."""
    async with conductor.db.session() as session:
        row = await instances.get_any(session, instance_uuid)
    if row.deleted:
        await placement.release(conductor.db, instance_uuid)
    await move_state.release_migration(conductor.db, migration_id, "error")


async def move_of(conductor: Any, instance_uuid: str) -> dict[str, Any] | None:
    """The instance and its move under way, for a host recovering it."""
    async with conductor.db.session() as session:
        row = await instances.get_any(session, instance_uuid)
        migration = await migrations.holding(session, instance_uuid)
        if migration is None:
            return None
        return {"instance": migrations.move_instance(row), "migration": migrations.to_dict(migration)}


async def confirm_due(conductor: Any, ctx: RequestContext, host: str, window: float) -> int:
    """Confirm the moves to ``host`` waiting in VERIFY_RESIZE for longer
    than ``window`` seconds, as if their owners had (Nova's
    _poll_unconfirmed_resizes); how many were started."""
    cutoff = utcnow() - dt.timedelta(seconds=window)
    started = []
    async with conductor.db.session.begin() as session:
        due = list(await session.scalars(select(Migration).where(
            Migration.dest_compute == host, Migration.status == "finished", Migration.deleted.is_(False),
            Migration.migration_type.in_(("migration", "resize")), Migration.updated_at <= cutoff)))
        for migration in due:
            row = await instances.get_any(session, migration.instance_uuid)
            if row.deleted or row.vm_state != "resized" or row.task_state is not None:
                LOG.info("not confirming migration %s: its instance is %s/%s", migration.uuid, row.vm_state,
                         row.task_state)
                continue
            if await migrations.set_fields(session, migration.id, {"status": "confirming"},
                                           expected_status=("finished",)):
                await instances.start_action(session, ctx, row.uuid, "confirmResize")
                started.append((migrations.move_instance(row), migrations.to_dict(migration)))
    for instance, migration in started:
        LOG.info("confirming the move of %s automatically", instance["uuid"])
        await conductor.compute.confirm_resize(ctx, migration["source_compute"], instance, migration)
    return len(started)


async def forget(conductor: Any, ctx: RequestContext, instance_uuid: str) -> None:
    """The instance was deleted: its move ends and frees what it held,
    including the source's kept copy (as Nova confirms a resize before
    deleting its server)."""
    async with conductor.db.session() as session:
        migration = await migrations.holding(session, instance_uuid)
    if migration is None:
        return
    status = "confirmed" if migration.status in ("finished", "confirming") else "error"
    await move_state.release_migration(conductor.db, migration.id, status)
    if migration.status in _SOURCE_KEEPS_COPY and migration.source_compute:
        await conductor.compute.drop_migration_source(ctx, migration.source_compute, instance_uuid)
