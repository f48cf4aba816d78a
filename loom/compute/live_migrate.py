"""A live migration on the hosts taking part.

The destination makes room for the guest (``pre_live_migration``) and lets
it go again if the guest does not come (``rollback_at_destination``). The
source copies the running guest (``live_migration``): migration
``running``, progress written as the copy goes, then the conductor moves
the server to the destination (``completed``) or, on any failure or an
abort, keeps it here as it was (``error`` or ``cancelled``). Aborts and
forced completions reach the copy through ``compute.live_migrations``,
the jobs under way here by migration id.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from loom.compute.build import spec_of
from loom.compute.recover import VM_STATE_OF, power_state
from loom.context import RequestContext
from loom.errors import LoomError
from loom.timeutils import utcnow
from loom.virt.driver import InstanceInvalidState, LiveMigrationAborted, MigrationProgress

LOG = logging.getLogger(__name__)
# Seconds between progress writes (the driver may report more often).
PROGRESS_EVERY = 0.25


@dataclass
class Job:
    """A live migration this host was asked to do: aborted before it
    started copying (``cancelled``), or copying (abort goes to the driver)."""

    instance_uuid: str
    cancelled: bool = False
    forced: bool = False
    copying: bool = False
    # What the driver has been told already.
    told: set[str] = field(default_factory=set)


async def pre_live_migration(compute: Any, ctx: RequestContext, instance: dict[str, Any],
                             block_migration: bool | None) -> dict[str, Any]:
    data = await compute.driver.pre_live_migration(spec_of(instance))
    return {**data, "block_migration": bool(block_migration)}


async def rollback_at_destination(compute: Any, ctx: RequestContext, instance_uuid: str) -> None:
    await compute.driver.rollback_live_migration_at_destination(instance_uuid)


async def live_migration(compute: Any, ctx: RequestContext, instance: dict[str, Any], migration: dict[str, Any],
                         migrate_data: dict[str, Any]) -> None:
    uuid, mid = instance["uuid"], migration["id"]
    started = utcnow().isoformat()
    job = compute.live_migrations.setdefault(mid, Job(uuid))
    try:
        status = await _copy(compute, ctx, job, migration, migrate_data)
    except Exception as exc:
        aborted = isinstance(exc, LiveMigrationAborted)
        reason = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
        LOG.warning("live migration of %s to %s %s: %s", uuid, migration["dest_compute"],
                    "aborted" if aborted else "failed", reason)
        status = "cancelled" if aborted else "error"
    finally:
        compute.live_migrations.pop(mid, None)
    if status == "completed":
        # The guest runs on as it did (active or paused): only its host changes.
        if not await compute.conductor.live_migration_finished(ctx, uuid, migration, {}, started):
            # Deleted while it moved (the delete found no guest here): it goes there too.
            LOG.info("instance %s was deleted during its live migration; destroying it on %s", uuid,
                     migration["dest_compute"])
            await compute.compute_rpc.terminate_instance(ctx, migration["dest_compute"], uuid)
        return
    try:
        state = await power_state(compute, uuid)
        values = {"power_state": int(state), "vm_state": VM_STATE_OF[state]}
    except Exception:
        LOG.exception("reading the power state of %s failed", uuid)
        values = {}
    await compute.conductor.live_migration_rolled_back(ctx, uuid, migration, status, values, started)


async def _copy(compute: Any, ctx: RequestContext, job: Job, migration: dict[str, Any],
                migrate_data: dict[str, Any]) -> str:
    """Copy the guest over; "completed" once it runs on the destination."""
    mid, uuid = migration["id"], job.instance_uuid
    if job.cancelled or not await compute.conductor.migration_update(ctx, mid, {"status": "running"},
                                                                     expected_status=["preparing"]):
        raise LiveMigrationAborted(f"the live migration of instance {uuid} was aborted before it began",
                                   instance=uuid)
    last = 0.0

    async def report(p: MigrationProgress) -> None:
        nonlocal last
        await _tell_driver(compute, job)  # an abort or force that came before the copy began
        now = time.monotonic()
        if now - last < PROGRESS_EVERY and p.memory_remaining:
            return
        last = now
        try:
            await compute.conductor.migration_update(ctx, mid, {
                "memory_total": p.memory_total, "memory_processed": p.memory_processed,
                "memory_remaining": p.memory_remaining, "disk_total": p.disk_total,
                "disk_processed": p.disk_processed, "disk_remaining": p.disk_remaining})
        except Exception:
            LOG.exception("could not record the progress of migration %s", mid)  # the copy goes on

    job.copying = True
    await compute.driver.live_migration(uuid, migration["dest_compute"], migrate_data, report)
    return "completed"


async def recover(compute: Any, record: dict[str, Any]) -> bool:
    """On restart: a live migration from here died with the old process;
    roll it back (the guest is still here). False if there was none."""
    uuid = record["uuid"]
    state = await power_state(compute, uuid)
    values = {"power_state": int(state), "vm_state": VM_STATE_OF[state]}
    ctx = RequestContext.for_service(compute.binary)
    return await compute.conductor.live_migration_interrupted(ctx, uuid, compute.host, values)


async def _tell_driver(compute: Any, job: Job) -> None:
    """Pass an abort or a forced completion on to the copy under way (once;
    if the driver has not begun the copy yet, the next report does)."""
    for wanted, call in (("abort", job.cancelled), ("force", job.forced)):
        if call and wanted not in job.told and job.copying:
            method = compute.driver.live_migration_abort if wanted == "abort" else \
                compute.driver.live_migration_force_complete
            with contextlib.suppress(InstanceInvalidState):
                await method(job.instance_uuid)
                job.told.add(wanted)


async def abort(compute: Any, ctx: RequestContext, instance_uuid: str, migration_id: int) -> None:
    job = compute.live_migrations.get(migration_id)
    if job is None:
        # Not here yet (queued or preparing): it stops as soon as it arrives.
        compute.live_migrations[migration_id] = Job(instance_uuid, cancelled=True)
        return
    job.cancelled = True
    await _tell_driver(compute, job)


async def force_complete(compute: Any, ctx: RequestContext, instance_uuid: str, migration_id: int) -> None:
    job = compute.live_migrations.get(migration_id)
    if job is not None:
        job.forced = True
        await _tell_driver(compute, job)
