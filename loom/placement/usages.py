"""Usages: what is allocated, per provider or per project (and user)."""

from __future__ import annotations

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.models import PlacementAllocation, PlacementConsumer, ResourceProvider
from loom.placement import inventories

# How Placement names consumers written before consumer types existed.
UNKNOWN_TYPE = "unknown"
ALL_TYPES = "all"


async def of_provider(session: AsyncSession, rp: ResourceProvider) -> dict[str, int]:
    """Used amount of every class the provider has inventory of (0 if none)."""
    used = (await inventories.usages(session, [rp.id])).get(rp.id, {})
    return {rc: used.get(rc, 0) for rc in await inventories.of_provider(session, rp)}


async def of_project(session: AsyncSession, project_id: str, user_id: str | None = None) -> dict[str, int]:
    query = (select(PlacementAllocation.resource_class, func.sum(PlacementAllocation.used))
             .join(PlacementConsumer, PlacementConsumer.uuid == PlacementAllocation.consumer_uuid)
             .where(PlacementConsumer.project_id == project_id)
             .group_by(PlacementAllocation.resource_class))
    if user_id is not None:
        query = query.where(PlacementConsumer.user_id == user_id)
    return {rc: int(n) for rc, n in await session.execute(query)}


async def of_project_by_type(session: AsyncSession, project_id: str, user_id: str | None = None,
                             consumer_type: str | None = None) -> dict[str, dict[str, int]]:
    """Consumer type → class → used, with ``consumer_count`` per type.
    ``consumer_type`` "all" groups everything under "all"; consumers with no
    type count as "unknown"."""
    ctype = func.coalesce(PlacementConsumer.consumer_type, UNKNOWN_TYPE)
    group = ctype if consumer_type != ALL_TYPES else None
    cols = [group.label("ctype")] if group is not None else []
    base = (select(*cols, PlacementAllocation.resource_class, func.sum(PlacementAllocation.used))
            .join(PlacementConsumer, PlacementConsumer.uuid == PlacementAllocation.consumer_uuid)
            .where(PlacementConsumer.project_id == project_id))
    counts = (select(*cols, func.count(distinct(PlacementConsumer.uuid)))
              .join(PlacementAllocation, PlacementConsumer.uuid == PlacementAllocation.consumer_uuid)
              .where(PlacementConsumer.project_id == project_id))
    if user_id is not None:
        base = base.where(PlacementConsumer.user_id == user_id)
        counts = counts.where(PlacementConsumer.user_id == user_id)
    if consumer_type not in (None, ALL_TYPES):
        base = base.where(ctype == consumer_type)
        counts = counts.where(ctype == consumer_type)
    if group is not None:
        base, counts = base.group_by(group, PlacementAllocation.resource_class), counts.group_by(group)
    else:
        base = base.group_by(PlacementAllocation.resource_class)
    out: dict[str, dict[str, int]] = {}
    for row in await session.execute(base):
        key, rc, n = (row[0], row[1], row[2]) if group is not None else (ALL_TYPES, row[0], row[1])
        out.setdefault(key, {})[rc] = int(n)
    for row in await session.execute(counts):
        key, n = (row[0], row[1]) if group is not None else (ALL_TYPES, row[0])
        if n:
            out.setdefault(key, {})["consumer_count"] = int(n)
    return out
