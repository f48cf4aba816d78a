"""On the source: stop the guest and hand its disk to the destination.
The source keeps its copy (and its resources) until the move is
confirmed or reverted; from here on the server's host is the destination."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.resize import common
from loom.context import RequestContext
from loom.virt.driver import PowerState

LOG = logging.getLogger(__name__)
EVENT = "compute_resize_instance"


async def resize_instance(compute: Any, ctx: RequestContext, instance: dict[str, Any], migration: dict[str, Any],
                          flavor: dict[str, Any]) -> None:
    started = common.now()
    uuid, dest = instance["uuid"], migration["dest_compute"]
    if not await compute.conductor.move_update(ctx, uuid, migration["id"], {"task_state": "resize_migrating"},
                                               {"status": "migrating"}, expected_task_state=["resize_prep"]):
        LOG.info("the move of %s ended before its source started", uuid)
        return
    try:
        disk_info = await compute.driver.migrate_disk_and_power_off(uuid, dest, common.spec_for(instance, flavor))
    except Exception as exc:
        await common.failed(compute, ctx, instance, migration, "resize_instance", exc, started)
        return
    moved = {"task_state": "resize_migrated", "host": dest, "node": migration["dest_node"],
             "power_state": int(PowerState.SHUTDOWN)}
    if not await compute.conductor.move_update(ctx, uuid, migration["id"], moved, {"status": "post-migrating"},
                                               expected_task_state=["resize_migrating"], event=EVENT,
                                               host=compute.host, event_start=started):
        LOG.info("instance %s was deleted while its disk was handed over; dropping the copy", uuid)
        await compute.driver.confirm_migration(uuid)
        return
    await compute.compute_rpc.finish_resize(ctx, dest, instance, migration, flavor, disk_info)
