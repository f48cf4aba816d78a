"""Building an instance on this host: spawn it with the driver and report
the result; a failed build cleans up and hands the instance back to the
conductor to try another host."""

from __future__ import annotations

import logging
from typing import Any

from loom.context import RequestContext
from loom.errors import LoomError
from loom.timeutils import utcnow
from loom.virt.driver import InstanceSpec, PowerState

LOG = logging.getLogger(__name__)
EVENT = "compute_build_and_run_instance"


def spec_of(instance: dict[str, Any]) -> InstanceSpec:
    flavor = instance["flavor"]
    return InstanceSpec(
        uuid=instance["uuid"], name=instance["name"], hostname=instance.get("hostname") or instance["uuid"],
        vcpus=int(flavor["vcpus"]), memory_mb=int(flavor["memory_mb"]), root_gb=int(flavor["root_gb"]),
        ephemeral_gb=int(flavor.get("ephemeral_gb", 0)), swap_mb=int(flavor.get("swap", 0)),
        image_id=instance.get("image_ref"), image_meta={}, user_data=instance.get("user_data"),
        key_data=instance.get("key_data"), metadata=instance.get("metadata") or {}, networks=[],
        config_drive=bool(instance.get("config_drive")),
    )


async def build_and_run(compute: Any, ctx: RequestContext, instance: dict[str, Any], spec: dict[str, Any],
                        alternates: list[dict[str, Any]]) -> None:
    uuid = instance["uuid"]
    started = utcnow().isoformat()
    try:
        await compute.driver.spawn(spec_of(instance), None)
    except Exception as exc:
        reason = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
        LOG.warning("build of %s failed on %s: %s", uuid, compute.host, reason)
        try:
            await compute.driver.destroy(uuid)
        except Exception:
            LOG.exception("cleaning up the failed build of %s", uuid)
        await compute.conductor.reschedule(ctx, uuid, spec, alternates, compute.host, reason)
        await compute.build_finished(ok=False)
        return
    updated = await compute.conductor.instance_update(
        ctx, uuid, {"vm_state": "active", "task_state": None, "power_state": int(PowerState.RUNNING),
                    "launched_at": "now"},
        expected_task_state=["spawning"], event=EVENT, host=compute.host, event_start=started)
    if compute.failed_builds:
        await compute.build_finished(ok=True)
    if not updated:
        # Deleted while it was being built: take it down again.
        LOG.info("instance %s was deleted during its build; destroying it", uuid)
        await compute.driver.destroy(uuid)
