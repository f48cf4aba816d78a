"""The build workflow: schedule, hand each instance to its host, and on a
failed build reschedule to an alternate host until the attempts run out.

Claims are released on every failure path; an instance that never gets a
host stays visible in ERROR with a fault saying why, and can be deleted.

A member of a server group is scheduled against where the group's members
are just before scheduling, and its policy is checked again as the host is
written (the late check): requests scheduled at the same time may each
have chosen a host another one is taking. A host the check refuses is
released and the next alternate tried.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from loom import placement
from loom.context import RequestContext
from loom.db.engine import Database
from loom.errors import LoomError, NoResources
from loom.objects import instances, server_groups
from loom.scheduler.errors import NoValidHost
from loom.scheduler.request import RequestSpec, Selection
from loom.scheduler.select import NO_VALID_HOST
from loom.timeutils import isotime, utcnow

LOG = logging.getLogger(__name__)
EVENT = "conductor_schedule_and_build_instances"


async def build_instances(conductor: Any, ctx: RequestContext, spec: dict[str, Any],
                          instance_uuids: list[str]) -> None:
    started = utcnow()
    spec = await _current_group(conductor.db, spec)
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
        await _send_or_fail(conductor, ctx, uuid, spec, choices[0], choices[1:], started)


async def _send_or_fail(conductor: Any, ctx: RequestContext, uuid: str, spec: dict[str, Any], chosen: Selection,
                        alternates: list[Selection], started: Any) -> None:
    """``_send``; on any failure the instance goes to ERROR and its claim is
    released, so that neither it nor the instances after it in the request
    stay in BUILD holding resources."""
    try:
        await _send(conductor, ctx, uuid, spec, chosen, alternates, started)
    except Exception as exc:
        LOG.exception("handing instance %s to %s failed", uuid, chosen.host)
        await set_error(conductor.db, ctx, uuid, exc, event=EVENT, start=started)


async def _current_group(db: Database, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with its server group as the database has it now (None if
    the group was deleted: its members are then in no group)."""
    group = spec.get("instance_group")
    if not group:
        return spec
    async with db.session() as session:
        return {**spec, "instance_group": await server_groups.scheduling_view(session, group["uuid"])}


class _PolicyViolated(Exception):
    """The late check refused the host (rolls back the host's assignment)."""


async def _assign(conductor: Any, ctx: RequestContext, uuid: str, spec: dict[str, Any], chosen: Selection,
                  started: Any) -> dict[str, Any] | None:
    """Give the instance its host; None if it was deleted meanwhile.
    ``_PolicyViolated`` if its server group's policy forbids the host."""
    group = spec.get("instance_group")
    async with conductor.db.session.begin() as session:
        # Written before the check reads: see server_groups.check_placement.
        row = await instances.update_for_build(session, uuid, {
            "host": chosen.host, "node": chosen.nodename,
            "availability_zone": chosen.availability_zone or spec.get("availability_zone"),
            "task_state": "spawning"}, expected_task_state=["scheduling"])
        if row is None:
            return None
        if group:
            why = await server_groups.check_placement(session, group["uuid"], uuid, chosen.host)
            if why:
                raise _PolicyViolated(why)
        await instances.event(session, ctx.request_id, uuid, EVENT, host=None, start=started, result="Success")
        return instance_dict(row)


async def _send(conductor: Any, ctx: RequestContext, uuid: str, spec: dict[str, Any], chosen: Selection,
                alternates: list[Selection], started: Any) -> None:
    remaining = list(alternates)
    refused: list[str] = []
    while True:
        try:
            instance = await _assign(conductor, ctx, uuid, spec, chosen, started)
            break
        except _PolicyViolated as exc:
            LOG.info("instance %s may not go to %s: %s", uuid, chosen.host, exc)
            refused.append(str(exc))
            await placement.release(conductor.db, uuid)
            next_choice = await _claim_alternate(conductor, uuid, spec, remaining)
            if next_choice is None:
                error = NoValidHost(f"{NO_VALID_HOST} {'; '.join(refused)}.", instance_uuid=uuid)
                await set_error(conductor.db, ctx, uuid, error, event=EVENT, start=started)
                return
            chosen = next_choice
    if instance is None:
        # Deleted while it was being scheduled: give the claim back, after
        # the transaction above let go of the database.
        await placement.release(conductor.db, uuid)
        return
    await conductor.compute.build_and_run_instance(ctx, chosen.host, instance, spec,
                                                   [a.to_dict() for a in remaining])


async def _claim_alternate(conductor: Any, uuid: str, spec: dict[str, Any],
                           remaining: list[Selection]) -> Selection | None:
    """Claim the first of ``remaining`` that still has room (taking it and
    those before it off the list); None when none has."""
    while remaining:
        choice = remaining.pop(0)
        try:
            await placement.claim(conductor.db, uuid, choice.allocation_request.get("allocations", {}),
                                  spec["project_id"], spec["user_id"], None)
        except LoomError as exc:
            LOG.info("alternate %s for %s is no longer available: %s", choice.host, uuid, exc)
            continue
        return choice
    return None


async def reschedule(conductor: Any, ctx: RequestContext, uuid: str, spec: dict[str, Any],
                     alternates: list[dict[str, Any]], failed_host: str, reason: str) -> None:
    """A host failed to build: its claim is released, then the next
    alternate is claimed and tried; with none left the instance is ERROR."""
    started = utcnow()
    await placement.release(conductor.db, uuid)
    remaining = [Selection.from_dict(a) for a in alternates]
    choice = await _claim_alternate(conductor, uuid, spec, remaining)
    if choice is not None:
        LOG.info("rescheduling %s from %s to %s: %s", uuid, failed_host, choice.host, reason)
        async with conductor.db.session.begin() as session:
            await instances.set_fields(session, uuid, {"task_state": "scheduling", "host": None, "node": None})
        await _send_or_fail(conductor, ctx, uuid, spec, choice, remaining, started)
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
        await instances.set_fields(session, uuid, {"vm_state": "error", "task_state": None, "host": None,
                                                      "node": None, "fault": fault})
        await instances.event(session, ctx.request_id, uuid, event, host=None, start=start, result="Error",
                              traceback="".join(traceback.format_exception(exc)) if status >= 500 else None)
    await placement.release(db, uuid)


def instance_dict(row: Any) -> dict[str, Any]:
    """What a compute host needs to build an instance."""
    return {
        "uuid": row.uuid, "name": instances.instance_name(row), "hostname": row.hostname,
        "display_name": row.display_name, "flavor": row.flavor, "image_ref": row.image_ref,
        "key_data": row.key_data, "user_data": row.user_data, "metadata": dict(row.metadata_ or {}),
        "project_id": row.project_id, "user_id": row.user_id, "config_drive": row.config_drive,
    }
