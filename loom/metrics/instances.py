"""Instances by vm_state, counted by a process that has the database, off
the request path: one grouped count every ``interval`` seconds."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select

from loom.db.engine import Database
from loom.db.models import Instance
from loom.metrics import INSTANCES

LOG = logging.getLogger(__name__)

VM_STATES = ("building", "active", "stopped", "paused", "suspended", "error", "resized", "shelved",
             "shelved_offloaded", "soft-delete", "rescued")


async def refresh(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.execute(
            select(Instance.vm_state, func.count()).where(Instance.deleted.is_(False)).group_by(Instance.vm_state))
        counts = {state: int(n) for state, n in rows}
    for state in {*VM_STATES, *counts}:
        INSTANCES.labels(state).set(counts.get(state, 0))
    return counts


async def refresh_forever(db: Database, interval: float) -> None:
    while True:
        try:
            await refresh(db)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            LOG.warning("could not count instances for the metrics: %s", exc)
        await asyncio.sleep(interval)
