"""What a compute service does when it starts: reconcile each instance the
database places on this host with what the hypervisor really has, so that
nothing stays in BUILD or in a task state across a restart, a server whose
guest should run but does not is SHUTOFF with a "stop" action saying so
(never a silent loss), and remove the guests of deleted instances. A guest
the database places elsewhere (a migration under way) or does not know is
left alone and logged, as Nova does: destroying it could lose someone's
machine."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loom.compute import evacuate
from loom.compute.build import EVENT as BUILD_EVENT
from loom.compute.resize import recover as move_recover
from loom.context import RequestContext
from loom.timeutils import isotime, utcnow
from loom.virt.driver import InstanceNotFound, PowerState

LOG = logging.getLogger(__name__)
EVENT = "compute_init_host"
# How long a restarted host waits for redelivered builds before it gives
# up on the builds it found interrupted, and how often it looks.
DRAIN_WAIT, DRAIN_POLL = 30.0, 0.5
# Where an interrupted operation leaves the server, from the guest's power state.
VM_STATE_OF = {PowerState.RUNNING: "active", PowerState.PAUSED: "paused", PowerState.SUSPENDED: "suspended",
               PowerState.SHUTDOWN: "stopped", PowerState.CRASHED: "stopped", PowerState.NOSTATE: "stopped"}
# How a guest that should run may be found at start, besides not at all.
FOUND = {PowerState.SHUTDOWN: "found shut down", PowerState.CRASHED: "found crashed"}


async def power_state(compute: Any, uuid: str) -> PowerState:
    """The guest's power state, NOSTATE when the hypervisor has no such guest."""
    try:
        return (await compute.driver.get_info(uuid)).power_state
    except InstanceNotFound:
        return PowerState.NOSTATE


async def recover_host(compute: Any) -> None:
    ctx = RequestContext.for_service(compute.binary)
    # First, so that their guests are not taken for strays below.
    await evacuate.destroy_evacuated(compute)
    known = await compute.conductor.instances_on_host(ctx, compute.host)
    for record in known:
        try:
            await _recover(compute, record)
        except Exception:
            # One instance must not keep the host from starting; the power
            # sync looks at it again later.
            LOG.exception("could not reconcile instance %s on %s", record["uuid"], compute.host)
    owned = {r["uuid"] for r in known}
    strays = [uuid for uuid in await compute.driver.list_instances() if uuid not in owned]
    states = await compute.conductor.instance_states(ctx, strays) if strays else {}
    for uuid in strays:
        state = states.get(uuid)
        if state is not None and state["deleted"]:
            LOG.warning("destroying guest %s on %s: its instance was deleted", uuid, compute.host)
            await compute.driver.destroy(uuid)
        elif state is None:
            LOG.warning("guest %s on %s belongs to no instance Loom knows; left alone", uuid, compute.host)
        else:
            LOG.warning("guest %s on %s belongs to an instance on host %s; left alone", uuid, compute.host,
                        state["host"])


async def _recover(compute: Any, record: dict[str, Any]) -> None:
    uuid, task, vm_state = record["uuid"], record["task_state"], record["vm_state"]
    ctx = RequestContext.for_service(compute.binary)
    if task == "deleting":
        LOG.info("finishing the delete of %s interrupted by a restart", uuid)
        await compute.driver.destroy(uuid)
        await compute.conductor.instance_deleted(ctx, uuid, compute.host)
        return
    if task in move_recover.TASKS and await move_recover.recover(compute, record):
        return
    if task == "migrating":
        from loom.compute import live_migrate  # live migration builds on this module

        if await live_migrate.recover(compute, record):
            return
    state = await power_state(compute, uuid)
    if vm_state == "building":
        await _recover_build(compute, ctx, record, state)
        return
    if vm_state == "shelved_offloaded" and task == "spawning":
        from loom.compute import shelve  # shelve builds on this module

        await shelve.recover_unshelve(compute, ctx, uuid, state)
        return
    # A guest that should run but does not (its process was killed, the host
    # rebooted) makes its server SHUTOFF now, with a "stop" action saying why.
    vanished = vm_state in ("active", "paused") and (
        state == PowerState.NOSTATE or (task is None and state in FOUND))
    if task is None and not vanished:
        return  # settled; the power sync takes care of drift
    values: dict[str, Any] = {"task_state": None, "power_state": int(state)}
    if vm_state in ("active", "stopped", "paused", "suspended"):
        values["vm_state"] = VM_STATE_OF[state]
    if vanished:
        message = f"the guest was {FOUND.get(state, 'not found')} on {compute.host} when its compute service started"
        action = "stop"
    else:
        message = f"{task} was interrupted by a restart of the compute service on {compute.host}"
        action = "reset"
    LOG.warning("instance %s: %s", uuid, message)
    await compute.conductor.instance_sync(ctx, uuid, values, action=action, event=EVENT, host=compute.host,
                                          result="Success" if action == "stop" else "Error", message=message[:255])


async def _recover_build(compute: Any, ctx: RequestContext, record: dict[str, Any], state: PowerState) -> None:
    uuid = record["uuid"]
    if state == PowerState.RUNNING:
        # The guest came up but the report was lost with the old process.
        await compute.conductor.instance_update(
            ctx, uuid, {"vm_state": "active", "task_state": None, "power_state": int(state), "launched_at": "now"},
            expected_task_state=[record["task_state"]], event=BUILD_EVENT, host=compute.host)
        return
    if state == PowerState.NOSTATE and record["task_state"] == "spawning":
        # Its build message may still be waiting for this service (a durable
        # broker redelivers what the old process never finished): decided
        # once the queue is drained (settle_interrupted_builds).
        compute.interrupted_builds.append(record)
        return
    await _fail_build(compute, ctx, uuid, state)


async def settle_interrupted_builds(compute: Any, drained: Callable[[], Awaitable[bool]]) -> None:
    """Once no message waits for this host (or after DRAIN_WAIT seconds),
    the interrupted builds that no redelivered message took up go to ERROR."""
    deadline = time.monotonic() + DRAIN_WAIT
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:  # twice: a message may be between queue and handler
        quiet = quiet + 1 if await drained() else 0
        await asyncio.sleep(DRAIN_POLL)
    ctx = RequestContext.for_service(compute.binary)
    records, compute.interrupted_builds = compute.interrupted_builds, []
    for record in records:
        uuid = record["uuid"]
        if uuid in compute.building:
            continue  # redelivered: its build goes on
        try:
            state = await power_state(compute, uuid)
            if state == PowerState.NOSTATE:
                await _fail_build(compute, ctx, uuid, state)
        except Exception:
            LOG.exception("could not settle the interrupted build of %s on %s", uuid, compute.host)


async def _fail_build(compute: Any, ctx: RequestContext, uuid: str, state: PowerState) -> None:
    if state != PowerState.NOSTATE:
        await compute.driver.destroy(uuid)
    message = f"The build was interrupted by a restart of the compute service on {compute.host}."
    fault = {"code": 500, "message": message, "details": message, "created": isotime(utcnow())}
    await compute.conductor.instance_sync(
        ctx, uuid, {"vm_state": "error", "task_state": None, "power_state": 0, "fault": fault}, action="reset",
        event=EVENT, host=compute.host, result="Error", message=message[:255], expected_vm_state="building")
