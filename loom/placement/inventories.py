"""Inventories: how much of each resource class a provider has, with its
reservation, allocation ratio and unit constraints.

Every change bumps the provider's generation. Removing a class that
allocations use fails with ``InventoryInUse``; shrinking below what is used
is allowed (the host knows best) and only logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db import fast
from loom.db.engine import Database
from loom.db.models import PlacementAllocation, ProviderInventory, ResourceProvider
from loom.placement import generations, providers, resource_classes
from loom.placement.capacity import InventorySpec, invalid_reason
from loom.placement.errors import InventoryInUse, PlacementInvalid, PlacementNotFound, ProviderGenerationRace
from loom.placement.sql import chunks

LOG = logging.getLogger(__name__)

# How often a read-modify-write is tried before the race is reported.
RETRIES = 10


async def of_provider(session: AsyncSession, rp: ResourceProvider) -> dict[str, ProviderInventory]:
    rows = await session.scalars(select(ProviderInventory).where(ProviderInventory.provider_id == rp.id)
                                 .order_by(ProviderInventory.resource_class))
    return {row.resource_class: row for row in rows}


# Built once: every claim runs it.
_USAGES = fast.Statement(select(PlacementAllocation.provider_id, PlacementAllocation.resource_class,
                                func.sum(PlacementAllocation.used))
                         .where(PlacementAllocation.provider_id.in_(bindparam("ids", expanding=True)))
                         .group_by(PlacementAllocation.provider_id, PlacementAllocation.resource_class))


async def usages(session: fast.Session, provider_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """What is allocated, per provider and resource class."""
    out: dict[int, dict[str, int]] = {}
    for chunk in chunks(set(provider_ids)):
        rows = await fast.rows(session, _USAGES, {"ids": chunk})
        for pid, rc, used in rows:
            out.setdefault(pid, {})[rc] = int(used)
    return out


def validate(rp_uuid: str, resource_class: str, spec: InventorySpec, reserved_may_equal_total: bool = True) -> None:
    reason = invalid_reason(spec, reserved_may_equal_total=reserved_may_equal_total)
    if reason:
        raise PlacementInvalid(f"Unable to update inventory for resource provider {rp_uuid}: invalid inventory "
                               f"of class {resource_class}: {reason}.")


async def replace(session: AsyncSession, rp: ResourceProvider, wanted: Mapping[str, Any], *,
                  generation: int | None, allow_in_use: bool = False, bump_if_unchanged: bool = True,
                  reserved_may_equal_total: bool = True) -> int:
    """Make ``rp``'s inventory exactly ``wanted`` (class → spec or dict).
    Returns the provider's generation afterwards."""
    specs = {rc: InventorySpec.of(v) for rc, v in wanted.items()}
    for rc, spec in specs.items():
        validate(rp.uuid, rc, spec, reserved_may_equal_total)
    await resource_classes.require(session, set(specs))
    current = await of_provider(session, rp)
    if generation is not None and generation != rp.generation:
        raise generations.conflict(rp)
    removed = set(current) - set(specs)
    used = (await usages(session, [rp.id])).get(rp.id, {})
    in_use = sorted(rc for rc in removed if used.get(rc))
    if in_use and not allow_in_use:
        raise InventoryInUse(f"Inventory for '{', '.join(in_use)}' on resource provider '{rp.uuid}' in use.",
                             provider=rp.uuid, resource_classes=in_use)
    changed = bool(removed)
    for rc, spec in specs.items():
        row = current.get(rc)
        if row is None:
            session.add(ProviderInventory(provider_id=rp.id, resource_class=rc, **spec.as_dict()))
            changed = True
        elif InventorySpec.of(row) != spec:
            for name, value in spec.as_dict().items():
                setattr(row, name, value)
            changed = True
        if used.get(rc, 0) > spec.capacity:
            LOG.warning("Inventory of %s on resource provider %s is now below what is allocated (%s > %s)",
                        rc, rp.uuid, used[rc], spec.capacity)
    if not changed and not bump_if_unchanged:
        return rp.generation
    if removed:
        await session.execute(sql_delete(ProviderInventory).where(
            ProviderInventory.provider_id == rp.id, ProviderInventory.resource_class.in_(sorted(removed))))
    await session.flush()
    return await generations.bump(session, rp, generation)


async def update_one(session: AsyncSession, rp: ResourceProvider, resource_class: str, spec: Any,
                     generation: int | None, *, create: bool = False, reserved_may_equal_total: bool = True
                     ) -> ProviderInventory:
    """Change (or with ``create``, add) one class of ``rp``'s inventory."""
    current = await of_provider(session, rp)
    if resource_class not in current and not create:
        raise PlacementNotFound(f"No inventory record with resource class for resource provider {rp.uuid}: "
                                f"{resource_class}")
    wanted: dict[str, Any] = {rc: InventorySpec.of(row) for rc, row in current.items()}
    wanted[resource_class] = InventorySpec.of(spec)
    await replace(session, rp, wanted, generation=generation, reserved_may_equal_total=reserved_may_equal_total)
    return (await of_provider(session, rp))[resource_class]


async def delete_one(session: AsyncSession, rp: ResourceProvider, resource_class: str,
                     generation: int | None = None) -> int:
    current = await of_provider(session, rp)
    if resource_class not in current:
        raise PlacementNotFound(f"No inventory of class {resource_class} found for delete")
    wanted = {rc: InventorySpec.of(row) for rc, row in current.items() if rc != resource_class}
    return await replace(session, rp, wanted, generation=generation)


async def set_inventory(db: Database, rp_uuid: str, inventories: Mapping[str, Any],
                        generation: int | None = None) -> int:
    """Set provider ``rp_uuid``'s whole inventory (class → ``InventorySpec``
    or a dict of its fields; missing fields take Placement's defaults) in its
    own transaction, and return the provider's generation afterwards.

    With ``generation`` the write happens only if the provider is still at
    that generation (else ``ConcurrentUpdate``). Without it, as a compute
    host's periodic report does, the current generation is read and the
    write retried if another writer got in between; an unchanged inventory
    writes nothing and keeps the generation.
    """
    for attempt in range(RETRIES):
        try:
            async with db.session.begin() as session:
                rp = await providers.get(session, rp_uuid, for_update=True)
                return await replace(session, rp, inventories, generation=generation,
                                     bump_if_unchanged=generation is not None)
        except ProviderGenerationRace:
            if attempt == RETRIES - 1:
                raise
            await asyncio.sleep(random.uniform(0, 0.01 * (attempt + 1)))
    raise AssertionError("unreachable")
