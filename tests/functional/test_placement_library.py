"""The placement library against a real SQLite database."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from loom import placement
from loom.db.engine import Database
from loom.placement import aggregates, allocations, inventories, providers, traits, usages
from loom.placement.request import RequestGroup, TraitFilter

HOST = {"VCPU": {"total": 8, "allocation_ratio": 2.0}, "MEMORY_MB": {"total": 8192, "reserved": 512},
        "DISK_GB": {"total": 100, "max_unit": 50}}
FLAVOR = {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10}


def uid() -> str:
    return str(uuid.uuid4())


async def host(db: Database, inventory: dict | None = None, name: str | None = None) -> str:
    rp_uuid = uid()
    await placement.ensure_provider(db, rp_uuid, name or f"host-{rp_uuid[:8]}")
    await placement.set_inventory(db, rp_uuid, inventory or HOST)
    return rp_uuid


async def test_ensure_provider_is_idempotent(db: Database) -> None:
    rp_uuid = uid()
    first, second = await asyncio.gather(placement.ensure_provider(db, rp_uuid, "h1"),
                                         placement.ensure_provider(db, rp_uuid, "h1"))
    assert first.id == second.id
    async with db.session() as session:
        info = await providers.info(session, await providers.get(session, rp_uuid))
    assert info.root_provider_uuid == rp_uuid and info.parent_provider_uuid is None


async def test_set_inventory_bumps_generation_only_on_change(db: Database) -> None:
    rp_uuid = await host(db)
    gen = await placement.set_inventory(db, rp_uuid, HOST)
    assert gen == 1
    gen2 = await placement.set_inventory(db, rp_uuid, {**HOST, "VCPU": {"total": 16}})
    assert gen2 == 2
    with pytest.raises(placement.ConcurrentUpdate):
        await placement.set_inventory(db, rp_uuid, HOST, generation=1)
    assert await placement.set_inventory(db, rp_uuid, HOST, generation=2) == 3


async def test_claim_release_and_capacity(db: Database) -> None:
    rp_uuid = await host(db)
    consumer = uid()
    gen = await placement.claim(db, consumer, {rp_uuid: FLAVOR}, "p1", "u1", consumer_generation=None)
    assert gen == 1
    with pytest.raises(placement.ConcurrentUpdate):
        await placement.claim(db, consumer, {rp_uuid: FLAVOR}, "p1", "u1", consumer_generation=None)
    gen = await placement.claim(db, consumer, {rp_uuid: {**FLAVOR, "VCPU": 4}}, "p1", "u1", consumer_generation=1)
    assert gen == 2
    async with db.session() as session:
        assert await usages.of_project(session, "p1") == {"VCPU": 4, "MEMORY_MB": 1024, "DISK_GB": 10}
        rp = await providers.get(session, rp_uuid)
        assert (await usages.of_provider(session, rp))["VCPU"] == 4
    # VCPU capacity is 16: 4 used, 13 more does not fit; max_unit 50 of disk is a hard limit.
    with pytest.raises(placement.InsufficientCapacity):
        await placement.claim(db, uid(), {rp_uuid: {"VCPU": 13}}, "p1", "u1", None)
    with pytest.raises(placement.InsufficientCapacity):
        await placement.claim(db, uid(), {rp_uuid: {"DISK_GB": 60}}, "p1", "u1", None)
    with pytest.raises(placement.PlacementInvalid):
        await placement.claim(db, uid(), {uid(): {"VCPU": 1}}, "p1", "u1", None)
    assert await placement.release(db, consumer)
    assert not await placement.release(db, consumer)
    # Released consumers start over.
    assert await placement.claim(db, consumer, {rp_uuid: FLAVOR}, "p1", "u1", None) == 1


async def test_inventory_in_use_cannot_be_removed(db: Database) -> None:
    rp_uuid = await host(db)
    await placement.claim(db, uid(), {rp_uuid: {"DISK_GB": 5}}, "p", "u", None)
    with pytest.raises(placement.InventoryInUse):
        await placement.set_inventory(db, rp_uuid, {"VCPU": {"total": 4}})
    # Shrinking below what is used is allowed.
    await placement.set_inventory(db, rp_uuid, {**HOST, "DISK_GB": {"total": 3}})


async def test_move_hands_allocations_over(db: Database) -> None:
    rp_uuid = await host(db)
    instance, migration = uid(), uid()
    await placement.claim(db, instance, {rp_uuid: FLAVOR}, "p", "u", None)
    assert await placement.move(db, instance, migration) == 1
    async with db.session() as session:
        assert (await allocations.for_consumer(session, instance)).allocations == {}
        moved = await allocations.for_consumer(session, migration)
    assert moved.allocations[rp_uuid]["resources"] == FLAVOR and moved.project_id == "p"


async def test_50_concurrent_claims_never_overcommit(db: Database) -> None:
    rp_uuid = await host(db, {"VCPU": {"total": 20}, "MEMORY_MB": {"total": 20 * 1024}})

    async def one() -> bool:
        try:
            await placement.claim(db, uid(), {rp_uuid: {"VCPU": 1, "MEMORY_MB": 1024}}, "p", "u", None)
        except placement.InsufficientCapacity:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(50)))
    assert sum(results) == 20
    async with db.session() as session:
        rp = await providers.get(session, rp_uuid)
        assert await usages.of_provider(session, rp) == {"MEMORY_MB": 20 * 1024, "VCPU": 20}
        assert rp.generation == 1 + 20


async def test_candidates_filter_by_capacity_traits_and_aggregates(db: Database) -> None:
    small = await host(db, {"VCPU": {"total": 1}, "MEMORY_MB": {"total": 512}, "DISK_GB": {"total": 10}})
    big = await host(db)
    avx = await host(db)
    agg = uid()
    async with db.session.begin() as session:
        rp = await providers.get(session, avx)
        await traits.set_for_provider(session, rp, ["HW_CPU_X86_AVX"], None)
        await aggregates.set_for_provider(session, rp, [agg], None)
    found = await placement_candidates(db, placement.CandidateRequest.simple(FLAVOR))
    assert [c.root_provider_uuid for c in found] == [big, avx]
    assert found[0].allocations == {big: FLAVOR}
    summary = found[0].summaries[big]
    assert summary.resources["VCPU"] == {"capacity": 16, "used": 0}
    found = await placement_candidates(db, placement.CandidateRequest.simple(FLAVOR, required=["HW_CPU_X86_AVX"]))
    assert [c.root_provider_uuid for c in found] == [avx]
    assert "HW_CPU_X86_AVX" in found[0].summaries[avx].traits
    found = await placement_candidates(db, placement.CandidateRequest.simple(FLAVOR, forbidden=["HW_CPU_X86_AVX"]))
    assert [c.root_provider_uuid for c in found] == [big]
    found = await placement_candidates(db, placement.CandidateRequest.simple(FLAVOR, member_of=[agg, uid()]))
    assert [c.root_provider_uuid for c in found] == [avx]
    found = await placement_candidates(db, placement.CandidateRequest.simple(FLAVOR, in_tree=big))
    assert [c.root_provider_uuid for c in found] == [big]
    assert len(await placement_candidates(db, placement.CandidateRequest.simple(FLAVOR, limit=1))) == 1
    assert small not in {c.root_provider_uuid for c in found}


async def test_candidates_in_nested_trees_and_granular_groups(db: Database) -> None:
    root = await host(db, {"VCPU": {"total": 8}, "MEMORY_MB": {"total": 4096}})
    nics = []
    for i in range(2):
        nic = uid()
        async with db.session.begin() as session:
            await providers.create(session, f"nic-{i}-{nic[:6]}", nic, parent_uuid=root)
        await placement.set_inventory(db, nic, {"SRIOV_NET_VF": {"total": 4}})
        nics.append(nic)
    request = placement.CandidateRequest(groups={
        "": RequestGroup({"VCPU": 1, "MEMORY_MB": 512}),
        "1": RequestGroup({"SRIOV_NET_VF": 1}),
        "2": RequestGroup({"SRIOV_NET_VF": 1}),
    }, group_policy="isolate")
    found = await placement_candidates(db, request)
    assert len(found) == 2  # nic0+nic1 or nic1+nic0
    for cand in found:
        assert set(cand.allocations) == {root, *nics}
        assert cand.mappings[""] == [root] and {cand.mappings["1"][0], cand.mappings["2"][0]} == set(nics)
        assert set(cand.summaries) == {root, *nics}
        assert cand.summaries[nics[0]].parent_provider_uuid == root
    request = placement.CandidateRequest(groups={**request.groups}, group_policy="none")
    assert len(await placement_candidates(db, request)) == 4
    # Claims of a nested candidate touch every provider in it.
    await placement.claim(db, uid(), found[0].allocations, "p", "u", None)
    async with db.session.begin() as session:
        nic_rp = await providers.get(session, nics[0])
        assert nic_rp.generation == 2
        await traits.set_for_provider(session, nic_rp, ["HW_NIC_SRIOV"], None)
    request = placement.CandidateRequest(groups={
        "": RequestGroup({"VCPU": 1}),
        "1": RequestGroup({"SRIOV_NET_VF": 1}, TraitFilter.of(["HW_NIC_SRIOV"])),
    })
    found = await placement_candidates(db, request)
    assert [c.mappings["1"] for c in found] == [[nics[0]]]


async def test_traits_and_resource_classes(db: Database) -> None:
    async with db.session.begin() as session:
        assert await traits.ensure(session, "CUSTOM_FAST")
        assert not await traits.ensure(session, "CUSTOM_FAST")
        assert "CUSTOM_FAST" in await traits.all_names(session)
        with pytest.raises(placement.PlacementInvalid):
            await traits.ensure(session, "custom_bad")
    rp_uuid = await host(db)
    with pytest.raises(placement.PlacementInvalid):
        await placement.set_inventory(db, rp_uuid, {"CUSTOM_GOLD": {"total": 1}})
    from loom.placement import resource_classes
    async with db.session.begin() as session:
        await resource_classes.create(session, "CUSTOM_GOLD")
    await placement.set_inventory(db, rp_uuid, {**HOST, "CUSTOM_GOLD": {"total": 1}})
    async with db.session() as session:
        rp = await providers.get(session, rp_uuid)
        assert set(await inventories.of_provider(session, rp)) == {*HOST, "CUSTOM_GOLD"}


async def placement_candidates(db: Database, request: placement.CandidateRequest) -> list[placement.Candidate]:
    async with db.session() as session:
        return await placement.candidates(session, request)


async def test_a_generation_race_reruns_the_claim(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.orm.attributes import set_committed_value

    from loom.placement import generations

    rp_uuid = await host(db)
    real_bump = generations.bump
    raced: list[str] = []

    async def racing_bump(session, rp, expected=None):  # type: ignore[no-untyped-def]
        if not raced:
            raced.append(rp.uuid)
            # As if another writer bumped the provider after we read it.
            set_committed_value(rp, "generation", rp.generation - 1)
        return await real_bump(session, rp, expected)

    monkeypatch.setattr(generations, "bump", racing_bump)
    # Any generation: the general write path (a new consumer's takes the one below).
    assert await placement.claim(db, uid(), {rp_uuid: FLAVOR}, "p", "u", placement.ANY) == 1
    assert raced == [rp_uuid]
    async with db.session() as session:
        rp = await providers.get(session, rp_uuid)
        assert (await usages.of_provider(session, rp))["VCPU"] == 2 and rp.generation == 2


async def test_a_generation_race_reruns_a_new_consumers_claim(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from loom.placement import boot_claims

    rp_uuid = await host(db)
    real_bump = boot_claims._bump
    raced: list[int] = []

    async def racing_bump(session, provider_id, seen):  # type: ignore[no-untyped-def]
        if not raced:
            raced.append(provider_id)
            return False  # as if another writer bumped the provider after we read it
        return await real_bump(session, provider_id, seen)

    monkeypatch.setattr(boot_claims, "_bump", racing_bump)
    consumer = uid()
    assert await placement.claim(db, consumer, {rp_uuid: FLAVOR}, "p", "u", None) == 1
    assert len(raced) == 1
    async with db.session() as session:
        rp = await providers.get(session, rp_uuid)
        assert (await usages.of_provider(session, rp))["VCPU"] == 2 and rp.generation == 2
        view = await allocations.for_consumer(session, consumer)
    assert view.generation == 1 and view.allocations[rp_uuid]["resources"]["VCPU"] == 2


async def test_candidates_over_1000_providers_take_a_few_queries(db: Database) -> None:
    from sqlalchemy import event, insert, select, update

    from loom.db.models import ProviderInventory, ProviderTrait, ResourceProvider

    async with db.session.begin() as session:
        await session.execute(insert(ResourceProvider), [
            {"uuid": uid(), "name": f"bulk-{i}", "generation": 1} for i in range(1000)])
        await session.execute(update(ResourceProvider).values(root_provider_id=ResourceProvider.id))
        ids = list(await session.scalars(select(ResourceProvider.id)))
        await session.execute(insert(ProviderInventory), [
            {"provider_id": pid, "resource_class": rc, "total": total, "reserved": 0, "min_unit": 1,
             "max_unit": total, "step_size": 1, "allocation_ratio": 1.0}
            for pid in ids for rc, total in (("VCPU", 16), ("MEMORY_MB", 32768), ("DISK_GB", 500))])
        await session.execute(insert(ProviderTrait), [{"provider_id": pid, "trait": "HW_CPU_X86_AVX"}
                                                      for pid in ids[::2]])
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine.sync_engine, "before_cursor_execute", listener)
    try:
        found = await placement_candidates(db, placement.CandidateRequest.simple(FLAVOR, required=["HW_CPU_X86_AVX"]))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", listener)
    assert len(found) == 500
    assert len(statements) <= 10, statements
