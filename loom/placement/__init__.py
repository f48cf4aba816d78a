"""Placement, as a library: resource providers, their inventories, traits
and aggregates, allocations per consumer, usages, and allocation
candidates. The scheduler and the conductor call it in process; the REST
API at ``/placement`` (``loom.api.placement``) is built on it.

What other services use::

    from loom import placement

    found = await placement.candidates(session, placement.CandidateRequest.simple(
        {"VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 20}, required=["HW_CPU_X86_AVX"], limit=50))
    gen = await placement.claim(db, instance_uuid, found[0].allocations, project_id, user_id,
                                consumer_generation=None)
    await placement.release(db, instance_uuid)
    await placement.move(db, instance_uuid, migration_uuid)
    await placement.ensure_provider(db, host_uuid, hostname)
    await placement.set_inventory(db, host_uuid, {"VCPU": {"total": 16, "allocation_ratio": 4.0}})

See docs/placement.md for the whole interface and its concurrency rules.
"""

from loom.placement.allocation_candidates import Candidate, ProviderSummary, candidates
from loom.placement.allocations import (
    ANY,
    ConsumerAllocations,
    ConsumerView,
    claim,
    move,
    release,
)
from loom.placement.allocations import write as write_allocations
from loom.placement.capacity import InventorySpec
from loom.placement.errors import (
    ConcurrentUpdate,
    InsufficientCapacity,
    InventoryInUse,
    PlacementConflict,
    PlacementInvalid,
    PlacementNotFound,
    ProviderNotFound,
)
from loom.placement.inventories import set_inventory
from loom.placement.providers import ensure_provider
from loom.placement.request import AggregateFilter, CandidateRequest, ProviderQuery, RequestGroup, TraitFilter

__all__ = [
    "ANY",
    "AggregateFilter",
    "Candidate",
    "CandidateRequest",
    "ConcurrentUpdate",
    "ConsumerAllocations",
    "ConsumerView",
    "InsufficientCapacity",
    "InventoryInUse",
    "InventorySpec",
    "PlacementConflict",
    "PlacementInvalid",
    "PlacementNotFound",
    "ProviderNotFound",
    "ProviderQuery",
    "ProviderSummary",
    "RequestGroup",
    "TraitFilter",
    "candidates",
    "claim",
    "ensure_provider",
    "move",
    "release",
    "set_inventory",
    "write_allocations",
]
