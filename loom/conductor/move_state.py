"""State changes of a cold migration or resize, made for the hosts taking
part (which never open the database): the instance, its migration record
and their placement allocations change in one transaction, so that after
every step, and every failure, the allocations match where the server is.

While a move is under way the migration's uuid holds the source host's
allocation and the instance's uuid the destination's. ``ALLOCATIONS``
names what a step does to them:

- ``revert``: the instance takes the migration's allocation back (and
  loses the destination's), as on a failed start or a revert;
- ``confirm``: the migration's allocation is released (the server stays
  on the destination).

What each failed step leaves (``FAILURES``) is listed in docs/lifecycle.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from loom.context import RequestContext
from loom.db.engine import Database
from loom.objects import instances, migrations
from loom.placement import allocations
from loom.placement.errors import ProviderGenerationRace
from loom.timeutils import isotime, utcnow

LOG = logging.getLogger(__name__)
ALLOCATIONS = ("revert", "confirm")
RETRIES = 10


@dataclass(frozen=True)
class Failure:
    """Where a server ends when a step fails: ``on`` "source" (the move is
    undone) or "destination" (the server stays where the step left it);
    ``error``: whether it goes to ERROR with a fault (else back to the
    state it had); ``allocations``: what happens to them; ``drop_source``:
    whether the source's kept copy is deleted; ``expected``: the task states
    the server is in when the step fails."""

    event: str
    on: str
    error: bool
    allocations: str | None
    expected: tuple[str | None, ...]
    drop_source: bool = False


FAILURES: dict[str, Failure] = {
    "schedule": Failure("conductor_migrate_server", "source", False, "revert", ("resize_prep",)),
    "prep": Failure("compute_prep_resize", "source", False, "revert", ("resize_prep",)),
    "resize_instance": Failure("compute_resize_instance", "source", True, "revert",
                               ("resize_prep", "resize_migrating")),
    "finish": Failure("compute_finish_resize", "destination", True, "confirm", ("resize_migrated", "resize_finish"),
                      drop_source=True),
    "confirm": Failure("compute_confirm_resize", "destination", True, "confirm", (None,)),
    "revert": Failure("compute_revert_resize", "destination", True, "confirm", ("resize_reverting",),
                      drop_source=True),
    "finish_revert": Failure("compute_finish_revert_resize", "source", True, None, ("resize_reverting",)),
}


async def _apply_allocations(session: AsyncSession, instance_uuid: str, migration_uuid: str, what: str) -> None:
    held = await allocations.for_consumer(session, migration_uuid)
    if not held.allocations:
        return  # already done (a repeated step), or never moved
    wanted = {migration_uuid: allocations.ConsumerAllocations({})}
    if what == "revert":
        back = {rp: dict(entry["resources"]) for rp, entry in held.allocations.items()}
        wanted[instance_uuid] = allocations.ConsumerAllocations(back, held.project_id, held.user_id,
                                                                consumer_type=held.consumer_type)
    await allocations.replace(session, wanted)


async def commit(db: Database, ctx: RequestContext, instance_uuid: str, migration_id: int,
                 instance_values: dict[str, Any], migration_values: dict[str, Any], *,
                 expected_task_state: list[str | None], expected_vm_state: str | None = None,
                 allocations_change: str | None = None, event: str | None = None, host: str | None = None,
                 event_start: str | None = None, event_result: str = "Success") -> bool:
    """One step: update the instance (only if it is still in one of
    ``expected_task_state``), its migration and the allocations, and record
    ``event``, all in one transaction. False (nothing changed) if the
    instance moved on meanwhile (deleted, most likely)."""
    if allocations_change is not None and allocations_change not in ALLOCATIONS:
        raise ValueError(f"unknown allocation change {allocations_change!r}")
    start = dt.datetime.fromisoformat(event_start) if event_start else utcnow()
    for attempt in range(RETRIES):
        try:
            async with db.session.begin() as session:
                if not await instances.set_fields(session, instance_uuid, instance_values, expected_task_state,
                                                  expected_vm_state=expected_vm_state):
                    return False
                migration = await migrations.get(session, migration_id)
                if migration_values:
                    await migrations.set_fields(session, migration_id, migration_values)
                if allocations_change:
                    await _apply_allocations(session, instance_uuid, migration.uuid, allocations_change)
                if event:
                    await instances.event(session, ctx.request_id, instance_uuid, event, host=host, start=start,
                                          result=event_result)
            return True
        except ProviderGenerationRace:
            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
    raise RuntimeError(f"allocations of instance {instance_uuid} kept changing during its move")


async def release_migration(db: Database, migration_id: int, status: str) -> None:
    """The migration ends (``status``) and frees what it held: its instance
    is gone or no longer in the move."""
    async with db.session.begin() as session:
        migration = await migrations.get(session, migration_id)
        await migrations.set_fields(session, migration_id, {"status": status})
        await allocations.replace(session, {migration.uuid: allocations.ConsumerAllocations({})})


async def failed(conductor: Any, ctx: RequestContext, instance_uuid: str, migration_id: int, step: str,
                 reason: str, *, host: str | None, event_start: str | None, power_state: int | None,
                 code: int = 500) -> None:
    """A step of the move failed (the host cleaned up after itself): put
    the server, the migration and the allocations where FAILURES says."""
    rule = FAILURES[step]
    async with conductor.db.session() as session:
        row = await instances.get_any(session, instance_uuid)
        migration = await migrations.get(session, migration_id)
    values: dict[str, Any] = {"task_state": None, "old_flavor": None, "new_flavor": None}
    if rule.on == "destination":
        values.update(host=migration.dest_compute, node=migration.dest_node,
                      flavor=row.new_flavor if row.new_flavor and step == "finish" else row.flavor)
    if power_state is not None:
        values["power_state"] = power_state
    if rule.error:
        values["vm_state"] = "error"
        values["fault"] = {"code": code, "message": reason[:255], "details": reason if code >= 500 else "",
                           "created": isotime(utcnow())}
    LOG.warning("%s of the move of %s (migration %s) failed: %s", step, instance_uuid, migration.uuid, reason)
    done = await commit(conductor.db, ctx, instance_uuid, migration_id, values, {"status": "error"},
                        expected_task_state=list(rule.expected),
                        expected_vm_state="resized" if step == "confirm" else None,
                        allocations_change=rule.allocations, event=rule.event, host=host, event_start=event_start,
                        event_result="Error")
    if not done:
        # The instance went on without the move (deleted): nothing may stay held for it.
        await release_migration(conductor.db, migration_id, "error")
    if rule.drop_source and migration.source_compute:
        await conductor.compute.drop_migration_source(ctx, migration.source_compute, instance_uuid)
