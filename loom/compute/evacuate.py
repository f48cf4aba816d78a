"""An evacuation on the hosts taking part.

The destination spawns the server from its image (the fake, like any host
without shared storage, has nothing of the old disk), stopped again if it
was stopped. The source, whose compute service was down meanwhile, removes
the guest it still holds when it starts again (Nova's
``_destroy_evacuated_instances``), after which the conductor releases the
source's allocation and marks the evacuation ``completed``.
"""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.build import clean_up_failed_spawn, image_source, spec_of
from loom.context import RequestContext
from loom.timeutils import utcnow
from loom.virt.driver import PowerState

LOG = logging.getLogger(__name__)


async def evacuate_instance(compute: Any, ctx: RequestContext, instance: dict[str, Any], migration: dict[str, Any],
                            orig_vm_state: str) -> None:
    uuid = instance["uuid"]
    started = utcnow().isoformat()
    if not await compute.conductor.instance_update(ctx, uuid, {"task_state": "rebuild_spawning"},
                                                   expected_task_state=["rebuilding"]):
        # Deleted meanwhile: the conductor frees what the evacuation holds.
        await compute.conductor.evacuation_failed(ctx, uuid, migration, "the server left its evacuation",
                                                  compute.host, started)
        return
    try:
        await compute.driver.spawn(spec_of(instance), image_source(compute, ctx, instance.get("image_ref")))
        if orig_vm_state == "stopped":
            await compute.driver.power_off(uuid, 0)
        state = (await compute.driver.get_info(uuid)).power_state
    except Exception as exc:
        reason = await clean_up_failed_spawn(compute, uuid, exc, "evacuation")
        await compute.conductor.evacuation_failed(ctx, uuid, migration, reason, compute.host, started)
        return
    values = {"vm_state": "stopped" if state == PowerState.SHUTDOWN else "active", "power_state": int(state)}
    if not await compute.conductor.evacuation_finished(ctx, uuid, migration["id"], values, compute.host, started):
        LOG.info("instance %s was deleted during its evacuation; destroying it", uuid)
        await compute.driver.destroy(uuid)


async def destroy_evacuated(compute: Any) -> None:
    """Remove the guests evacuated away from this host while it was down,
    and have their source allocations released."""
    ctx = RequestContext.for_service(compute.binary)
    evacuations = await compute.conductor.evacuations_from_host(ctx, compute.host)
    if not evacuations:
        return
    local = set(await compute.driver.list_instances())
    for migration in evacuations:
        uuid = migration["instance_uuid"]
        if uuid in local:
            LOG.warning("destroying guest %s on %s: it was evacuated to %s while this host was down", uuid,
                        compute.host, migration["dest_compute"])
            await compute.driver.destroy(uuid)
        await compute.conductor.evacuation_cleaned(ctx, migration["id"])
