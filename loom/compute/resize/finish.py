"""On the destination: make the guest from the handed-over disk with the
new flavor, running if the server was (a stopped server stays stopped).
The server then waits in VERIFY_RESIZE for a confirmation or a revert."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute import recover as reconcile
from loom.compute.resize import common
from loom.context import RequestContext

LOG = logging.getLogger(__name__)
EVENT = "compute_finish_resize"


async def finish_resize(compute: Any, ctx: RequestContext, instance: dict[str, Any], migration: dict[str, Any],
                        flavor: dict[str, Any], disk_info: dict[str, Any]) -> None:
    started = common.now()
    uuid = instance["uuid"]
    if not await compute.conductor.move_update(ctx, uuid, migration["id"], {"task_state": "resize_finish"}, {},
                                               expected_task_state=["resize_migrated"]):
        LOG.info("the move of %s ended before it could finish", uuid)
        return
    try:
        await compute.driver.finish_migration(common.spec_for(instance, flavor), disk_info,
                                              common.power_on_after(instance))
    except Exception as exc:
        await common.failed(compute, ctx, instance, migration, "finish", exc, started)
        return
    state = await reconcile.power_state(compute, uuid)
    done = {"vm_state": "resized", "task_state": None, "power_state": int(state), "flavor": flavor}
    if not await compute.conductor.move_update(ctx, uuid, migration["id"], done, {"status": "finished"},
                                               expected_task_state=["resize_finish"], event=EVENT,
                                               host=compute.host, event_start=started):
        LOG.info("instance %s was deleted while its move finished; destroying it", uuid)
        await compute.driver.destroy(uuid)
