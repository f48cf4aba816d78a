"""The periodic power-state sync: the hypervisor is the truth about whether
a guest runs; the database follows it. A guest that stopped or vanished
behind Loom's back becomes SHUTOFF (with an instance action saying so); a
guest running although the server is stopped is powered off again."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.recover import power_state
from loom.context import RequestContext
from loom.virt.driver import PowerState

LOG = logging.getLogger(__name__)
EVENT = "compute_sync_power_state"
_DOWN = (PowerState.SHUTDOWN, PowerState.CRASHED, PowerState.NOSTATE)


async def sync_power_states(compute: Any) -> None:
    ctx = RequestContext.for_service(compute.binary)
    for record in await compute.conductor.instances_on_host(ctx, compute.host):
        if record["task_state"] is not None or record["vm_state"] in ("building", "error"):
            continue  # an operation is under way and will set the state itself
        try:
            await _sync(compute, record)
        except Exception:
            LOG.exception("syncing the power state of %s failed", record["uuid"])


async def _sync(compute: Any, record: dict[str, Any]) -> None:
    uuid, vm_state = record["uuid"], record["vm_state"]
    state = await power_state(compute, uuid)
    ctx = RequestContext.for_service(compute.binary)
    if vm_state == "active" and state in _DOWN:
        why = "was not found on" if state == PowerState.NOSTATE else "was shut down outside Loom on"
        message = f"the guest {why} {compute.host}"
        LOG.warning("instance %s: %s; it is now SHUTOFF", uuid, message)
        await compute.conductor.instance_sync(ctx, uuid, {"vm_state": "stopped", "power_state": int(state)},
                                              action="stop", event=EVENT, host=compute.host, message=message,
                                              expected_vm_state="active")
        return
    if vm_state == "stopped" and state == PowerState.RUNNING:
        LOG.warning("instance %s runs although it is stopped; powering it off", uuid)
        await compute.driver.power_off(uuid)
        state = await power_state(compute, uuid)
    if int(state) != record["power_state"]:
        await compute.conductor.instance_update(ctx, uuid, {"power_state": int(state)}, expected_task_state=[None])
