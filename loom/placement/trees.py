"""Provider trees as allocation candidates read them: each tree's
providers, inventories with their usage, traits and aggregates, in bulk.

``TreeCache`` keeps the trees between requests (the scheduler's): every
change placement makes to a provider's inventory, allocations or traits
bumps its generation, so one query of every provider's row (uuid, name,
generation, parent, root) tells which trees changed since they were read,
and only those are read again; a cached tree also remembers its
candidates per kind of request. A request that needs aggregates reads
them afresh: before microversion 1.19 an aggregate change keeps the
generation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select

from loom.db import fast
from loom.db.models import PlacementAllocation, ProviderInventory, ResourceProvider
from loom.placement import aggregates, traits
from loom.placement.capacity import InventorySpec, fits
from loom.placement.sql import chunks

# Request keys whose candidates a cached tree remembers.
SOLVED_PER_TREE = 64


@dataclass(frozen=True)
class ProviderSummary:
    uuid: str
    name: str
    generation: int
    parent_provider_uuid: str | None
    root_provider_uuid: str
    # class → {"capacity": int, "used": int}, for every class it has inventory of
    resources: dict[str, dict[str, int]]
    traits: frozenset[str]


@dataclass
class Tree:
    root: int
    providers: list[Any]  # rows of _PROVIDER_COLUMNS
    inventory: dict[int, dict[str, tuple[InventorySpec, int]]]
    traits: dict[int, set[str]]
    aggregates: dict[int, set[str]]
    parent: dict[int, int | None]
    _summaries: dict[str, ProviderSummary] | None = field(default=None, repr=False)
    # Request key → the tree's candidates for it (TreeCache's trees only).
    solved: dict[Any, list[Any]] = field(default_factory=dict, repr=False)

    def remember(self, key: Any, found: list[Any]) -> None:
        if len(self.solved) >= SOLVED_PER_TREE:
            self.solved.clear()
        self.solved[key] = found

    def effective_aggregates(self, pid: int) -> set[str]:
        return self.aggregates.get(pid, set()) | self.aggregates.get(self.root, set())

    def has_room(self, pid: int, rc: str, amount: int) -> bool:
        entry = self.inventory.get(pid, {}).get(rc)
        return entry is not None and fits(entry[0], entry[1], amount)

    def ancestors(self, pid: int) -> Iterator[int]:
        node: int | None = pid
        while node is not None:
            yield node
            node = self.parent.get(node)

    def summaries(self) -> dict[str, ProviderSummary]:
        """Every provider of the tree by uuid, as candidates show them
        (built once: the candidates of a tree share them, read only)."""
        if self._summaries is None:
            uuid_of = {p.id: p.uuid for p in self.providers}
            self._summaries = {p.uuid: ProviderSummary(
                p.uuid, p.name, p.generation, uuid_of.get(p.parent_provider_id) if p.parent_provider_id else None,
                uuid_of[self.root],
                {rc: {"capacity": int(spec.capacity), "used": used}
                 for rc, (spec, used) in sorted(self.inventory[p.id].items())},
                frozenset(self.traits[p.id])) for p in self.providers}
        return self._summaries


# Plain rows, not ORM objects: the scheduler reads trees on every request,
# and building mapped objects was most of that time.
_PROVIDER_COLUMNS = (ResourceProvider.id, ResourceProvider.uuid, ResourceProvider.name, ResourceProvider.generation,
                     ResourceProvider.parent_provider_id, ResourceProvider.root_provider_id)
_INVENTORY_COLUMNS = (ProviderInventory.provider_id, ProviderInventory.resource_class, ProviderInventory.total,
                      ProviderInventory.reserved, ProviderInventory.min_unit, ProviderInventory.max_unit,
                      ProviderInventory.step_size, ProviderInventory.allocation_ratio)

# Built once (ids as expanding parameters): they run on every scheduling request.
_ALL_PROVIDERS = fast.Statement(select(*_PROVIDER_COLUMNS).order_by(ResourceProvider.id))
_TREE_PROVIDERS = fast.Statement(select(*_PROVIDER_COLUMNS)
                                 .where(ResourceProvider.root_provider_id.in_(bindparam("ids", expanding=True)))
                                 .order_by(ResourceProvider.id))
_TREE_USAGE = fast.Statement(select(PlacementAllocation.provider_id, PlacementAllocation.resource_class,
                                    func.sum(PlacementAllocation.used))
                             .where(PlacementAllocation.provider_id.in_(bindparam("ids", expanding=True)))
                             .group_by(PlacementAllocation.provider_id, PlacementAllocation.resource_class))
_TREE_INVENTORY = fast.Statement(select(*_INVENTORY_COLUMNS)
                                 .where(ProviderInventory.provider_id.in_(bindparam("ids", expanding=True))))


async def load(session: fast.Session, roots: list[int], need_aggregates: bool) -> list[Tree]:
    """The trees of these root provider ids, in root id order."""
    rows = await fast.rows(session, _TREE_PROVIDERS, {"ids": roots})
    ids = [r.id for r in rows]
    inventory: dict[int, dict[str, tuple[InventorySpec, int]]] = defaultdict(dict)
    used: dict[tuple[int, str], int] = {}
    for chunk in chunks(ids):
        # Usage after the providers' rows: a tree is never older than the
        # generations it was read with (TreeCache relies on it).
        for pid, rc, n in await fast.rows(session, _TREE_USAGE, {"ids": chunk}):
            used[(pid, rc)] = int(n)
        for pid, rc, total, reserved, min_unit, max_unit, step, ratio in await fast.rows(
                session, _TREE_INVENTORY, {"ids": chunk}):
            spec = InventorySpec(total, reserved, min_unit, max_unit, step, ratio)
            inventory[pid][rc] = (spec, used.get((pid, rc), 0))
    trait_map = await traits.of_providers(session, ids)
    agg_map = await aggregates.of_providers(session, ids) if need_aggregates else {}
    by_root: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        by_root[r.root_provider_id or r.id].append(r)
    return [Tree(root, members, {r.id: inventory.get(r.id, {}) for r in members},
                 {r.id: trait_map.get(r.id, set()) for r in members},
                 {r.id: agg_map.get(r.id, set()) for r in members},
                 {r.id: r.parent_provider_id for r in members})
            for root, members in sorted(by_root.items())]


class TreeCache:
    """Every provider tree without aggregates, kept between requests and
    read again when one of its providers' rows changed."""

    def __init__(self) -> None:
        self._trees: dict[int, Tree] = {}

    async def trees(self, session: fast.Session) -> list[Tree]:
        """Every tree as the database has it now, in root id order."""
        by_root: dict[int, list[Any]] = defaultdict(list)
        for row in await fast.rows(session, _ALL_PROVIDERS):
            by_root[row.root_provider_id or row.id].append(row)
        stale = [root for root, members in by_root.items() if not self._current(root, members)]
        for chunk in chunks(stale, 500):
            for tree in await load(session, chunk, need_aggregates=False):
                self._trees[tree.root] = tree
        for root in set(self._trees) - set(by_root):
            del self._trees[root]
        return [self._trees[root] for root in sorted(by_root) if root in self._trees]

    def _current(self, root: int, members: list[Any]) -> bool:
        tree = self._trees.get(root)
        return tree is not None and tree.providers == members
