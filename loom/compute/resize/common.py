"""What the steps of a move on a compute host share."""

from __future__ import annotations

import logging
from typing import Any

from loom.compute import recover as reconcile
from loom.compute.build import spec_of
from loom.context import RequestContext
from loom.errors import LoomError
from loom.timeutils import utcnow
from loom.virt.driver import InstanceSpec

LOG = logging.getLogger(__name__)


def spec_for(instance: dict[str, Any], flavor: dict[str, Any]) -> InstanceSpec:
    """The guest of ``instance`` with ``flavor``'s size."""
    return spec_of({**instance, "flavor": flavor})


def old_flavor(instance: dict[str, Any]) -> dict[str, Any]:
    return dict(instance.get("old_flavor") or instance["flavor"])


def power_on_after(instance: dict[str, Any]) -> bool:
    """Whether the guest runs once moved: a stopped server stays stopped."""
    return (instance.get("old_vm_state") or instance.get("vm_state")) != "stopped"


def now() -> str:
    return utcnow().isoformat()


async def failed(compute: Any, ctx: RequestContext, instance: dict[str, Any], migration: dict[str, Any], step: str,
                 exc: BaseException, event_start: str, *, read_power: bool = True) -> None:
    """Report a failed step to the conductor, with the guest's power state
    here when it tells where the server is."""
    uuid = instance["uuid"]
    reason = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
    LOG.warning("%s of %s failed on %s: %s", step, uuid, compute.host, reason)
    state = None
    if read_power:
        try:
            state = int(await reconcile.power_state(compute, uuid))
        except Exception:
            LOG.exception("reading the power state of %s failed", uuid)
    await compute.conductor.move_failed(ctx, uuid, migration["id"], step, reason, host=compute.host,
                                        event_start=event_start, power_state=state)
