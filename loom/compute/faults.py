"""What a compute host reports when an operation fails: the fault it records
when a server goes to ERROR, in Nova's shape (what ``GET /servers/{id}``
shows as ``fault``), and the guest's power state at that point."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from loom.compute.recover import power_state
from loom.errors import LoomError
from loom.timeutils import isotime, utcnow
from loom.virt.driver import PowerState

LOG = logging.getLogger(__name__)


def reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"


def fault_of(exc: BaseException, message: str | None = None) -> dict[str, Any]:
    """``message`` (default: the error's) as a fault with code 500, the
    error's own words as its details."""
    text = message or reason(exc)
    return {"code": 500, "message": text[:255], "details": reason(exc), "created": isotime(utcnow())}


async def attempt(compute: Any, uuid: str, what: str, call: Awaitable[None]) -> bool:
    """Await the driver ``call`` doing ``what`` to the guest: whether it
    succeeded. A failure is only logged: the action's event shows it."""
    try:
        await call
    except Exception as exc:
        LOG.warning("%s of instance %s failed on %s: %s", what, uuid, compute.host, reason(exc))
        return False
    return True


async def power_state_or_nostate(compute: Any, uuid: str) -> PowerState:
    """The guest's power state; NOSTATE when the hypervisor cannot say, so
    that a server still leaves its task state."""
    try:
        return await power_state(compute, uuid)
    except Exception:
        LOG.exception("reading the power state of %s failed", uuid)
        return PowerState.NOSTATE
