"""Which soft-deleted instances a host may reclaim now: those soft-deleted
longer than the reclaim interval and idle. Each is moved into deleting with
one conditional update (still soft-deleted, no task), in the transaction
that records its "delete" action, so a restore sent meanwhile wins and the
host's delete is seen as what it is in the server's events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from loom.context import RequestContext
from loom.db.models import Instance
from loom.objects import instances
from loom.timeutils import utcnow

EVENT = "compute_reclaim_queued_deletes"


async def claim_reclaimable(conductor: Any, ctx: RequestContext, host: str, interval: float) -> list[str]:
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=interval)
    claimed = []
    async with conductor.db.session.begin() as session:
        # deleted_at is cleared by a restore: a server whose restore was cut
        # short stays SOFT_DELETED without it and is not reclaimed behind
        # the user's back (Nova would); restore or forceDelete settle it.
        uuids = await session.scalars(select(Instance.uuid).where(
            Instance.host == host, Instance.deleted.is_(False), Instance.vm_state == "soft-delete",
            Instance.task_state.is_(None), Instance.deleted_at.is_not(None), Instance.deleted_at <= cutoff))
        for uuid in list(uuids):
            if await instances.set_fields(session, uuid, {"task_state": "deleting"}, expected_task_state=[None],
                                          expected_vm_state="soft-delete"):
                await instances.start_action(session, ctx, uuid, "delete",
                                             message=f"reclaimed after {interval:g} seconds soft-deleted")
                await instances.event(session, ctx.request_id, uuid, EVENT, host=host, start=now, result="Success")
                claimed.append(uuid)
    return claimed
