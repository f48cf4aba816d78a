"""The two writes every server makes: the claim of a new consumer (the
scheduler's, at boot) and the release of everything a consumer holds (at
delete). They do what ``allocations.replace`` does for these cases, in
the same transaction phases, with compiled statements and nothing read
that the case cannot need:

* a new consumer has nothing to drop and no generation to compare, so the
  claim reads the providers, checks that the consumer does not exist,
  checks capacity, inserts, and bumps the providers' generations
  conditionally (a race on PostgreSQL is retried by the caller, as for
  ``replace``);
* a release of whatever is held needs no capacity check and no consumer
  generation: it deletes the allocations, bumps the providers they were
  on and forgets the consumer.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from loom.db import fast, locks
from loom.db.models import PlacementAllocation, PlacementConsumer, ResourceProvider
from loom.placement.errors import ConcurrentUpdate, PlacementInvalid, ProviderGenerationRace
from loom.timeutils import utcnow

_PROVIDERS = fast.Statement(select(ResourceProvider.id, ResourceProvider.uuid, ResourceProvider.generation)
                            .where(ResourceProvider.uuid.in_(bindparam("uuids", expanding=True)))
                            .order_by(ResourceProvider.id).with_for_update())
_CONSUMER = fast.Statement(select(PlacementConsumer.generation).where(PlacementConsumer.uuid == bindparam("match"))
                           .with_for_update())
_NEW_CONSUMER = fast.Statement(insert(PlacementConsumer))
_ALLOCATE = fast.Statement(insert(PlacementAllocation))
_BUMP = fast.Statement(update(ResourceProvider)
                       .where(ResourceProvider.id == bindparam("match"),
                              ResourceProvider.generation == bindparam("seen"))
                       .values(generation=ResourceProvider.generation + 1, updated_at=bindparam("now")))
_DROP = fast.Statement(delete(PlacementAllocation).where(PlacementAllocation.consumer_uuid == bindparam("match"))
                       .returning(PlacementAllocation.provider_id))
# A release holds the write lock (SQLite) or the rows (PostgreSQL): an
# unconditional increment cannot lose another writer's bump.
_BUMP_ANY = fast.Statement(update(ResourceProvider)
                           .where(ResourceProvider.id.in_(bindparam("ids", expanding=True)))
                           .values(generation=ResourceProvider.generation + 1, updated_at=bindparam("now")))
_FORGET = fast.Statement(delete(PlacementConsumer).where(PlacementConsumer.uuid == bindparam("match")))


async def claim_new(session: fast.Session, consumer_uuid: str, allocations: Mapping[str, Mapping[str, int]],
                    project_id: str, user_id: str, consumer_type: str | None) -> int:
    """Give a consumer that holds nothing ``allocations``; its generation (1)."""
    from loom.placement.allocations import ConsumerAllocations, _check_capacity

    await locks.begin_write(session)
    wanted = {rp: dict(res) for rp, res in allocations.items() if any(res.values())}
    rps = {row.uuid: row for row in await fast.rows(session, _PROVIDERS, {"uuids": sorted(wanted)})}
    unknown = sorted(set(wanted) - set(rps))
    if unknown:
        raise PlacementInvalid(f"Allocation for resource provider '{unknown[0]}' that does not exist.",
                               provider=unknown[0])
    generation = await fast.scalar(session, _CONSUMER, {"match": consumer_uuid})
    if generation is not None:
        raise ConcurrentUpdate(f"consumer generation conflict - expected {generation} but got null",
                               consumer=consumer_uuid)
    await _check_capacity(session, rps, {consumer_uuid: ConsumerAllocations(wanted)})
    now = utcnow()
    try:
        await fast.run(session, _NEW_CONSUMER, {"uuid": consumer_uuid, "project_id": project_id, "user_id": user_id,
                                                "generation": 1, "consumer_type": consumer_type, "created_at": now,
                                                "updated_at": now})
    except IntegrityError:  # PostgreSQL: made meanwhile (the SELECT locked no row)
        raise ConcurrentUpdate(f"consumer {consumer_uuid} was created by another request",
                               consumer=consumer_uuid) from None
    await fast.run_many(session, _ALLOCATE, [
        {"provider_id": rps[rp_uuid].id, "consumer_uuid": consumer_uuid, "resource_class": rc, "used": amount,
         "created_at": now}
        for rp_uuid, res in sorted(wanted.items()) for rc, amount in sorted(res.items()) if amount])
    for rp in sorted(rps.values(), key=lambda r: r.id):
        if not await _bump(session, rp.id, rp.generation):
            raise ProviderGenerationRace(f"resource provider {rp.uuid} changed while it was being updated",
                                         provider=rp.uuid)
    return 1


async def _bump(session: fast.Session, provider_id: int, seen: int) -> bool:
    """Move the provider past generation ``seen``; False if it was not there."""
    return await fast.run(session, _BUMP, {"match": provider_id, "seen": seen, "now": utcnow()}) == 1


async def release_all(session: fast.Session, consumer_uuid: str) -> bool:
    """Free everything the consumer holds; whether it held anything."""
    await locks.begin_write(session)
    provider_ids = sorted({row[0] for row in await fast.rows(session, _DROP, {"match": consumer_uuid})})
    if provider_ids:
        await fast.run(session, _BUMP_ANY, {"ids": provider_ids, "now": utcnow()})
    await fast.run(session, _FORGET, {"match": consumer_uuid})
    return bool(provider_ids)
