"""Reverting a move: the destination destroys its copy and gives the server
back to the source (host, old flavor and allocations in one step), then
the source brings its kept copy back, running if the server was."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute import recover as reconcile
from loom.compute.resize import common
from loom.context import RequestContext
from loom.virt.driver import PowerState

LOG = logging.getLogger(__name__)
EVENT_DEST = "compute_revert_resize"
EVENT_SOURCE = "compute_finish_revert_resize"


async def revert_resize(compute: Any, ctx: RequestContext, instance: dict[str, Any], migration: dict[str, Any], *,
                        expected: tuple[str, ...] = ("resize_reverting",), final_status: str = "reverted") -> None:
    """On the destination. ``expected``, ``final_status``: a restarting host
    also undoes moves interrupted before VERIFY_RESIZE this way."""
    started = common.now()
    uuid = instance["uuid"]
    try:
        await compute.driver.destroy(uuid)
    except Exception as exc:
        await common.failed(compute, ctx, instance, migration, "revert", exc, started)
        return
    back = {"host": migration["source_compute"], "node": migration["source_node"],
            "flavor": common.old_flavor(instance), "task_state": "resize_reverting",
            "power_state": int(PowerState.SHUTDOWN)}
    if not await compute.conductor.move_update(ctx, uuid, migration["id"], back, {"status": "reverting"},
                                               expected_task_state=list(expected), allocations="revert",
                                               event=EVENT_DEST, host=compute.host, event_start=started):
        LOG.info("the revert of %s ended before the source could take over", uuid)
        return
    await compute.compute_rpc.finish_revert_resize(ctx, migration["source_compute"], instance, migration,
                                                   final_status)


async def finish_revert_resize(compute: Any, ctx: RequestContext, instance: dict[str, Any],
                               migration: dict[str, Any], final_status: str = "reverted") -> None:
    """On the source."""
    started = common.now()
    uuid = instance["uuid"]
    try:
        await compute.driver.finish_revert_migration(common.spec_for(instance, common.old_flavor(instance)),
                                                     common.power_on_after(instance))
    except Exception as exc:
        await common.failed(compute, ctx, instance, migration, "finish_revert", exc, started)
        return
    state = await reconcile.power_state(compute, uuid)
    done = {"vm_state": reconcile.VM_STATE_OF[state], "task_state": None, "power_state": int(state),
            "old_flavor": None, "new_flavor": None}
    if not await compute.conductor.move_update(ctx, uuid, migration["id"], done, {"status": final_status},
                                               expected_task_state=["resize_reverting"], event=EVENT_SOURCE,
                                               host=compute.host, event_start=started):
        LOG.info("instance %s was deleted while its revert finished; destroying it", uuid)
        await compute.driver.destroy(uuid)
