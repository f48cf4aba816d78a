"""Rebuilding a server on this host: the guest is reimaged in place (same
uuid, flavor and host, so its placement allocation stays as it is) and
boots the new image. A server that was stopped is stopped again after, as
Nova does; one rebuilt from ERROR ends ACTIVE. A failed rebuild leaves the
server in ERROR with a fault, never in a task state."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.build import image_source, spec_of
from loom.compute.faults import fault_of, power_state_or_nostate, reason
from loom.context import RequestContext
from loom.timeutils import utcnow

LOG = logging.getLogger(__name__)
EVENT = "compute_rebuild_instance"
REBUILDING, SPAWNING = "rebuilding", "rebuild_spawning"


async def rebuild(compute: Any, ctx: RequestContext, instance: dict[str, Any], orig_vm_state: str,
                  preserve_ephemeral: bool = False) -> bool:
    """Whether the server was rebuilt. ``preserve_ephemeral`` is the
    driver's business; the drivers Loom has keep no ephemeral disk apart."""
    uuid = instance["uuid"]
    started = utcnow().isoformat()
    if not await compute.conductor.instance_update(ctx, uuid, {"task_state": SPAWNING},
                                                   expected_task_state=[REBUILDING]):
        LOG.info("instance %s left %s before its rebuild reached %s", uuid, REBUILDING, compute.host)
        return False
    stopped = orig_vm_state == "stopped"
    try:
        await compute.driver.rebuild(spec_of(instance), image_source(compute, ctx, instance.get("image_ref")))
        if stopped:
            await compute.driver.power_off(uuid)
    except Exception as exc:
        LOG.warning("rebuild of instance %s failed on %s: %s", uuid, compute.host, reason(exc))
        state = await power_state_or_nostate(compute, uuid)
        await compute.conductor.instance_update(
            ctx, uuid, {"vm_state": "error", "task_state": None, "power_state": int(state), "fault": fault_of(exc)},
            expected_task_state=[SPAWNING], event=EVENT, host=compute.host, event_start=started,
            event_result="Error")
        return False
    state = await power_state_or_nostate(compute, uuid)
    return await compute.conductor.instance_update(
        ctx, uuid, {"vm_state": "stopped" if stopped else "active", "task_state": None, "power_state": int(state),
                    "launched_at": "now"},
        expected_task_state=[SPAWNING], event=EVENT, host=compute.host, event_start=started)
