"""The unshelve workflow. A SHELVED server still has its host and claim:
that host powers it on. A SHELVED_OFFLOADED one is scheduled anew, claimed
in placement by the scheduler as a build is, given the chosen host and
spawned there from its shelve image.

Every failure leaves the server where it was (SHELVED_OFFLOADED with no
host and no claim, or SHELVED) out of its task state, with a fault and an
Error event; no claim outlives a failure, and a server deleted meanwhile
gets its claim released here.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select

from loom import placement
from loom.conductor.build import instance_dict
from loom.conductor.shelve import SHELVED_KEYS
from loom.context import RequestContext
from loom.db.models import Image, Instance
from loom.errors import LoomError
from loom.objects import instances, server_groups
from loom.scheduler.request import FlavorSpec, RequestSpec
from loom.timeutils import isotime, utcnow

LOG = logging.getLogger(__name__)
EVENT = "conductor_unshelve_instance"


class _Refused(LoomError):
    """The server group's policy refused the chosen host."""

    status = 400


async def unshelve_instance(conductor: Any, ctx: RequestContext, uuid: str, availability_zone: str | None) -> None:
    started = utcnow()
    async with conductor.db.session() as session:
        row = await session.scalar(select(Instance).where(Instance.uuid == uuid, Instance.deleted.is_(False)))
        if row is None or row.task_state != "unshelving":
            return
        if row.vm_state == "shelved":
            await _power_on(conductor, ctx, row)
            return
        spec = await _request_spec(session, row, availability_zone)
        image_id = (row.system_metadata or {}).get("shelved_image_id")
    if not image_id:
        await _fail(conductor, ctx, uuid, "unshelving", f"Unshelve attempted but instance {uuid} has no shelve "
                    "image.", started, EVENT)
        return
    try:
        (choices,) = await conductor.scheduler.select_destinations(ctx, spec, [uuid], return_alternates=False)
    except LoomError as exc:
        LOG.info("no host to unshelve %s on: %s", uuid, exc)
        await _fail(conductor, ctx, uuid, "unshelving", exc.message, started, EVENT, status=exc.status)
        return
    chosen = choices[0]
    try:
        instance = await _assign(conductor, ctx, uuid, spec, chosen, started)
    except Exception as exc:
        await placement.release(conductor.db, uuid)
        message = exc.message if isinstance(exc, LoomError) else f"{type(exc).__name__}: {exc}"
        await _fail(conductor, ctx, uuid, "unshelving", message, started, EVENT,
                    status=exc.status if isinstance(exc, LoomError) else 500)
        return
    if instance is None:
        # Deleted while it was being scheduled: give the claim back.
        await placement.release(conductor.db, uuid)
        return
    await conductor.compute.unshelve_instance(ctx, chosen.host, instance, image_id)


async def _power_on(conductor: Any, ctx: RequestContext, row: Instance) -> None:
    async with conductor.db.session.begin() as session:
        if not await instances.set_fields(session, row.uuid, {"task_state": "powering-on"},
                                          expected_task_state=["unshelving"], expected_vm_state="shelved"):
            return
    assert row.host is not None
    await conductor.compute.unshelve_instance(ctx, row.host, instance_dict(row), None)


async def _request_spec(session: Any, row: Instance, availability_zone: str | None) -> RequestSpec:
    flavor = row.flavor
    group = None
    for group_uuid in await server_groups.groups_of(session, row.uuid):
        group = await server_groups.scheduling_view(session, group_uuid)
    # The image the server was booted from, as the build's spec had it (its
    # properties still steer the scheduler's filters).
    base = await session.get(Image, row.image_ref) if row.image_ref else None
    image: dict[str, Any] = {"id": row.image_ref}
    if base is not None:
        image.update({"properties": dict(base.properties or {}), "disk_format": base.disk_format,
                      "min_ram": base.min_ram, "min_disk": base.min_disk, "size": base.size})
    return RequestSpec(
        project_id=row.project_id, user_id=row.user_id,
        flavor=FlavorSpec(**{k: flavor[k] for k in ("flavorid", "name", "vcpus", "memory_mb", "root_gb",
                                                    "ephemeral_gb", "swap", "extra_specs") if k in flavor}),
        image=image, availability_zone=availability_zone, instance_group=group)


async def _assign(conductor: Any, ctx: RequestContext, uuid: str, spec: RequestSpec, chosen: Any,
                  started: dt.datetime) -> dict[str, Any] | None:
    """Give the server its new host (task spawning); None if it was deleted
    or left unshelving meanwhile. _Refused if its group's policy forbids
    the host (another member took a place meanwhile)."""
    async with conductor.db.session.begin() as session:
        row = await instances.update_fields(session, uuid, {
            "host": chosen.host, "node": chosen.nodename,
            "availability_zone": chosen.availability_zone or spec.availability_zone, "task_state": "spawning"},
            expected_task_state=["unshelving"], expected_vm_state="shelved_offloaded")
        if row is None:
            return None
        if spec.instance_group:
            why = await server_groups.check_placement(session, spec.instance_group["uuid"], uuid, chosen.host)
            if why:
                raise _Refused(why)
        await instances.event(session, ctx.request_id, uuid, EVENT, host=None, start=started, result="Success")
        return instance_dict(row)


async def unshelve_finished(conductor: Any, ctx: RequestContext, uuid: str, host: str, task_state: str,
                            power_state: int, event: str, event_start: str) -> str | None:
    """The server runs on ``host``: ACTIVE, its shelve keys forgotten. The
    shelve image to delete now ("" if none); None if it was not updated
    (deleted meanwhile)."""
    async with conductor.db.session.begin() as session:
        row = await session.scalar(select(Instance).where(Instance.uuid == uuid, Instance.deleted.is_(False)))
        if row is None:
            return None
        system_metadata = dict(row.system_metadata or {})
        image_id = system_metadata.get("shelved_image_id") or ""
        for key in SHELVED_KEYS:
            system_metadata.pop(key, None)
        values: dict[str, Any] = {"vm_state": "active", "task_state": None, "power_state": power_state,
                                  "system_metadata": system_metadata}
        if task_state == "spawning":
            values["launched_at"] = utcnow()
        if not await instances.set_fields(session, uuid, values, expected_task_state=[task_state]):
            return None
        start = dt.datetime.fromisoformat(event_start)
        await instances.event(session, ctx.request_id, uuid, event, host=host, start=start, result="Success")
    return str(image_id)


async def unshelve_failed(conductor: Any, ctx: RequestContext, uuid: str, host: str, task_state: str, reason: str,
                          event_start: str) -> None:
    """The host could not bring the server back. An offloaded one (task
    spawning) goes back to SHELVED_OFFLOADED: its new claim is released,
    its host cleared. A shelved one stays SHELVED on its host."""
    event = "compute_unshelve_instance" if task_state == "spawning" else "compute_start_instance"
    await _fail(conductor, ctx, uuid, task_state, reason, dt.datetime.fromisoformat(event_start), event, host=host)


async def _fail(conductor: Any, ctx: RequestContext, uuid: str, task_state: str, reason: str,
                started: dt.datetime, event: str, *, status: int = 500, host: str | None = None) -> None:
    offloaded = task_state in ("unshelving", "spawning")
    if offloaded:
        await placement.release(conductor.db, uuid)
    fault = {"code": status, "message": reason[:255], "details": reason if status >= 500 else "",
             "created": isotime(utcnow())}
    values: dict[str, Any] = {"task_state": None, "fault": fault}
    if offloaded:
        values.update({"vm_state": "shelved_offloaded", "host": None, "node": None})
    async with conductor.db.session.begin() as session:
        if await instances.set_fields(session, uuid, values, expected_task_state=[task_state]):
            await instances.event(session, ctx.request_id, uuid, event, host=host, start=started, result="Error")
    LOG.warning("unshelve of %s failed: %s", uuid, reason)
