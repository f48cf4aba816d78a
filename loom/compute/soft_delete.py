"""Soft delete on this host: power the guest off and mark the server
SOFT_DELETED; restore powers it on again; the reclaim periodic really
deletes the servers soft-deleted longer than
``compute.reclaim_instance_interval`` (Nova's _reclaim_queued_deletes).
A soft-deleted server keeps its guest's disks, its placement allocation
and its quota usage until then."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.faults import power_state_or_nostate
from loom.compute.operation import perform
from loom.compute.recover import VM_STATE_OF
from loom.context import RequestContext
from loom.errors import LoomError
from loom.timeutils import utcnow
from loom.virt.driver import InstanceNotFound

LOG = logging.getLogger(__name__)
SOFT_DELETE_EVENT = "compute_soft_delete_instance"
# Nova runs its reclaim with the default periodic spacing of a minute.
RECLAIM_SPACING = 60.0


def reclaim_spacing(interval: float) -> float:
    """Seconds between reclaim runs for a reclaim interval; 0 (off) when
    soft delete is off."""
    return min(RECLAIM_SPACING, interval) if interval > 0 else 0.0


async def soft_delete(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    """Power the guest off (at once, as Nova's fallback for drivers without
    a soft delete of their own) and end SOFT_DELETED. On a failure the
    server stays what its guest is, no longer soft-deleting."""
    started = utcnow().isoformat()
    try:
        await compute.driver.power_off(uuid)
    except InstanceNotFound:
        LOG.warning("soft delete of %s: no guest on %s; nothing to power off", uuid, compute.host)
    except Exception as exc:
        reason = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
        LOG.warning("soft delete of instance %s failed on %s: %s", uuid, compute.host, reason)
        state = await power_state_or_nostate(compute, uuid)
        await compute.conductor.instance_update(
            ctx, uuid, {"vm_state": VM_STATE_OF[state], "task_state": None, "power_state": int(state),
                        "deleted_at": None},
            expected_task_state=["soft-deleting"], event=SOFT_DELETE_EVENT, host=compute.host, event_start=started,
            event_result="Error")
        return False
    state = await power_state_or_nostate(compute, uuid)
    if not await compute.conductor.instance_update(
            ctx, uuid, {"vm_state": "soft-delete", "task_state": None, "power_state": int(state)},
            expected_task_state=["soft-deleting"], event=SOFT_DELETE_EVENT, host=compute.host, event_start=started):
        LOG.info("instance %s left soft-deleting while it was being done", uuid)
    return True


async def restore(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    """Power the guest on again (Nova's fallback for drivers without a
    restore of their own); the server ends ACTIVE."""
    return await perform(compute, ctx, uuid, "restore", "restoring", "active",
                         lambda: compute.driver.power_on(uuid))


async def reclaim_queued_deletes(compute: Any) -> list[str]:
    """Delete the servers on this host soft-deleted longer than the reclaim
    interval; the uuids deleted. The conductor moves each into deleting
    only if it is still soft-deleted and idle, so a restore sent meanwhile
    wins."""
    interval = compute.settings.reclaim_instance_interval
    if interval <= 0:
        return []
    ctx = RequestContext.for_service(compute.binary)
    reclaimed = []
    for uuid in await compute.conductor.claim_reclaimable(ctx, compute.host, interval):
        LOG.info("reclaiming soft-deleted instance %s on %s", uuid, compute.host)
        try:
            await compute.driver.destroy(uuid)
            await compute.conductor.instance_deleted(ctx, uuid, compute.host)
        except Exception:
            LOG.exception("reclaiming instance %s failed; the next run tries again", uuid)
            await compute.conductor.instance_update(ctx, uuid, {"task_state": None}, expected_task_state=["deleting"])
            continue
        reclaimed.append(uuid)
    return reclaimed
