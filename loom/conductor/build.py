"""The build workflow: schedule, hand each instance to its host, and on a
failed build reschedule to an alternate host until the attempts run out.

Claims are released on every failure path; an instance that never gets a
host stays visible in ERROR with a fault saying why, and can be deleted.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from loom import placement
from loom.context import RequestContext
from loom.db.engine import Database
from loom.errors import LoomError, NoResources
from loom.objects import instances
from loom.scheduler.request import RequestSpec, Selection
from loom.timeutils import isotime, utcnow

LOG = logging.getLogger(__name__)
EVENT = "conductor_schedule_and_build_instances"


async def build_instances(conductor: Any, ctx: RequestContext, spec: dict[str, Any],
                          instance_uuids: list[str]) -> None:
    started = utcnow()
    request = RequestSpec.from_dict(spec)
    try:
        selections = await conductor.scheduler.select_destinations(ctx, request, instance_uuids,
                                                                    return_alternates=True)
    except LoomError as exc:
        LOG.info("no host for %s: %s", instance_uuids, exc)
        for uuid in instance_uuids:
            await set_error(conductor.db, ctx, uuid, exc, event=EVENT, start=started)
        return
    for uuid, choices in zip(instance_uuids, selections, strict=True):
        await _send(conductor, ctx, uuid, spec, choices[0], choices[1:], started)


async def _send(conductor: Any, ctx: RequestContext, uuid: str, spec: dict[str, Any], chosen: Selection,
                alternates: list[Selection], started: Any) -> None:
    instance = None
    async with conductor.db.session.begin() as session:
        row = await instances.update_fields(session, uuid, {
            "host": chosen.host, "node": chosen.nodename,
            "availability_zone": chosen.availability_zone or spec.get("availability_zone"),
            "task_state": "spawning"}, expected_task_state=["scheduling"])
        if row is not None:
            await instances.event(session, ctx.request_id, uuid, EVENT, host=None, start=started,
                                  result="Success")
            instance = instance_dict(row)
    if instance is None:
        # Deleted while it was being scheduled: give the claim back, after
        # the transaction above let go of the database.
        await placement.release(conductor.db, uuid)
        return
    await conductor.compute.build_and_run_instance(ctx, chosen.host, instance, spec,
                                                   [a.to_dict() for a in alternates])


async def reschedule(conductor: Any, ctx: RequestContext, uuid: str, spec: dict[str, Any],
                     alternates: list[dict[str, Any]], failed_host: str, reason: str) -> None:
    """A host failed to build: its claim is released, then the next
    alternate is claimed and tried; with none left the instance is ERROR."""
    started = utcnow()
    await placement.release(conductor.db, uuid)
    request = RequestSpec.from_dict(spec)
    remaining = [Selection.from_dict(a) for a in alternates]
    while remaining:
        choice = remaining.pop(0)
        try:
            await placement.claim(conductor.db, uuid, choice.allocation_request.get("allocations", {}),
                                  request.project_id, request.user_id, None)
        except LoomError as exc:
            LOG.info("alternate %s for %s is no longer available: %s", choice.host, uuid, exc)
            continue
        LOG.info("rescheduling %s from %s to %s: %s", uuid, failed_host, choice.host, reason)
        async with conductor.db.session.begin() as session:
            await instances.update_fields(session, uuid, {"task_state": "scheduling", "host": None, "node": None})
        await _send(conductor, ctx, uuid, spec, choice, remaining, started)
        return
    error = NoResources(f"Exceeded maximum number of retries. Exhausted all hosts available for retrying build "
                        f"failures for instance {uuid}. Last failure on {failed_host}: {reason}")
    await set_error(conductor.db, ctx, uuid, error, event=EVENT, start=started)


async def set_error(db: Database, ctx: RequestContext, uuid: str, exc: BaseException, *, event: str,
                    start: Any) -> None:
    status = exc.status if isinstance(exc, LoomError) else 500
    message = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
    fault = {"code": status, "message": message[:255], "details": message if status >= 500 else "",
             "created": isotime(utcnow())}
    async with db.session.begin() as session:
        await instances.update_fields(session, uuid, {"vm_state": "error", "task_state": None, "host": None,
                                                      "node": None, "fault": fault})
        await instances.event(session, ctx.request_id, uuid, event, host=None, start=start, result="Error",
                              traceback="".join(traceback.format_exception(exc)) if status >= 500 else None)
    await placement.release(db, uuid)


def instance_dict(row: Any) -> dict[str, Any]:
    """What a compute host needs to build an instance."""
    return {
        "uuid": row.uuid, "name": f"instance-{row.id:08x}", "hostname": row.hostname,
        "display_name": row.display_name, "flavor": row.flavor, "image_ref": row.image_ref,
        "key_data": row.key_data, "user_data": row.user_data, "metadata": dict(row.metadata_ or {}),
        "project_id": row.project_id, "user_id": row.user_id, "config_drive": row.config_drive,
    }
