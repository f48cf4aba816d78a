"""Running one user action on a guest: call the driver, then report the
result through the conductor. A failed driver call never leaves the server
in its task state: the server follows the guest's real power state and the
action's event records the error."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from loom.compute.faults import power_state_or_nostate
from loom.compute.recover import VM_STATE_OF
from loom.context import RequestContext
from loom.errors import LoomError
from loom.timeutils import utcnow

LOG = logging.getLogger(__name__)


async def perform(
    compute: Any,
    ctx: RequestContext,
    uuid: str,
    name: str,
    task_state: str,
    vm_state: str,
    run: Callable[[], Awaitable[None]],
) -> bool:
    """Run ``run`` (the driver call) for the action ``name`` on the server
    the API moved into ``task_state``; on success the server ends in
    ``vm_state``. Whether the driver call succeeded."""
    started = utcnow().isoformat()
    event = f"compute_{name}_instance"
    try:
        await run()
    except Exception as exc:
        reason = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
        LOG.warning("%s of instance %s failed on %s: %s", name, uuid, compute.host, reason)
        state = await power_state_or_nostate(compute, uuid)
        await compute.conductor.instance_update(
            ctx,
            uuid,
            {"vm_state": VM_STATE_OF[state], "task_state": None, "power_state": int(state)},
            expected_task_state=[task_state],
            event=event,
            host=compute.host,
            event_start=started,
            event_result="Error",
        )
        return False
    state = await power_state_or_nostate(compute, uuid)
    if not await compute.conductor.instance_update(
        ctx,
        uuid,
        {"vm_state": vm_state, "task_state": None, "power_state": int(state)},
        expected_task_state=[task_state],
        event=event,
        host=compute.host,
        event_start=started,
    ):
        LOG.info("instance %s left %s while it was being done (deleted, or taken over)", uuid, task_state)
    return True
