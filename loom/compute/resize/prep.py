"""On the destination: check that the instance fits here with its new
flavor, then ask the source to hand it over. The claim itself is in
placement already (the scheduler made it for the instance)."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.resize import common
from loom.context import RequestContext

LOG = logging.getLogger(__name__)
EVENT = "compute_prep_resize"


async def prep_resize(compute: Any, ctx: RequestContext, instance: dict[str, Any], migration: dict[str, Any],
                      flavor: dict[str, Any]) -> None:
    started = common.now()
    uuid = instance["uuid"]
    try:
        compute.driver.check_capability("resize")
        await compute.driver.prepare_migration(common.spec_for(instance, flavor))
    except Exception as exc:
        await common.failed(compute, ctx, instance, migration, "prep", exc, started, read_power=False)
        return
    if not await compute.conductor.move_update(ctx, uuid, migration["id"], {}, {}, expected_task_state=["resize_prep"],
                                               event=EVENT, host=compute.host, event_start=started):
        LOG.info("the move of %s ended before its destination was ready", uuid)
        return
    await compute.compute_rpc.resize_instance(ctx, migration["source_compute"], instance, migration, flavor)
