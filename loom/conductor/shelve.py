"""The conductor's side of shelving: what a compute host reports when a
shelve or an offload ends (written with the database's conditions, so a
server deleted meanwhile is not brought back), and which shelved servers
a host's periodic task should offload."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from loom import placement
from loom.context import RequestContext
from loom.db.models import Instance
from loom.objects import instances
from loom.timeutils import utcnow

# What shelving remembers in system_metadata; unshelving forgets it.
SHELVED_KEYS = ("shelved_at", "shelved_image_id", "shelved_host")


async def _record(session: Any, ctx: RequestContext, uuid: str, event: str, host: str, event_start: str | None,
                  result: str = "Success") -> None:
    start = dt.datetime.fromisoformat(event_start) if event_start else utcnow()
    await instances.event(session, ctx.request_id, uuid, event, host=host, start=start, result=result)


async def shelve_finished(conductor: Any, ctx: RequestContext, uuid: str, host: str, image_id: str,
                          power_state: int, offload: bool, event_start: str) -> bool:
    """The guest is off and its image uploaded: SHELVED (still holding its
    host and claim), or on to shelving_offloading."""
    async with conductor.db.session.begin() as session:
        row = await session.scalar(select(Instance).where(Instance.uuid == uuid, Instance.deleted.is_(False)))
        if row is None:
            return False
        system_metadata = {**(row.system_metadata or {}), "shelved_at": utcnow().isoformat(),
                           "shelved_image_id": image_id, "shelved_host": host}
        if not await instances.set_fields(session, uuid, {
                "vm_state": "shelved", "task_state": "shelving_offloading" if offload else None,
                "power_state": power_state, "system_metadata": system_metadata},
                expected_task_state=["shelving_image_uploading"]):
            return False
        await _record(session, ctx, uuid, "compute_shelve_instance", host, event_start)
    return True


async def shelve_offloaded(conductor: Any, ctx: RequestContext, uuid: str, host: str, power_state: int,
                           event_start: str) -> bool:
    """The guest is gone from ``host``: its claim is released first (as
    Nova does, so that whoever waits for SHELVED_OFFLOADED finds the room
    free), then the server leaves the host."""
    await placement.release(conductor.db, uuid)
    async with conductor.db.session.begin() as session:
        if not await instances.set_fields(session, uuid, {
                "vm_state": "shelved_offloaded", "task_state": None, "power_state": power_state, "host": None,
                "node": None}, expected_task_state=["shelving_offloading"]):
            return False
        await _record(session, ctx, uuid, "compute_shelve_offload_instance", host, event_start)
    return True


async def shelved_to_offload(conductor: Any, ctx: RequestContext, host: str, shelved_before: float) -> list[str]:
    """The servers shelved on ``host`` before ``shelved_before`` (epoch
    seconds), each moved into shelving_offloading with a shelveOffload
    action of ``ctx``'s request: the host offloads them next."""
    cutoff = dt.datetime.fromtimestamp(shelved_before, dt.UTC).replace(tzinfo=None)
    claimed = []
    async with conductor.db.session.begin() as session:
        rows = await session.scalars(select(Instance).where(
            Instance.host == host, Instance.vm_state == "shelved", Instance.task_state.is_(None),
            Instance.deleted.is_(False)))
        for row in list(rows):
            shelved_at = (row.system_metadata or {}).get("shelved_at")
            if not shelved_at or _naive(dt.datetime.fromisoformat(shelved_at)) > cutoff:
                continue
            if await instances.set_fields(session, row.uuid, {"task_state": "shelving_offloading"},
                                          expected_task_state=[None], expected_vm_state="shelved"):
                await instances.start_action(session, ctx, row.uuid, "shelveOffload")
                claimed.append(row.uuid)
    return claimed


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
