"""Events other services report about a server (Nova's external instance
events), handled on the server's host. ``power-update`` brings the guest
and the record to the power state reported (as Nova's Ironic driver does);
``volume-extended`` has no attached volume to grow yet; network events
have no waiter until there is a network service, so they are only logged.
Each event is ``{"name", "server_uuid", "status", "tag", "instance":
{"vm_state", "task_state", "power_state"}}``, the instance as the API saw it."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.recover import power_state
from loom.context import RequestContext
from loom.errors import LoomError
from loom.timeutils import utcnow
from loom.virt.driver import PowerState

LOG = logging.getLogger(__name__)
POWER_ON, POWER_OFF = "POWER_ON", "POWER_OFF"
POWER_EVENT = "compute_power_update"
EXTEND_EVENT = "compute_extend_volume"


async def handle(compute: Any, ctx: RequestContext, events: list[dict[str, Any]]) -> None:
    for event in events:
        try:
            await _handle(compute, ctx, event)
        except Exception:
            LOG.exception("handling event %s for instance %s failed", event["name"], event["server_uuid"])


async def _handle(compute: Any, ctx: RequestContext, event: dict[str, Any]) -> None:
    name, uuid, tag = event["name"], event["server_uuid"], event.get("tag")
    if name == "power-update":
        await power_update(compute, ctx, uuid, str(tag), event["instance"])
    elif name == "volume-extended":
        started = utcnow().isoformat()
        LOG.warning("volume %s is not attached to instance %s; nothing to extend", tag, uuid)
        await compute.conductor.instance_update(ctx, uuid, {}, event=EXTEND_EVENT, host=compute.host,
                                                event_start=started)
    else:
        LOG.info("event %s-%s (%s) for instance %s on %s: nothing waits for it", name, tag,
                 event.get("status", "completed"), uuid, compute.host)


def _applies(target: str, instance: dict[str, Any]) -> bool:
    """Nova's rule: only an idle server whose power differs from the target."""
    if instance["task_state"] is not None:
        return False
    if target == POWER_ON:
        return instance["vm_state"] == "stopped" and instance["power_state"] == PowerState.SHUTDOWN
    return instance["vm_state"] == "active" and instance["power_state"] == PowerState.RUNNING


async def power_update(compute: Any, ctx: RequestContext, uuid: str, target: str,
                       instance: dict[str, Any]) -> None:
    started = utcnow().isoformat()
    task = "powering-on" if target == POWER_ON else "powering-off"
    if not _applies(target, instance) or not await compute.conductor.instance_update(
            ctx, uuid, {"task_state": task}, expected_task_state=[None]):
        LOG.info("power-update %s for instance %s is a no-op in vm_state %s, task_state %s", target, uuid,
                 instance["vm_state"], instance["task_state"])
        await compute.conductor.instance_update(ctx, uuid, {}, event=POWER_EVENT, host=compute.host,
                                                event_start=started)
        return
    result = "Success"
    try:
        state = await power_state(compute, uuid)
        # What reported the change may have made it already (a bare-metal
        # node switched off at its console); then there is nothing to do.
        if target == POWER_ON and state in (PowerState.SHUTDOWN, PowerState.CRASHED):
            await compute.driver.power_on(uuid)
        elif target == POWER_OFF and state == PowerState.RUNNING:
            await compute.driver.power_off(uuid)
    except Exception as exc:
        result = "Error"
        reason = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
        LOG.warning("power-update %s of instance %s failed on %s: %s", target, uuid, compute.host, reason)
    try:
        state = await power_state(compute, uuid)
    except Exception:
        LOG.exception("reading the power state of %s failed", uuid)
        state, result = PowerState.NOSTATE, "Error"
    vm_state = "active" if state == PowerState.RUNNING else "stopped"
    await compute.conductor.instance_update(
        ctx, uuid, {"vm_state": vm_state, "task_state": None, "power_state": int(state)},
        expected_task_state=[task], event=POWER_EVENT, host=compute.host, event_start=started, event_result=result)
