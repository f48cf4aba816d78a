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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select

from loom.db import fast
from loom.db.models import PlacementAllocation, ProviderInventory, ResourceProvider
from loom.placement import trees
from loom.placement.capacity import unit_violation
from loom.placement.filters import capacity_expr
from loom.placement.request import UNNUMBERED, CandidateRequest, RequestGroup
from loom.placement.sql import chunks
from loom.placement.trees import ProviderSummary, Tree, TreeCache

__all__ = ["Candidate", "ProviderSummary", "candidates"]

# Combinations tried per tree before giving up on finding more in it.
MAX_COMBINATIONS_PER_TREE = 1000


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


async def candidates(session: fast.Session, request: CandidateRequest,
                     cache: TreeCache | None = None) -> list[Candidate]:
    """Candidates for ``request``, at most ``request.limit`` of them, in
    provider creation order. Names (classes, traits) are not validated here:
    an unknown one simply matches nothing. With a ``cache`` (the
    scheduler's), trees are read only when they changed."""
    groups = {k: g for k, g in request.groups.items() if g.resources or k != UNNUMBERED or g.traits or g.member_of}
    if not any(g.resources for g in groups.values()):
        return []
    need_aggregates = any(g.member_of for g in groups.values())
    smallest = _smallest(groups)
    # Only trees from the cache outlive the request: only they remember answers.
    key = _key(groups, request) if cache is not None and not need_aggregates else None
    out: list[Candidate] = []
    async for tree in _viable_trees(session, groups, need_aggregates, cache):
        if key is None:
            found = _solve(tree, groups, request)
        else:
            # A cached tree does not change: neither do its answers.
            found = tree.solved.get(key)
            if found is None:
                found = _solve(tree, groups, request) if _has_room(tree, smallest) else []
                tree.remember(key, found)
        if found:
            summaries = tree.summaries()
            for cand in found:
                cand.summaries = summaries
            out.extend(found)
        if request.limit is not None and len(out) >= request.limit:
            return out[:request.limit]
    return out


async def _viable_trees(session: fast.Session, groups: dict[str, RequestGroup], need_aggregates: bool,
                        cache: TreeCache | None) -> AsyncIterator[Tree]:
    """The trees that may hold the request, in root id order: from the
    cache if there is one (and no aggregates are asked for), else those the
    database finds room in, read in chunks."""
    if cache is not None and not need_aggregates:
        for tree in await cache.trees(session):
            yield tree  # candidates checks room, once per tree and request key
        return
    roots = await _viable_roots(session, groups)
    for chunk in chunks(sorted(roots), 500):
        for tree in await trees.load(session, chunk, need_aggregates):
            yield tree


def _key(groups: dict[str, RequestGroup], request: CandidateRequest) -> tuple[Any, ...]:
    """What a tree's candidates depend on, besides the tree (not the limit)."""
    return (tuple(sorted((k, tuple(sorted(g.resources.items())), g.traits, g.member_of, g.in_tree)
                         for k, g in groups.items())),
            request.group_policy, request.root_required, request.same_subtree)


def _smallest(groups: dict[str, RequestGroup]) -> dict[str, int]:
    """The smallest amount asked of each class."""
    smallest: dict[str, int] = {}
    for g in groups.values():
        for rc, amount in g.resources.items():
            smallest[rc] = min(amount, smallest.get(rc, amount))
    return smallest


def _in_tree(groups: dict[str, RequestGroup]) -> str | None:
    """The tree every group names, if they all name the same one."""
    named = {g.in_tree for g in groups.values()}
    return named.pop() if len(named) == 1 and None not in named else None


def _has_room(tree: Tree, smallest: dict[str, int]) -> bool:
    """What _viable_roots asks of the database, of a tree in memory."""
    return all(any(tree.has_room(p.id, rc, amount) for p in tree.providers) for rc, amount in smallest.items())


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


async def _viable_roots(session: fast.Session, groups: dict[str, RequestGroup]) -> set[int]:
    """Roots of trees with room, somewhere, for the smallest amount asked of
    each class (and in the requested tree, if every group names the same)."""
    smallest = _smallest(groups)
    classes = tuple(sorted(smallest))
    in_tree = _in_tree(groups)
    params: dict[str, Any] = {f"amount_{i}": smallest[rc] for i, rc in enumerate(classes)}
    if in_tree is not None:
        params["in_tree"] = in_tree
    classes_by_root: dict[int, set[str]] = defaultdict(set)
    for root, rc in await fast.rows(session, _viable_roots_query(classes, in_tree is not None), params):
        classes_by_root[root].add(rc)
    return {root for root, classes in classes_by_root.items() if classes >= set(smallest)}


def _solve(tree: Tree, groups: dict[str, RequestGroup], request: CandidateRequest) -> list[Candidate]:
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


def _solve_flat(tree: Tree, group: RequestGroup, root_uuid: str) -> list[Candidate]:
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


def _check(tree: Tree, groups: dict[str, RequestGroup], request: CandidateRequest,
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
