"""Allocation candidates: the scheduler's entry point. Given what an
instance needs, which providers could hold it, and the allocations to
claim to get it.

A handful of queries, however many providers there are: one finds the
inventories with room for the smallest amount of each requested class; the
trees that can provide every class are kept; then their providers, traits,
aggregates and usages are read in bulk, and each tree is solved in memory:

- a suffixed group's resources all come from one provider of the tree,
  which has the group's traits and is in its aggregates (itself or its root);
- the unnumbered group's resources may come from several providers of one
  tree, one provider per class; together they have its required traits,
  none has a forbidden one;
- ``group_policy=isolate`` puts suffixed groups on different providers;
  ``same_subtree`` wants one of the groups' providers above all the others;
  ``root_required`` looks at the tree's root;
- where several groups take from one provider, their sum must fit.

Sharing providers (resources of one tree lent through an aggregate to
another) are not supported: every candidate comes from a single tree.
"""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db import fast
from loom.db.models import PlacementAllocation, ProviderInventory, ResourceProvider
from loom.placement import aggregates, traits
from loom.placement.capacity import InventorySpec, fits, unit_violation
from loom.placement.filters import capacity_expr
from loom.placement.request import UNNUMBERED, CandidateRequest, RequestGroup
from loom.placement.sql import chunks

# Combinations tried per tree before giving up on finding more in it.
MAX_COMBINATIONS_PER_TREE = 1000


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
class Candidate:
    """One way to satisfy the request, within one provider tree."""

    # provider uuid → class → amount: the body of a claim
    allocations: dict[str, dict[str, int]]
    # request group suffix → the providers that satisfy it ("" for unnumbered)
    mappings: dict[str, list[str]]
    root_provider_uuid: str
    # every provider of the tree, by uuid
    summaries: dict[str, ProviderSummary] = field(default_factory=dict)

    def allocation_request(self) -> dict[str, Any]:
        return {"allocations": {rp: {"resources": dict(res)} for rp, res in self.allocations.items()},
                "mappings": {k: list(v) for k, v in self.mappings.items()}}


@dataclass
class _Tree:
    root: int
    providers: list[Any]  # rows of _PROVIDER_COLUMNS
    inventory: dict[int, dict[str, tuple[InventorySpec, int]]]
    traits: dict[int, set[str]]
    aggregates: dict[int, set[str]]
    parent: dict[int, int | None]

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


async def candidates(session: AsyncSession, request: CandidateRequest) -> list[Candidate]:
    """Candidates for ``request``, at most ``request.limit`` of them, in
    provider creation order. Names (classes, traits) are not validated here:
    an unknown one simply matches nothing."""
    groups = {k: g for k, g in request.groups.items() if g.resources or k != UNNUMBERED or g.traits or g.member_of}
    if not any(g.resources for g in groups.values()):
        return []
    roots = await _viable_roots(session, groups)
    out: list[Candidate] = []
    for chunk in chunks(sorted(roots), 500):
        for tree in await _load_trees(session, chunk, any(g.member_of for g in groups.values())):
            found = _solve(tree, groups, request)
            if found:
                summaries = _summaries(tree)
                for cand in found:
                    cand.summaries = summaries
                out.extend(found)
            if request.limit is not None and len(out) >= request.limit:
                return out[:request.limit]
    return out


@functools.lru_cache(maxsize=64)
def _viable_roots_query(classes: tuple[str, ...], in_tree: bool) -> fast.Statement:
    """The query of _viable_roots for these classes, built once: the amounts
    (and the tree) are bound parameters. Building it took longer than
    running it."""
    inv, rp = ProviderInventory, ResourceProvider
    used = (select(PlacementAllocation.provider_id, PlacementAllocation.resource_class,
                   func.sum(PlacementAllocation.used).label("used"))
            .where(PlacementAllocation.resource_class.in_(classes))
            .group_by(PlacementAllocation.provider_id, PlacementAllocation.resource_class).subquery())
    query = (select(func.coalesce(rp.root_provider_id, rp.id), inv.resource_class)
             .join(rp, rp.id == inv.provider_id)
             .outerjoin(used, and_(used.c.provider_id == inv.provider_id, used.c.resource_class == inv.resource_class))
             .where(or_(*(and_(inv.resource_class == rc,
                               capacity_expr() >= func.coalesce(used.c.used, 0) + bindparam(f"amount_{i}"),
                               inv.max_unit >= bindparam(f"amount_{i}"))
                          for i, rc in enumerate(classes)))))
    if in_tree:
        tree_root = (select(func.coalesce(rp.root_provider_id, rp.id)).where(rp.uuid == bindparam("in_tree"))
                     .scalar_subquery())
        query = query.where(rp.root_provider_id == tree_root)
    return fast.Statement(query)


async def _viable_roots(session: AsyncSession, groups: dict[str, RequestGroup]) -> set[int]:
    """Roots of trees with room, somewhere, for the smallest amount asked of
    each class (and in the requested tree, if every group names the same)."""
    smallest: dict[str, int] = {}
    for g in groups.values():
        for rc, amount in g.resources.items():
            smallest[rc] = min(amount, smallest.get(rc, amount))
    classes = tuple(sorted(smallest))
    trees = {g.in_tree for g in groups.values()}
    in_tree = trees.pop() if len(trees) == 1 and None not in trees else None
    params: dict[str, Any] = {f"amount_{i}": smallest[rc] for i, rc in enumerate(classes)}
    if in_tree is not None:
        params["in_tree"] = in_tree
    classes_by_root: dict[int, set[str]] = defaultdict(set)
    for root, rc in await fast.rows(session, _viable_roots_query(classes, in_tree is not None), params):
        classes_by_root[root].add(rc)
    return {root for root, classes in classes_by_root.items() if classes >= set(smallest)}


# Plain rows, not ORM objects: the scheduler reads every tree on every
# request, and building mapped objects was most of that time.
_PROVIDER_COLUMNS = (ResourceProvider.id, ResourceProvider.uuid, ResourceProvider.name, ResourceProvider.generation,
                     ResourceProvider.parent_provider_id, ResourceProvider.root_provider_id)
_INVENTORY_COLUMNS = (ProviderInventory.provider_id, ProviderInventory.resource_class, ProviderInventory.total,
                      ProviderInventory.reserved, ProviderInventory.min_unit, ProviderInventory.max_unit,
                      ProviderInventory.step_size, ProviderInventory.allocation_ratio)


# Built once (ids as expanding parameters): they run on every scheduling request.
_TREE_PROVIDERS = fast.Statement(select(*_PROVIDER_COLUMNS)
                                 .where(ResourceProvider.root_provider_id.in_(bindparam("ids", expanding=True)))
                                 .order_by(ResourceProvider.id))
_TREE_USAGE = fast.Statement(select(PlacementAllocation.provider_id, PlacementAllocation.resource_class,
                                    func.sum(PlacementAllocation.used))
                             .where(PlacementAllocation.provider_id.in_(bindparam("ids", expanding=True)))
                             .group_by(PlacementAllocation.provider_id, PlacementAllocation.resource_class))
_TREE_INVENTORY = fast.Statement(select(*_INVENTORY_COLUMNS)
                                 .where(ProviderInventory.provider_id.in_(bindparam("ids", expanding=True))))


async def _load_trees(session: AsyncSession, roots: list[int], need_aggregates: bool) -> list[_Tree]:
    rows = await fast.rows(session, _TREE_PROVIDERS, {"ids": roots})
    ids = [r.id for r in rows]
    inventory: dict[int, dict[str, tuple[InventorySpec, int]]] = defaultdict(dict)
    used: dict[tuple[int, str], int] = {}
    for chunk in chunks(ids):
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
    return [_Tree(root, members, {r.id: inventory.get(r.id, {}) for r in members},
                  {r.id: trait_map.get(r.id, set()) for r in members},
                  {r.id: agg_map.get(r.id, set()) for r in members},
                  {r.id: r.parent_provider_id for r in members})
            for root, members in sorted(by_root.items())]


def _solve(tree: _Tree, groups: dict[str, RequestGroup], request: CandidateRequest) -> list[Candidate]:
    root_uuid = next(p.uuid for p in tree.providers if p.id == tree.root)
    if request.root_required and not request.root_required.matches(tree.traits.get(tree.root, set())):
        return []
    if len(tree.providers) == 1 and list(groups) == [UNNUMBERED]:
        return _solve_flat(tree, groups[UNNUMBERED], root_uuid)
    uuid_of = {p.id: p.uuid for p in tree.providers}
    tree_uuids = set(uuid_of.values())
    # Choices: (suffix, class or None, amount) → providers that could take it.
    slots: list[tuple[str, str | None, int]] = []
    options: list[list[int]] = []
    for suffix, g in groups.items():
        if g.in_tree is not None and g.in_tree not in tree_uuids:
            return []
        eligible = [p.id for p in tree.providers if g.member_of.matches(tree.effective_aggregates(p.id))]
        if suffix != UNNUMBERED:
            choice = [pid for pid in eligible if g.traits.matches(tree.traits[pid])
                      and all(tree.has_room(pid, rc, n) for rc, n in g.resources.items())]
            slots.append((suffix, None, 0))
            options.append(choice)
        else:
            for rc, n in sorted(g.resources.items()):
                choice = [pid for pid in eligible if not (tree.traits[pid] & g.traits.forbidden)
                          and tree.has_room(pid, rc, n)]
                slots.append((suffix, rc, n))
                options.append(choice)
    if any(not o for o in options):
        return []
    out: list[Candidate] = []
    seen: set[Any] = set()
    for combo in itertools.islice(itertools.product(*options), MAX_COMBINATIONS_PER_TREE):
        cand = _check(tree, groups, request, slots, combo, uuid_of, root_uuid)
        if cand is None:
            continue
        key = (tuple(sorted((rp, tuple(sorted(r.items()))) for rp, r in cand.allocations.items())),
               tuple(sorted((k, tuple(v)) for k, v in cand.mappings.items())))
        if key not in seen:
            seen.add(key)
            out.append(cand)
    return out


def _solve_flat(tree: _Tree, group: RequestGroup, root_uuid: str) -> list[Candidate]:
    """A tree of one provider asked for the unnumbered group only: what
    nearly every compute host and boot is. The same answer as the general
    search below, without its combinations."""
    pid = tree.root
    if group.in_tree is not None and group.in_tree != root_uuid:
        return []
    if not group.member_of.matches(tree.effective_aggregates(pid)) or not group.traits.matches(tree.traits[pid]):
        return []
    inventory = tree.inventory.get(pid, {})
    for rc, amount in group.resources.items():
        entry = inventory.get(rc)
        if entry is None or unit_violation(entry[0], amount) or entry[1] + amount > entry[0].capacity:
            return []
    allocations = {root_uuid: dict(sorted(group.resources.items()))}
    return [Candidate(allocations, {UNNUMBERED: [root_uuid]}, root_uuid)]


def _check(tree: _Tree, groups: dict[str, RequestGroup], request: CandidateRequest,
           slots: list[tuple[str, str | None, int]], combo: tuple[int, ...], uuid_of: dict[int, str],
           root_uuid: str) -> Candidate | None:
    by_group: dict[str, list[int]] = defaultdict(list)
    amounts: dict[tuple[int, str], int] = defaultdict(int)
    for (suffix, rc, n), pid in zip(slots, combo, strict=True):
        if pid not in by_group[suffix]:
            by_group[suffix].append(pid)
        if rc is None:
            for grc, gn in groups[suffix].resources.items():
                amounts[(pid, grc)] += gn
        else:
            amounts[(pid, rc)] += n
    if request.group_policy == "isolate":
        numbered = [pids[0] for s, pids in by_group.items() if s != UNNUMBERED]
        if len(numbered) != len(set(numbered)):
            return None
    for (pid, rc), total in amounts.items():
        spec, used = tree.inventory[pid][rc]
        if unit_violation(spec, total) or used + total > spec.capacity:
            return None
    unnumbered = groups.get(UNNUMBERED)
    if unnumbered is not None and unnumbered.traits.any_of:
        holders = by_group.get(UNNUMBERED) or list({pid for pid, _ in amounts})
        if not unnumbered.traits.matches(set().union(*(tree.traits[p] for p in holders))):
            return None
    for suffixes in request.same_subtree:
        chosen = {pid for s in suffixes for pid in by_group.get(s, [])}
        if not any(all(top in tree.ancestors(p) for p in chosen) for top in chosen):
            return None
    allocations: dict[str, dict[str, int]] = {}
    for (pid, rc), total in sorted(amounts.items()):
        allocations.setdefault(uuid_of[pid], {})[rc] = total
    mappings = {s: [uuid_of[p] for p in pids] for s, pids in by_group.items()}
    return Candidate(allocations, mappings, root_uuid)


def _summaries(tree: _Tree) -> dict[str, ProviderSummary]:
    uuid_of = {p.id: p.uuid for p in tree.providers}
    return {p.uuid: ProviderSummary(
        p.uuid, p.name, p.generation, uuid_of.get(p.parent_provider_id) if p.parent_provider_id else None,
        uuid_of[tree.root],
        {rc: {"capacity": int(spec.capacity), "used": used}
         for rc, (spec, used) in sorted(tree.inventory[p.id].items())},
        frozenset(tree.traits[p.id])) for p in tree.providers}
