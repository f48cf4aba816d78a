"""Reshaping: moving inventory between providers of a tree together with
the allocations that use it (a host splitting its VGPUs into child
providers, say), in one transaction: either all of it happens or none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.models import PlacementAllocation, ProviderInventory
from loom.placement import allocations, inventories, providers
from loom.placement.allocations import ConsumerAllocations
from loom.placement.errors import InventoryInUse
from loom.placement.sql import chunks


async def reshape(session: AsyncSession, new_inventories: Mapping[str, tuple[int, Mapping[str, Any]]],
                  new_allocations: Mapping[str, ConsumerAllocations]) -> None:
    """Set the inventories (provider uuid → (generation it must be at,
    class → spec)) and replace the consumers' allocations; afterwards no
    allocation may be left on inventory that is gone."""
    rps = await providers.by_uuids(session, new_inventories, for_update=True)
    for rp_uuid in new_inventories:
        if rp_uuid not in rps:
            raise providers.not_found(rp_uuid)
    for rp_uuid, (generation, wanted) in new_inventories.items():
        await inventories.replace(session, rps[rp_uuid], wanted, generation=generation, allow_in_use=True)
    await allocations.replace(session, new_allocations)
    ids = [rp.id for rp in rps.values()]
    for chunk in chunks(ids):
        orphans = await session.execute(
            select(PlacementAllocation.provider_id, PlacementAllocation.resource_class).distinct()
            .outerjoin(ProviderInventory, (ProviderInventory.provider_id == PlacementAllocation.provider_id)
                       & (ProviderInventory.resource_class == PlacementAllocation.resource_class))
            .where(PlacementAllocation.provider_id.in_(chunk), ProviderInventory.provider_id.is_(None)))
        for pid, rc in orphans:
            rp_uuid = next(u for u, rp in rps.items() if rp.id == pid)
            raise InventoryInUse(f"Inventory for '{rc}' on resource provider '{rp_uuid}' in use.")
