"""Rescuing a server on this host (booting a rescue system with the
server's disks attached) and unrescuing it (booting its own disk again).

As in Nova, a rescue the driver fails leaves the server in ERROR with a
fault; a failed unrescue leaves it rescued, its event an error."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.faults import attempt, fault_of, power_state_or_nostate, reason
from loom.context import RequestContext
from loom.timeutils import utcnow

LOG = logging.getLogger(__name__)


async def rescue(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    started = utcnow().isoformat()
    event = "compute_rescue_instance"
    try:
        await compute.driver.rescue(uuid, None)
    except Exception as exc:
        LOG.warning("rescue of instance %s failed on %s: %s", uuid, compute.host, reason(exc))
        state = await power_state_or_nostate(compute, uuid)
        fault = fault_of(exc, f"Instance {uuid} cannot be rescued: Driver Error: {reason(exc)}")
        await compute.conductor.instance_update(
            ctx, uuid, {"vm_state": "error", "task_state": None, "power_state": int(state), "fault": fault},
            expected_task_state=["rescuing"], event=event, host=compute.host, event_start=started,
            event_result="Error")
        return False
    state = await power_state_or_nostate(compute, uuid)
    return await compute.conductor.instance_update(
        ctx, uuid, {"vm_state": "rescued", "task_state": None, "power_state": int(state), "launched_at": "now"},
        expected_task_state=["rescuing"], event=event, host=compute.host, event_start=started)


async def unrescue(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    started = utcnow().isoformat()
    event = "compute_unrescue_instance"
    ok = await attempt(compute, uuid, "unrescue", compute.driver.unrescue(uuid))
    state = await power_state_or_nostate(compute, uuid)
    values: dict[str, Any] = {"task_state": None, "power_state": int(state)}
    if ok:
        values["vm_state"] = "active"
    await compute.conductor.instance_update(ctx, uuid, values, expected_task_state=["unrescuing"], event=event,
                                            host=compute.host, event_start=started,
                                            event_result="Success" if ok else "Error")
    return ok
