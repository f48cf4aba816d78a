"""Snapshots and backups of a guest on this host.

The API created the (queued) image and moved the server into its task
state; here the driver takes the snapshot and the host uploads it through
the image client, moving the task state along as Nova does (image_snapshot
or image_backup → image_pending_upload → image_uploading → none). A backup
then rotates out the oldest backups of the same instance and type beyond
``rotation``. Any failure deletes the image and leaves the server in its
guest's real state, with an Error event and a fault.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from loom.compute.faults import power_state_or_nostate
from loom.compute.recover import VM_STATE_OF
from loom.context import RequestContext
from loom.errors import BadState, LoomError, NotFound
from loom.timeutils import isotime, utcnow

LOG = logging.getLogger(__name__)
PENDING_UPLOAD, UPLOADING = "image_pending_upload", "image_uploading"
QCOW2_MAGIC = b"QFI\xfb"


class InstanceGone(Exception):
    """The server left the operation's task state (deleted, or reset)."""


async def snapshot_instance(compute: Any, ctx: RequestContext, uuid: str, image_id: str) -> bool:
    """createImage: the API left the server in image_snapshot_pending."""
    return await run(compute, ctx, uuid, image_id, "compute_snapshot_instance",
                     ("image_snapshot_pending", "image_snapshot"))


async def backup_instance(compute: Any, ctx: RequestContext, uuid: str, image_id: str, backup_type: str,
                          rotation: int) -> bool:
    """createBackup: a snapshot, then the rotation (Nova's: rotation 0
    deletes every backup of the type, the new one included)."""
    if not await run(compute, ctx, uuid, image_id, "compute_backup_instance", ("image_backup", "image_backup")):
        return False
    await rotate_backups(compute, ctx, uuid, backup_type, rotation)
    return True


async def run(compute: Any, ctx: RequestContext, uuid: str, image_id: str, event: str,
              tasks: tuple[str, str]) -> bool:
    """Snapshot and upload into ``image_id``; ``tasks`` are the task state
    the API set and the one the host works in. Whether it succeeded."""
    started = utcnow().isoformat()
    task = tasks[0]
    try:
        if tasks[1] != task:
            task = await move(compute, ctx, uuid, task, tasks[1])
        await take_and_upload(compute, ctx, uuid, image_id, task, (PENDING_UPLOAD, UPLOADING))
    except InstanceGone:
        LOG.info("instance %s was deleted or reset during its snapshot; image %s deleted", uuid, image_id)
        await delete_image(compute, ctx, image_id)
        return False
    except Exception as exc:
        await delete_image(compute, ctx, image_id)
        await fail(compute, ctx, uuid, [tasks[0], tasks[1], PENDING_UPLOAD, UPLOADING], event, started, exc)
        return False
    state = await power_state_or_nostate(compute, uuid)
    if not await compute.conductor.instance_update(
            ctx, uuid, {"task_state": None, "power_state": int(state)}, expected_task_state=[UPLOADING],
            event=event, host=compute.host, event_start=started):
        LOG.info("instance %s left %s while its snapshot %s was uploaded", uuid, UPLOADING, image_id)
    return True


async def take_and_upload(compute: Any, ctx: RequestContext, uuid: str, image_id: str, task: str,
                          steps: tuple[str, str]) -> None:
    """From task state ``task``: to ``steps[0]``, take the snapshot, to
    ``steps[1]``, upload it. InstanceGone if the server left the task."""
    if compute.images is None:
        raise BadState(f"host {compute.host} has no image client to upload snapshots with")
    task = await move(compute, ctx, uuid, task, steps[0])
    chunks = await compute.driver.snapshot(uuid)
    await move(compute, ctx, uuid, task, steps[1])
    disk_format, chunks = await sniff_format(chunks)
    await compute.images.update(ctx, image_id, disk_format=disk_format, container_format="bare")
    await compute.images.upload(ctx, image_id, chunks)


async def move(compute: Any, ctx: RequestContext, uuid: str, current: str, new: str) -> str:
    if not await compute.conductor.instance_update(ctx, uuid, {"task_state": new}, expected_task_state=[current]):
        raise InstanceGone(uuid)
    return new


async def sniff_format(chunks: AsyncIterator[bytes]) -> tuple[str, AsyncIterator[bytes]]:
    """The snapshot's disk format (the driver gives raw or qcow2) and the
    stream, whole again."""
    first = b""
    async for chunk in chunks:
        first = chunk
        break

    async def whole() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for rest in chunks:
            yield rest

    return ("qcow2" if first.startswith(QCOW2_MAGIC) else "raw"), whole()


async def fail(compute: Any, ctx: RequestContext, uuid: str, tasks: list[str | None], event: str, started: str,
               exc: BaseException, values: dict[str, Any] | None = None) -> None:
    """End the operation: the server follows its guest's real state, with
    a fault and an Error event (``values`` may say more)."""
    reason = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
    LOG.warning("%s of instance %s failed on %s: %s", event, uuid, compute.host, reason)
    state = await power_state_or_nostate(compute, uuid)
    code = exc.status if isinstance(exc, LoomError) else 500
    fault = {"code": code, "message": reason[:255], "details": reason, "created": isotime(utcnow())}
    await compute.conductor.instance_update(
        ctx, uuid, {"vm_state": VM_STATE_OF[state], "task_state": None, "power_state": int(state), "fault": fault,
                    **(values or {})},
        expected_task_state=tasks, event=event, host=compute.host, event_start=started, event_result="Error")


async def delete_image(compute: Any, ctx: RequestContext, image_id: str) -> None:
    """Delete an image the system made (a failed snapshot, a used shelve
    image), whoever's request it was; a failure is only logged."""
    if compute.images is None:
        return
    try:
        await compute.images.delete(ctx.elevated(), image_id)
    except NotFound:
        pass
    except Exception:
        LOG.exception("could not delete image %s", image_id)


async def rotate_backups(compute: Any, ctx: RequestContext, uuid: str, backup_type: str, rotation: int) -> None:
    """Keep the newest ``rotation`` backups of this instance and type."""
    try:
        backups = await compute.images.list_(ctx, image_type="backup", backup_type=backup_type,
                                             instance_uuid=uuid)
    except Exception:
        LOG.exception("could not list the %s backups of %s to rotate them", backup_type, uuid)
        return
    for image in backups[rotation:]:
        try:
            await compute.images.delete(ctx, image["id"])
            LOG.info("rotated out backup %s of instance %s", image["id"], uuid)
        except Exception as exc:
            # As Nova: one that cannot go does not keep the others.
            LOG.info("could not delete backup %s of %s while rotating: %s", image["id"], uuid, exc)
