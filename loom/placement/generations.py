"""Provider generations: optimistic concurrency for every change to a
provider (inventory, traits, aggregates, allocations against it).

A change bumps the generation with a conditional UPDATE (``WHERE generation
= :seen``). If the caller named the generation it expects and it is not the
current one, the change fails with ``ConcurrentUpdate``; if the row moved
between our read and our write, ``ProviderGenerationRace`` tells a
read-modify-write caller to start again.
"""

from __future__ import annotations

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from loom.db.models import ResourceProvider
from loom.placement.errors import ConcurrentUpdate, ProviderGenerationRace
from loom.timeutils import utcnow


def conflict(rp: ResourceProvider) -> ConcurrentUpdate:
    return ConcurrentUpdate(f"resource provider generation conflict: resource provider {rp.uuid} was updated "
                            "by someone else; read it again and retry.", provider=rp.uuid)


# Built once: every write to a provider runs it.
_BUMP = (update(ResourceProvider)
         .where(ResourceProvider.id == bindparam("rp_id"), ResourceProvider.generation == bindparam("seen"))
         .values(generation=bindparam("next"), updated_at=bindparam("now"))
         .execution_options(synchronize_session=False))


async def bump(session: AsyncSession, rp: ResourceProvider, expected: int | None = None) -> int:
    """Move ``rp`` to its next generation; returns the new one."""
    seen = rp.generation
    if expected is not None and expected != seen:
        raise conflict(rp)
    now = utcnow()
    result = await session.execute(_BUMP, {"rp_id": rp.id, "seen": seen, "next": seen + 1, "now": now})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        if expected is not None:
            raise conflict(rp)
        raise ProviderGenerationRace(f"resource provider {rp.uuid} changed while it was being updated",
                                     provider=rp.uuid)
    set_committed_value(rp, "generation", seen + 1)
    set_committed_value(rp, "updated_at", now)
    return seen + 1
