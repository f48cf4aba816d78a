"""The rebuild workflow's conductor step: a new image must suit the host
the server is on (the scheduler checks it there, claiming nothing: the
server keeps its allocation), then the host rebuilds the server.

A host that does not suit the new image refuses the rebuild as Nova does:
the image is set back to the old one and the server goes to ERROR with a
"No valid host" fault; the host is never asked."""

from __future__ import annotations

import logging
from typing import Any

from loom.conductor.build import instance_dict
from loom.context import RequestContext
from loom.errors import LoomError
from loom.objects import instances
from loom.scheduler.request import RequestSpec
from loom.timeutils import isotime, utcnow

LOG = logging.getLogger(__name__)
# Nova's name for this step's event.
EVENT = "rebuild_server"
TASK_STATE = "rebuilding"


async def rebuild_instance(conductor: Any, ctx: RequestContext, instance_uuid: str, orig_image_ref: str | None,
                           orig_vm_state: str, spec: dict[str, Any], preserve_ephemeral: bool) -> None:
    started = utcnow()
    async with conductor.db.session() as session:
        row = await instances.get_any(session, instance_uuid)
        if row.deleted or row.task_state != TASK_STATE or not row.host:
            LOG.info("instance %s left %s before its rebuild began", instance_uuid, TASK_STATE)
            return
        instance = instance_dict(row)
        host, node = row.host, row.node
    if instance["image_ref"] != orig_image_ref:
        try:
            await conductor.scheduler.check_host(ctx, RequestSpec.from_dict(spec), host, node)
        except LoomError as exc:
            await _refuse(conductor, ctx, instance_uuid, orig_image_ref, exc, started)
            return
    async with conductor.db.session.begin() as session:
        await instances.event(session, ctx.request_id, instance_uuid, EVENT, host=None, start=started,
                              result="Success")
    await conductor.compute.rebuild_instance(ctx, host, instance, orig_vm_state, preserve_ephemeral)


async def _refuse(conductor: Any, ctx: RequestContext, uuid: str, orig_image_ref: str | None, exc: LoomError,
                  started: Any) -> None:
    LOG.warning("rebuild of %s refused: %s", uuid, exc.message)
    fault = {"code": 500, "message": exc.message[:255], "details": exc.message, "created": isotime(utcnow())}
    async with conductor.db.session.begin() as session:
        if await instances.set_fields(session, uuid, {"image_ref": orig_image_ref, "vm_state": "error",
                                                      "task_state": None, "fault": fault},
                                      expected_task_state=[TASK_STATE]):
            await instances.event(session, ctx.request_id, uuid, EVENT, host=None, start=started, result="Error")
