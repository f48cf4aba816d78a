"""Asking a running guest for something: its console log, a new admin
password (through its agent), a crash dump (an NMI). None of these changes
the server's vm_state."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute.faults import attempt
from loom.compute.recover import power_state
from loom.context import RequestContext
from loom.errors import Conflict, LoomError
from loom.timeutils import utcnow
from loom.virt.driver import NotSupported, PowerState

LOG = logging.getLogger(__name__)


async def console_output(compute: Any, uuid: str, length: int | None) -> str:
    return await compute.driver.console_output(uuid, length)


async def set_admin_password(compute: Any, ctx: RequestContext, uuid: str, password: str) -> None:
    """Set the guest's admin password; the server leaves ``updating_password``
    whatever happens. Refusals come back to the caller as Nova words them;
    the password itself is never logged nor put in an error."""
    started = utcnow().isoformat()
    failure: LoomError | None = None
    try:
        if await power_state(compute, uuid) != PowerState.RUNNING:
            failure = Conflict(f"Failed to set admin password on {uuid} because instance {uuid} is not running")
        else:
            await compute.driver.change_password(uuid, password)
    except NotSupported as exc:
        failure = exc
    except Exception as exc:
        # The driver's words may echo what it was given: log the kind only.
        LOG.warning("setting the admin password of %s failed: %s", uuid, type(exc).__name__)
        failure = Conflict(f"Failed to set admin password on {uuid} because error setting admin password")
    await compute.conductor.instance_update(ctx, uuid, {"task_state": None},
                                            expected_task_state=["updating_password"],
                                            event="compute_set_admin_password", host=compute.host,
                                            event_start=started, event_result="Error" if failure else "Success")
    if failure is not None:
        raise failure


async def trigger_crash_dump(compute: Any, ctx: RequestContext, uuid: str) -> bool:
    """Inject an NMI. What follows is up to the guest (it may dump and
    reboot, or stop): the power sync sees to it, as in Nova."""
    started = utcnow().isoformat()
    ok = await attempt(compute, uuid, "crash dump", compute.driver.trigger_crash_dump(uuid))
    await compute.conductor.instance_update(ctx, uuid, {}, event="compute_trigger_crash_dump", host=compute.host,
                                            event_start=started, event_result="Success" if ok else "Error")
    return ok
