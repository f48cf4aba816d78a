"""Building an instance on this host: spawn it with the driver and report
the result; a failed build cleans up and hands the instance back to the
conductor to try another host."""

from __future__ import annotations

import logging
from typing import Any

from loom.context import RequestContext
from loom.errors import LoomError
from loom.timeutils import utcnow
from loom.virt.driver import ImageSource, InstanceNotFound, InstanceSpec, PowerState

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
        config_drive=bool(instance.get("config_drive")), extra_specs=dict(flavor.get("extra_specs") or {}),
    )


def image_source(compute: Any, ctx: RequestContext, image_id: str | None) -> ImageSource | None:
    """How the driver reads ``image_id`` through this host's image client
    (None without either); drivers open it only when they lack the image."""
    images = compute.images
    if images is None or not image_id:
        return None
    return lambda: images.download(ctx, image_id)


async def clean_up_failed_spawn(compute: Any, uuid: str, exc: Exception, what: str) -> str:
    """After the failed spawn of ``what`` (a build, an evacuation): log it
    and destroy whatever the driver left of the guest. The failure's reason."""
    reason = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
    LOG.warning("%s of %s failed on %s: %s", what, uuid, compute.host, reason)
    try:
        await compute.driver.destroy(uuid)
    except Exception:
        LOG.exception("cleaning up the failed %s of %s", what, uuid)
    return reason


async def _has_guest(compute: Any, uuid: str) -> bool:
    try:
        await compute.driver.get_info(uuid)
    except InstanceNotFound:
        return False
    return True


async def build_and_run(compute: Any, ctx: RequestContext, instance: dict[str, Any], spec: dict[str, Any],
                        alternates: list[dict[str, Any]]) -> None:
    compute.building.add(instance["uuid"])
    try:
        await _build_and_run(compute, ctx, instance, spec, alternates)
    finally:
        compute.building.discard(instance["uuid"])


async def _build_and_run(compute: Any, ctx: RequestContext, instance: dict[str, Any], spec: dict[str, Any],
                         alternates: list[dict[str, Any]]) -> None:
    uuid = instance["uuid"]
    if await _has_guest(compute, uuid):
        # Delivery is at-least-once: a build redelivered after this service
        # was killed finds the guest the first delivery made, which the
        # restart's reconciliation has settled already. Spawning again
        # would fail and destroy it.
        LOG.info("instance %s already has its guest on %s: dropping a repeated build", uuid, compute.host)
        return
    started = utcnow().isoformat()
    try:
        await compute.driver.spawn(spec_of(instance), image_source(compute, ctx, instance.get("image_ref")))
    except Exception as exc:
        reason = await clean_up_failed_spawn(compute, uuid, exc, "build")
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
