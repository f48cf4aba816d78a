"""Shelving on this host: power the guest off and snapshot it into the
image the API created (``<name>-shelved``); offloading: destroy the guest
and give its resources back (the conductor releases the placement claim
and clears the host); unshelving: power a shelved guest on again, or spawn
an offloaded one from its shelve image on the host the conductor chose.
The shelve image is deleted once the server runs again.

Task states as Nova's: shelving → shelving_image_pending_upload →
shelving_image_uploading → none (or shelving_offloading when
``compute.shelved_offload_time`` is 0, and the offload follows at once).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from loom.compute import snapshot
from loom.compute.build import spec_of
from loom.compute.faults import power_state_or_nostate
from loom.compute.power import SHUTDOWN_TIMEOUT
from loom.context import RequestContext
from loom.errors import BadState, LoomError
from loom.timeutils import utcnow
from loom.virt.driver import PowerState

LOG = logging.getLogger(__name__)
SHELVE_EVENT = "compute_shelve_instance"
OFFLOAD_EVENT = "compute_shelve_offload_instance"
UNSHELVE_EVENT = "compute_unshelve_instance"
START_EVENT = "compute_start_instance"
SHELVE_TASKS = ["shelving", "shelving_image_pending_upload", "shelving_image_uploading"]
# How often shelved servers are looked at for offloading (Nova's
# shelved_poll_interval), at most: sooner when they are due sooner.
POLL_INTERVAL = 3600.0


async def shelve_instance(compute: Any, ctx: RequestContext, uuid: str, image_id: str) -> None:
    started = utcnow().isoformat()
    offload = compute.settings.shelved_offload_time == 0
    try:
        state = await power_state_or_nostate(compute, uuid)
        # A paused guest cannot shut itself down cleanly: it is stopped.
        await compute.driver.power_off(uuid, 0 if state == PowerState.PAUSED else SHUTDOWN_TIMEOUT)
        await snapshot.take_and_upload(compute, ctx, uuid, image_id, "shelving",
                                       ("shelving_image_pending_upload", "shelving_image_uploading"))
    except snapshot.InstanceGone:
        LOG.info("instance %s was deleted or reset while it was shelved; image %s deleted", uuid, image_id)
        await snapshot.delete_image(compute, ctx, image_id)
        return
    except Exception as exc:
        await snapshot.delete_image(compute, ctx, image_id)
        await snapshot.fail(compute, ctx, uuid, list(SHELVE_TASKS), SHELVE_EVENT, started, exc)
        return
    state = await power_state_or_nostate(compute, uuid)
    if not await compute.conductor.shelve_finished(ctx, uuid, compute.host, image_id, int(state), offload,
                                                   started):
        LOG.info("instance %s left %s while it was shelved", uuid, SHELVE_TASKS[-1])
        return
    if offload:
        await shelve_offload_instance(compute, ctx, uuid)


async def shelve_offload_instance(compute: Any, ctx: RequestContext, uuid: str) -> None:
    """From shelving_offloading: destroy the guest; the conductor then
    releases its claim before the server shows SHELVED_OFFLOADED."""
    started = utcnow().isoformat()
    try:
        state = await power_state_or_nostate(compute, uuid)
        if state != PowerState.NOSTATE:  # else gone already (an offload a restart cut short)
            await compute.driver.power_off(uuid, 0)
            state = await power_state_or_nostate(compute, uuid)
            await compute.driver.destroy(uuid)
    except Exception as exc:
        await snapshot.fail(compute, ctx, uuid, ["shelving_offloading"], OFFLOAD_EVENT, started, exc,
                            {"vm_state": "shelved"})
        return
    if not await compute.conductor.shelve_offloaded(ctx, uuid, compute.host, int(state), started):
        LOG.info("instance %s left shelving_offloading while it was offloaded", uuid)


def offload_interval(compute: Any) -> float:
    """The spacing of the periodic offload: off unless shelved servers are
    offloaded after a time."""
    delay = compute.settings.shelved_offload_time
    return 0.0 if delay <= 0 else min(POLL_INTERVAL, delay)


async def offload_expired(compute: Any) -> None:
    """Offload the servers shelved here longer than shelved_offload_time."""
    delay = compute.settings.shelved_offload_time
    if delay <= 0:
        return
    ctx = RequestContext.for_service(compute.binary)
    for uuid in await compute.conductor.shelved_to_offload(ctx, compute.host, time.time() - delay):
        try:
            await shelve_offload_instance(compute, ctx, uuid)
        except Exception:
            LOG.exception("offloading shelved instance %s failed", uuid)


async def unshelve_instance(compute: Any, ctx: RequestContext, instance: dict[str, Any],
                            image_id: str | None) -> None:
    """A shelved server (``image_id`` None: its guest is here, powered off)
    is powered on; an offloaded one is spawned from ``image_id``. Either
    way the shelve image goes once the server runs."""
    uuid = instance["uuid"]
    started = utcnow().isoformat()
    offloaded = image_id is not None
    task = "spawning" if offloaded else "powering-on"
    event = UNSHELVE_EVENT if offloaded else START_EVENT
    try:
        if offloaded:
            images = compute.images
            if images is None:
                raise BadState(f"host {compute.host} has no image client to read the shelve image with")
            spec = dataclasses.replace(spec_of(instance), image_id=image_id)
            await compute.driver.spawn(spec, lambda: images.download(ctx, image_id))
        else:
            await compute.driver.power_on(uuid)
    except Exception as exc:
        reason = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
        LOG.warning("unshelve of %s failed on %s: %s", uuid, compute.host, reason)
        if offloaded:
            try:
                await compute.driver.destroy(uuid)
            except Exception:
                LOG.exception("cleaning up the failed unshelve of %s", uuid)
        await compute.conductor.unshelve_failed(ctx, uuid, compute.host, task, reason, started)
        return
    state = await power_state_or_nostate(compute, uuid)
    shelved_image = await compute.conductor.unshelve_finished(ctx, uuid, compute.host, task, int(state), event,
                                                              started)
    if shelved_image is None:
        if offloaded:
            LOG.info("instance %s was deleted while it was unshelved; destroying it", uuid)
            await compute.driver.destroy(uuid)
        return
    if shelved_image:
        await snapshot.delete_image(compute, ctx, shelved_image)


async def recover_unshelve(compute: Any, ctx: RequestContext, uuid: str, state: PowerState) -> None:
    """A restart cut an unshelve's spawn short: a guest that came up makes
    the server ACTIVE, else it goes back to SHELVED_OFFLOADED (its claim
    released). The shelve image stays until an unshelve succeeds."""
    started = utcnow().isoformat()
    if state == PowerState.RUNNING:
        shelved_image = await compute.conductor.unshelve_finished(ctx, uuid, compute.host, "spawning", int(state),
                                                                  UNSHELVE_EVENT, started)
        if shelved_image:
            await snapshot.delete_image(compute, ctx, shelved_image)
        return
    if state != PowerState.NOSTATE:
        await compute.driver.destroy(uuid)
    await compute.conductor.unshelve_failed(ctx, uuid, compute.host, "spawning",
                                            f"The unshelve was interrupted by a restart of the compute service on "
                                            f"{compute.host}.", started)
