"""On the source: confirming a move deletes the copy kept there and frees
the source's allocation (held by the migration). Also the periodic task
that confirms moves left unconfirmed for ``compute.resize_confirm_window``
seconds, and the deletion of a kept copy whose move ended otherwise."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.resize import common
from loom.context import RequestContext
from loom.virt.driver import PowerState

LOG = logging.getLogger(__name__)
EVENT = "compute_confirm_resize"
# How often the host looks for moves to confirm (Nova's default periodic spacing).
SPACING = 60.0


async def confirm_resize(compute: Any, ctx: RequestContext, instance: dict[str, Any],
                         migration: dict[str, Any]) -> None:
    started = common.now()
    uuid = instance["uuid"]
    try:
        await compute.driver.confirm_migration(uuid)
    except Exception as exc:
        await common.failed(compute, ctx, instance, migration, "confirm", exc, started, read_power=False)
        return
    vm_state = "stopped" if instance["power_state"] == int(PowerState.SHUTDOWN) else "active"
    if not await compute.conductor.move_update(
            ctx, uuid, migration["id"], {"vm_state": vm_state, "old_flavor": None, "new_flavor": None},
            {"status": "confirmed"}, expected_task_state=[None], expected_vm_state="resized", allocations="confirm",
            event=EVENT, host=compute.host, event_start=started):
        LOG.info("instance %s left VERIFY_RESIZE while its move was confirmed", uuid)


async def confirm_due(compute: Any) -> int:
    """Have the conductor confirm the moves to this host waiting too long."""
    window = compute.settings.resize_confirm_window
    if window <= 0:
        return 0
    ctx = RequestContext.for_service(compute.binary)
    return await compute.conductor.confirm_due_resizes(ctx, compute.host, window)


async def drop_source(compute: Any, uuid: str) -> None:
    try:
        await compute.driver.confirm_migration(uuid)
    except Exception:
        # Left on the hypervisor, as Nova leaves it: a stray guest for the admin.
        LOG.exception("could not delete the kept copy of %s on %s", uuid, compute.host)
