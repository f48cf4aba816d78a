"""Allocations: what each consumer (an instance, a migration...) uses of
which provider. The write path is the one that must never overcommit.

Writing replaces every named consumer's allocations at once, in phases
inside one transaction:

1. delete the consumers' current allocations (on SQLite this first write
   also takes the database's write lock, so claims queue there);
2. lock the providers involved, in id order (``SELECT ... FOR UPDATE`` on
   PostgreSQL: concurrent claims on a provider queue instead of failing);
3. check consumer generations (``ConcurrentUpdate`` on a mismatch) and
   create or update consumer records;
4. check, for every provider and class, that the inventory exists and
   that the new amounts respect min_unit/max_unit/step_size and fit:
   ``used + requested <= (total - reserved) * allocation_ratio``;
5. insert the new allocations;
6. bump each provider's generation with a conditional UPDATE (``WHERE
   generation = :seen``) and each consumer's likewise; a provider whose
   generation moved raises ``ProviderGenerationRace`` and ``write`` runs
   the whole transaction again (a few times, with jitter);
7. delete consumers left without allocations (their generation starts
   afresh: the next write for them passes ``None``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db import fast, locks
from loom.db.engine import Database
from loom.db.models import PlacementAllocation, PlacementConsumer, ProviderInventory, ResourceProvider
from loom.placement import boot_claims, generations, providers, resource_classes
from loom.placement.capacity import InventorySpec, unit_violation
from loom.placement.errors import (
    ConcurrentUpdate,
    InsufficientCapacity,
    PlacementInvalid,
    PlacementNotFound,
    ProviderGenerationRace,
)
from loom.placement.inventories import usages
from loom.placement.sql import chunks
from loom.timeutils import utcnow

# Writes retried after a provider generation race, before giving up.
RETRIES = 10

Resources = Mapping[str, int]
T = TypeVar("T")


class Generation(Enum):
    """``ANY``: write whatever the consumer's generation (Placement before
    1.28, and ``DELETE /allocations/{consumer}``)."""

    ANY = "any"


ANY = Generation.ANY
ConsumerGeneration = int | None | Generation


@dataclass(frozen=True)
class ConsumerAllocations:
    """What one consumer should hold afterwards: provider uuid → class →
    amount. Empty means "release everything"."""

    allocations: Mapping[str, Resources]
    project_id: str | None = None
    user_id: str | None = None
    # The generation the writer last saw; None for "a new consumer".
    generation: ConsumerGeneration = ANY
    consumer_type: str | None = None


@dataclass
class ConsumerView:
    """A consumer's allocations as ``GET /allocations/{consumer}`` shows them."""

    uuid: str
    # provider uuid → {"generation": provider generation, "resources": {class: amount}}
    allocations: dict[str, dict[str, Any]] = field(default_factory=dict)
    project_id: str | None = None
    user_id: str | None = None
    generation: int | None = None
    consumer_type: str | None = None
    last_modified: dt.datetime | None = None


async def for_consumer(session: AsyncSession, consumer_uuid: str) -> ConsumerView:
    rows = (await session.execute(
        select(PlacementAllocation, ResourceProvider.uuid, ResourceProvider.generation)
        .join(ResourceProvider, ResourceProvider.id == PlacementAllocation.provider_id)
        .where(PlacementAllocation.consumer_uuid == consumer_uuid)
        .order_by(PlacementAllocation.id))).all()
    view = ConsumerView(consumer_uuid)
    for alloc, rp_uuid, rp_generation in rows:
        entry = view.allocations.setdefault(rp_uuid, {"generation": rp_generation, "resources": {}})
        entry["resources"][alloc.resource_class] = alloc.used
        view.last_modified = max(filter(None, (view.last_modified, alloc.created_at)), default=None)
    if rows:
        consumer = await session.get(PlacementConsumer, consumer_uuid)
        if consumer is not None:
            view.project_id, view.user_id = consumer.project_id, consumer.user_id
            view.generation, view.consumer_type = consumer.generation, consumer.consumer_type
    return view


async def for_provider(session: AsyncSession, rp: ResourceProvider) -> tuple[dict[str, dict[str, Any]],
                                                                              dt.datetime | None]:
    """Consumer uuid → {"resources": {class: amount}, "consumer_generation"},
    and when the newest of them was made."""
    rows = (await session.execute(
        select(PlacementAllocation, PlacementConsumer.generation)
        .join(PlacementConsumer, PlacementConsumer.uuid == PlacementAllocation.consumer_uuid)
        .where(PlacementAllocation.provider_id == rp.id).order_by(PlacementAllocation.id))).all()
    out: dict[str, dict[str, Any]] = {}
    newest = None
    for alloc, consumer_generation in rows:
        entry = out.setdefault(alloc.consumer_uuid, {"resources": {}, "consumer_generation": consumer_generation})
        entry["resources"][alloc.resource_class] = alloc.used
        newest = max(filter(None, (newest, alloc.created_at)), default=None)
    return out, newest


# Built once: every claim and release runs these.
_DROP = (sql_delete(PlacementAllocation)
         .where(PlacementAllocation.consumer_uuid.in_(bindparam("consumers", expanding=True)))
         .returning(PlacementAllocation.provider_id))
_CONSUMER = select(PlacementConsumer).where(PlacementConsumer.uuid == bindparam("uuid")).with_for_update()
_BUMP_CONSUMER = (update(PlacementConsumer)
                  .where(PlacementConsumer.uuid == bindparam("consumer"),
                         PlacementConsumer.generation == bindparam("seen"))
                  .values(generation=bindparam("next"), updated_at=bindparam("now"))
                  .execution_options(synchronize_session=False))
_INVENTORIES = fast.Statement(
    select(ProviderInventory.provider_id, ProviderInventory.resource_class, ProviderInventory.total,
           ProviderInventory.reserved, ProviderInventory.min_unit, ProviderInventory.max_unit,
           ProviderInventory.step_size, ProviderInventory.allocation_ratio)
    .where(ProviderInventory.provider_id.in_(bindparam("ids", expanding=True))))
_HOLDS = select(PlacementAllocation.id).where(PlacementAllocation.consumer_uuid == bindparam("uuid")).limit(1)


async def replace(session: AsyncSession, wanted: Mapping[str, ConsumerAllocations]) -> dict[str, int | None]:
    """Replace the allocations of every consumer in ``wanted`` inside the
    caller's transaction (phases in the module docstring). Returns each
    consumer's new generation (None once it holds nothing)."""
    consumers = sorted(wanted)
    # SQLite: take the writer's lock before reading, so the generations read
    # below are still current when they are bumped.
    await locks.begin_write(session)
    # Phase 1: drop what they hold now, remembering where it was. A consumer
    # expected to be new holds nothing (if it exists after all, phase 3
    # refuses the write and the transaction rolls back).
    old_provider_ids: set[int] = set()
    for chunk in chunks([c for c in consumers if wanted[c].generation is not None]):
        result = await session.execute(_DROP, {"consumers": chunk})
        old_provider_ids.update(result.scalars())
    # Phase 2: lock the providers.
    new_uuids = {rp_uuid for c in wanted.values() for rp_uuid, res in c.allocations.items() if res}
    rps = await providers.by_uuids(session, new_uuids, for_update=True)
    unknown = sorted(new_uuids - set(rps))
    if unknown:
        raise PlacementInvalid(f"Allocation for resource provider '{unknown[0]}' that does not exist.",
                               provider=unknown[0])
    old_only = old_provider_ids - {rp.id for rp in rps.values()}
    touched = list(rps.values())
    for id_chunk in chunks(sorted(old_only)):
        touched += await session.scalars(select(ResourceProvider).where(ResourceProvider.id.in_(id_chunk))
                                         .order_by(ResourceProvider.id).with_for_update())
    # Phase 3: consumers.
    records = {uuid: await _consumer(session, uuid, wanted[uuid]) for uuid in consumers}
    # Phase 4: capacity.
    await _check_capacity(session, rps, wanted)
    # Phase 5: the new allocations.
    now = utcnow()
    rows = [{"provider_id": rps[rp_uuid].id, "consumer_uuid": uuid, "resource_class": rc, "used": amount,
             "created_at": now}
            for uuid in consumers for rp_uuid, res in sorted(wanted[uuid].allocations.items())
            for rc, amount in sorted(res.items()) if amount]
    if rows:
        await session.execute(insert(PlacementAllocation), rows)
    # Phase 6: generations (a consumer made here already has its first; one
    # left with nothing is about to go).
    for rp in sorted(touched, key=lambda r: r.id):
        await generations.bump(session, rp)
    empty = [uuid for uuid in consumers if not any(any(r.values()) for r in wanted[uuid].allocations.values())]
    out: dict[str, int | None] = {}
    for uuid in consumers:
        row, created = records[uuid]
        if created:
            out[uuid] = row.generation
        elif uuid not in empty:
            out[uuid] = await _bump_consumer(session, row)
    # Phase 7: consumers left with nothing are forgotten.
    for chunk in chunks(empty):
        await session.execute(sql_delete(PlacementConsumer).where(PlacementConsumer.uuid.in_(chunk)))
    for uuid in empty:
        out[uuid] = None
    return out


async def _consumer(session: AsyncSession, uuid: str, want: ConsumerAllocations) -> tuple[PlacementConsumer, bool]:
    """The consumer's row, made (with its first generation) if it is new;
    and whether it was made here."""
    row = await session.scalar(_CONSUMER, {"uuid": uuid})
    if want.generation is not ANY:
        if row is not None and row.generation != want.generation:
            raise ConcurrentUpdate(f"consumer generation conflict - expected {row.generation} but got "
                                   f"{_json(want.generation)}", consumer=uuid)
        if row is None and want.generation is not None:
            raise ConcurrentUpdate(f"consumer generation conflict - expected null but got {want.generation}",
                                   consumer=uuid)
    if row is None:
        row = PlacementConsumer(uuid=uuid, project_id=want.project_id or "", user_id=want.user_id or "",
                                generation=1, consumer_type=want.consumer_type)
        session.add(row)
        try:
            await session.flush()
        except IntegrityError:
            raise ConcurrentUpdate(f"consumer {uuid} was created by another request", consumer=uuid) from None
        return row, True
    if want.project_id is not None and (row.project_id, row.user_id) != (want.project_id, want.user_id):
        row.project_id, row.user_id = want.project_id, want.user_id or ""
    if want.consumer_type is not None and row.consumer_type != want.consumer_type:
        row.consumer_type = want.consumer_type
    await session.flush()
    return row, False


def _json(value: Any) -> str:
    return "null" if value is None else str(value)


async def _bump_consumer(session: AsyncSession, row: PlacementConsumer) -> int:
    seen = row.generation
    result = await session.execute(_BUMP_CONSUMER, {"consumer": row.uuid, "seen": seen, "next": seen + 1,
                                                    "now": utcnow()})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentUpdate(f"consumer {row.uuid} was changed by another request", consumer=row.uuid)
    return seen + 1


async def _check_capacity(session: fast.Session, rps: Mapping[str, Any],
                          wanted: Mapping[str, ConsumerAllocations]) -> None:
    requested = requested_amounts(wanted)
    if not requested:
        return
    unknown = await resource_classes.missing(session, {rc for _, rc in requested})
    if unknown:
        raise PlacementInvalid(f"Unable to allocate inventory: unknown resource class(es) "
                               f"{', '.join(sorted(unknown))}.")
    ids = {rps[rp_uuid].id for rp_uuid, _ in requested}
    inventories: dict[tuple[int, str], InventorySpec] = {}
    for chunk in chunks(ids):
        for row in await fast.rows(session, _INVENTORIES, {"ids": chunk}):
            inventories[(row.provider_id, row.resource_class)] = InventorySpec.of(row)
    verify(requested, rps, inventories, await usages(session, ids))


def requested_amounts(wanted: Mapping[str, ConsumerAllocations]) -> dict[tuple[str, str], list[int]]:
    """(provider uuid, class) → the non-zero amounts asked for."""
    requested: dict[tuple[str, str], list[int]] = defaultdict(list)
    for want in wanted.values():
        for rp_uuid, res in want.allocations.items():
            for rc, amount in res.items():
                if amount:
                    requested[(rp_uuid, rc)].append(amount)
    return requested


def verify(requested: Mapping[tuple[str, str], list[int]], rps: Mapping[str, Any],
           inventories: Mapping[tuple[int, str], InventorySpec], used: Mapping[int, Mapping[str, int]]) -> None:
    """Refuse amounts that break an inventory's units or exceed its capacity."""
    for (rp_uuid, rc), amounts in sorted(requested.items()):
        rp = rps[rp_uuid]
        inv = inventories.get((rp.id, rc))
        if inv is None:
            raise InsufficientCapacity(f"Unable to allocate inventory: Inventory for '{rc}' on resource provider "
                                       f"'{rp_uuid}' invalid.", provider=rp_uuid, resource_class=rc)
        for amount in amounts:
            violation = unit_violation(inv, amount)
            if violation:
                raise InsufficientCapacity(
                    f"Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider "
                    f"'{rp_uuid}'. The requested amount would violate inventory constraints: {violation}.",
                    provider=rp_uuid, resource_class=rc)
        if used.get(rp.id, {}).get(rc, 0) + sum(amounts) > inv.capacity:
            raise InsufficientCapacity(
                f"Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider "
                f"'{rp_uuid}'. The requested amount would exceed the capacity.", provider=rp_uuid, resource_class=rc)


async def write(db: Database, wanted: Mapping[str, ConsumerAllocations]) -> dict[str, int | None]:
    """``replace`` in its own transaction, run again after a provider
    generation race (up to ``RETRIES`` times, then ``ConcurrentUpdate``)."""
    return await _retried(db, lambda session: replace(session, wanted))


async def _retried(db: Database, fn: Callable[[Any], Awaitable[T]], *, compiled: bool = False) -> T:
    """``fn`` in its own transaction, run again after a provider generation
    race (as ``write``). ``compiled``: ``fn`` runs only compiled
    statements, so a ``Tx`` will do (loom.db.tx)."""
    for attempt in range(RETRIES):
        try:
            async with db.transaction() if compiled else db.session.begin() as session:
                return await fn(session)
        except ProviderGenerationRace:
            if attempt == RETRIES - 1:
                raise ConcurrentUpdate("Inventory and/or allocations changed while attempting to allocate: "
                                       "giving up after retrying.") from None
            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
    raise AssertionError("unreachable")


async def claim(db: Database, consumer_uuid: str, allocations: Mapping[str, Resources], project_id: str,
                user_id: str, consumer_generation: ConsumerGeneration, consumer_type: str | None = None) -> int:
    """Give ``consumer_uuid`` exactly ``allocations`` (provider uuid → class
    → amount), replacing whatever it held, atomically. ``consumer_generation``
    is the generation last seen (None for a new consumer, ``ANY`` to skip the
    check). Returns the consumer's new generation.

    Raises ``InsufficientCapacity`` if anything does not fit,
    ``ConcurrentUpdate`` on a generation mismatch, ``PlacementInvalid`` for
    an unknown provider or resource class."""
    if not any(any(r.values()) for r in allocations.values()):
        raise PlacementInvalid("A claim needs at least one non-zero allocation; use release() to free.")
    if consumer_generation is None:  # a new consumer: every boot's claim
        return await _retried(db, lambda session: boot_claims.claim_new(
            session, consumer_uuid, allocations, project_id, user_id, consumer_type), compiled=True)
    gens = await write(db, {consumer_uuid: ConsumerAllocations(allocations, project_id, user_id,
                                                               consumer_generation, consumer_type)})
    generation = gens[consumer_uuid]
    assert generation is not None
    return generation


async def release(db: Database, consumer_uuid: str, consumer_generation: ConsumerGeneration = ANY) -> bool:
    """Free everything ``consumer_uuid`` holds; whether it held anything."""
    if consumer_generation is ANY:  # every delete's release
        return await _retried(db, lambda session: boot_claims.release_all(session, consumer_uuid), compiled=True)
    async with db.session() as session:
        held = await session.scalar(_HOLDS, {"uuid": consumer_uuid})
    if held is None and consumer_generation is ANY:
        return False
    await write(db, {consumer_uuid: ConsumerAllocations({}, generation=consumer_generation)})
    return held is not None


async def move(db: Database, from_consumer: str, to_consumer: str, *,
               from_generation: ConsumerGeneration = ANY, to_generation: ConsumerGeneration = ANY) -> int:
    """Hand everything ``from_consumer`` holds to ``to_consumer`` (which
    loses what it held), atomically: how a migration record takes over an
    instance's allocations on its source host. Returns ``to_consumer``'s
    new generation."""
    for attempt in range(RETRIES):
        try:
            async with db.session.begin() as session:
                view = await for_consumer(session, from_consumer)
                if not view.allocations:
                    raise PlacementNotFound(f"No allocations for consumer '{from_consumer}'")
                moved = {rp: dict(entry["resources"]) for rp, entry in view.allocations.items()}
                gens = await replace(session, {
                    from_consumer: ConsumerAllocations({}, generation=from_generation),
                    to_consumer: ConsumerAllocations(moved, view.project_id, view.user_id, to_generation,
                                                     view.consumer_type),
                })
            generation = gens[to_consumer]
            assert generation is not None
            return generation
        except ProviderGenerationRace:
            if attempt == RETRIES - 1:
                raise ConcurrentUpdate("allocations changed while moving them") from None
            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
    raise AssertionError("unreachable")
