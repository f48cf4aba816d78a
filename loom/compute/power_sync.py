"""The periodic power-state sync: the hypervisor is the truth about whether
a guest runs; the database follows it. A guest that stopped behind Loom's
back makes its server SHUTOFF (with an instance action saying so); a guest
running although its server is stopped is powered off again. A guest the
hypervisor does not find is only logged, as Nova does (the hypervisor may
be restarting); the compute service's next start settles it. Every write
expects the task state to be still none, so a user's action that started
meanwhile wins."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.recover import power_state
from loom.context import RequestContext
from loom.virt.driver import PowerState

LOG = logging.getLogger(__name__)
EVENT = "compute_sync_power_state"


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
    if vm_state == "active" and state in (PowerState.SHUTDOWN, PowerState.CRASHED):
        message = f"the guest was shut down outside Loom on {compute.host}"
        if await compute.conductor.instance_sync(ctx, uuid, {"vm_state": "stopped", "power_state": int(state)},
                                                 action="stop", event=EVENT, host=compute.host, message=message,
                                                 expected_vm_state="active", expected_task_state=[None]):
            LOG.warning("instance %s: %s; it is now SHUTOFF", uuid, message)
        return
    if vm_state == "active" and state == PowerState.NOSTATE:
        LOG.warning("instance %s is unexpectedly not found on %s; ignored until the next start", uuid,
                    compute.host)
    if vm_state == "stopped" and state == PowerState.RUNNING:
        # Claim the server first, so that a start the user sends meanwhile is refused, not undone.
        if not await compute.conductor.instance_update(ctx, uuid, {"task_state": "powering-off"},
                                                       expected_task_state=[None]):
            return
        LOG.warning("instance %s runs although it is stopped; powering it off", uuid)
        try:
            await compute.driver.power_off(uuid)
        finally:
            state = await power_state(compute, uuid)
            await compute.conductor.instance_update(ctx, uuid, {"task_state": None, "power_state": int(state)},
                                                    expected_task_state=["powering-off"])
        return
    if int(state) != record["power_state"]:
        await compute.conductor.instance_update(ctx, uuid, {"power_state": int(state)}, expected_task_state=[None])
