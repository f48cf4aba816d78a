"""Soft delete: with ``compute.reclaim_instance_interval`` above 0, deleting
a server that has launched on a host only puts it aside (Nova's deferred
delete). Its host powers the guest off and the server shows SOFT_DELETED,
keeping its host, its placement allocation and its quota usage, until it is
restored, force-deleted, or reclaimed by its host once the interval has
passed (loom/compute/soft_delete.py)."""

from __future__ import annotations

from loom.api.compute.action_base import target
from loom.api.compute.base import enforce
from loom.api.http import Call
from loom.compute.rpcapi import ComputeAPI
from loom.objects import instances
from loom.timeutils import utcnow


async def soft_delete(call: Call) -> bool:
    """Soft-delete the server of ``DELETE /servers/{id}``; False when it must
    be deleted at once instead: it has no host or never launched (Nova's
    rule), or another operation is under way (it would race the power-off)."""
    async with call.deps.db.session.begin() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
        enforce(call, "os_compute_api:servers:delete", target(row))
        row = await instances.get_for_update(session, call.ctx, row.uuid)
        instances.check_unlocked(call.ctx, row)
        if not row.host or row.launched_at is None or row.task_state is not None:
            return False
        if not await instances.set_fields(session, row.uuid, {"task_state": "soft-deleting", "deleted_at": utcnow()},
                                          expected_task_state=[None]):
            return False
        await instances.start_action(session, call.ctx, row.uuid, "delete")
    await ComputeAPI(call.deps.bus).soft_delete_instance(call.ctx, row.host, row.uuid)
    return True
