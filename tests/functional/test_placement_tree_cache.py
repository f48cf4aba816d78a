"""The scheduler's cache of provider trees gives the same candidates as
reading every tree afresh, through every kind of change, and reads again
only the trees that changed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from loom import placement
from loom.db.engine import Database
from loom.placement import aggregates, providers, traits, trees
from loom.placement.request import RequestGroup
from loom.placement.trees import TreeCache

HOST = {"VCPU": {"total": 4}, "MEMORY_MB": {"total": 4096}, "DISK_GB": {"total": 100}}
FLAVOR = {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10}


def uid() -> str:
    return str(uuid.uuid4())


async def host(db: Database, name: str | None = None) -> str:
    rp_uuid = uid()
    await placement.ensure_provider(db, rp_uuid, name or f"host-{rp_uuid[:8]}")
    await placement.set_inventory(db, rp_uuid, HOST)
    return rp_uuid


def view(found: list[placement.Candidate]) -> list[Any]:
    return [(c.root_provider_uuid, c.allocations, c.mappings,
             {k: (s.name, s.generation, s.parent_provider_uuid, s.resources, s.traits) for k, s in c.summaries.items()})
            for c in found]


async def same_answer(db: Database, cache: TreeCache, request: placement.CandidateRequest) -> list[Any]:
    async with db.transaction() as tx:
        fresh = view(await placement.candidates(tx, request))
        cached = view(await placement.candidates(tx, request, cache))
    assert cached == fresh
    return cached


async def test_cached_trees_follow_every_change(db: Database) -> None:
    cache = TreeCache()
    simple = placement.CandidateRequest.simple(FLAVOR)
    a, b = await host(db), await host(db)
    assert [c[0] for c in await same_answer(db, cache, simple)] == [a, b]
    # Claims fill a host (4 VCPU: two flavors), releases empty it.
    first, second = uid(), uid()
    await placement.claim(db, first, {a: FLAVOR}, "p", "u", None)
    assert (await same_answer(db, cache, simple))[0][3][a][3]["VCPU"]["used"] == 2
    await placement.claim(db, second, {a: FLAVOR}, "p", "u", None)
    assert [c[0] for c in await same_answer(db, cache, simple)] == [b]
    await placement.release(db, second)
    assert [c[0] for c in await same_answer(db, cache, simple)] == [a, b]
    # Inventory and traits.
    await placement.set_inventory(db, b, {**HOST, "VCPU": {"total": 1}})
    assert [c[0] for c in await same_answer(db, cache, simple)] == [a]
    async with db.session.begin() as session:
        await traits.set_for_provider(session, await providers.get(session, a), ["HW_CPU_X86_AVX"], None)
    avx = placement.CandidateRequest.simple(FLAVOR, required=["HW_CPU_X86_AVX"])
    assert [c[0] for c in await same_answer(db, cache, avx)] == [a]
    # A provider made, one renamed, one deleted, a child added.
    c = await host(db)
    async with db.session.begin() as session:
        await providers.update_provider(session, await providers.get(session, a), "renamed", parent_uuid=None,
                                        set_parent=False, allow_reparent=False)
    found = await same_answer(db, cache, simple)
    assert [x[0] for x in found] == [a, c] and found[0][3][a][0] == "renamed"
    await placement.release(db, first)
    async with db.session.begin() as session:
        await providers.delete(session, c)
        nic = uid()
        await providers.create(session, "nic", nic, parent_uuid=a)
    await placement.set_inventory(db, nic, {"SRIOV_NET_VF": {"total": 2}})
    nested = placement.CandidateRequest(groups={"": RequestGroup({"VCPU": 1}), "1": RequestGroup({"SRIOV_NET_VF": 1})})
    found = await same_answer(db, cache, nested)
    assert [x[0] for x in found] == [a] and found[0][1] == {a: {"VCPU": 1}, nic: {"SRIOV_NET_VF": 1}}
    assert [x[0] for x in await same_answer(db, cache, simple)] == [a]


async def test_only_changed_trees_are_read_again(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = [await host(db) for _ in range(5)]
    cache = TreeCache()
    loaded: list[int] = []
    real_load = trees.load

    async def load(session: Any, roots: list[int], need_aggregates: bool) -> list[trees.Tree]:
        loaded.extend(roots)
        return await real_load(session, roots, need_aggregates)

    monkeypatch.setattr(trees, "load", load)
    request = placement.CandidateRequest.simple(FLAVOR)

    async def cached() -> int:
        async with db.transaction() as tx:
            return len(await placement.candidates(tx, request, cache))

    assert await cached() == 5 and len(loaded) == 5
    loaded.clear()
    assert await cached() == 5 and loaded == []
    await placement.claim(db, uid(), {hosts[3]: FLAVOR}, "p", "u", None)
    assert await cached() == 5 and len(loaded) == 1


async def test_a_request_for_aggregates_reads_them_afresh(db: Database) -> None:
    a = await host(db)
    cache = TreeCache()
    agg = uid()
    request = placement.CandidateRequest.simple(FLAVOR, member_of=[agg])
    assert await same_answer(db, cache, request) == []
    async with db.session.begin() as session:
        # Before 1.19 an aggregate change leaves the generation as it was.
        await aggregates.set_for_provider(session, await providers.get(session, a), [agg], None, bump=False)
    assert [c[0] for c in await same_answer(db, cache, request)] == [a]
