"""Aggregates: named groups (by uuid) of providers. A provider's set of
aggregates is replaced as a whole, checked against its generation."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, insert, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db import fast
from loom.db.models import ProviderAggregate, ResourceProvider
from loom.placement import generations
from loom.placement.sql import chunks


async def of_provider(session: AsyncSession, provider_id: int) -> list[str]:
    query = (select(ProviderAggregate.aggregate_uuid).where(ProviderAggregate.provider_id == provider_id)
             .order_by(ProviderAggregate.aggregate_uuid))
    return list(await session.scalars(query))


_OF_PROVIDERS = fast.Statement(select(ProviderAggregate.provider_id, ProviderAggregate.aggregate_uuid)
                               .where(ProviderAggregate.provider_id.in_(bindparam("ids", expanding=True))))


async def of_providers(session: fast.Session, provider_ids: Iterable[int]) -> dict[int, set[str]]:
    ids = set(provider_ids)
    out: dict[int, set[str]] = {i: set() for i in ids}
    for chunk in chunks(ids):
        rows = await fast.rows(session, _OF_PROVIDERS, {"ids": chunk})
        for pid, agg in rows:
            out[pid].add(agg)
    return out


async def set_for_provider(session: AsyncSession, rp: ResourceProvider, aggregate_uuids: Iterable[str],
                           generation: int | None, *, bump: bool = True) -> int:
    """Replace the provider's aggregates; returns its generation afterwards.
    ``bump=False`` keeps the generation (Placement before 1.19)."""
    wanted = sorted(set(aggregate_uuids))
    if bump:
        await generations.bump(session, rp, generation)
    await session.execute(sql_delete(ProviderAggregate).where(ProviderAggregate.provider_id == rp.id))
    if wanted:
        await session.execute(insert(ProviderAggregate),
                              [{"provider_id": rp.id, "aggregate_uuid": a} for a in wanted])
    return rp.generation
