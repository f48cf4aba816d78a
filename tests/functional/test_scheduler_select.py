"""select_destinations against a real SQLite database: placement
candidates, host states, filters, weighers and claims."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from loom import placement
from loom.bus.rpc import Bus
from loom.context import RequestContext
from loom.db import services
from loom.db.engine import Database
from loom.db.models import PlacementAllocation, ResourceProvider, Service
from loom.errors import Invalid
from loom.placement import providers, traits
from loom.scheduler.context import SchedulingContext
from loom.scheduler.errors import NoValidHost, UnknownPlugin
from loom.scheduler.hosts import (
    COMPUTE_BINARY,
    HostInfo,
    PlacementInstanceHosts,
    StaticHostInfo,
    compute_node_uuid,
    host_states,
)
from loom.scheduler.manager import SchedulerManager
from loom.scheduler.options import SchedulerOptions
from loom.scheduler.request import FlavorSpec, RequestSpec
from loom.scheduler.rpcapi import TOPIC, SchedulerAPI
from loom.scheduler.select import select_destinations

TINY = FlavorSpec("1", "m1.tiny", 1, 512, 1)
SMALL = FlavorSpec("2", "m1.small", 2, 2048, 20)


def uid() -> str:
    return str(uuid.uuid4())


async def add_host(db: Database, name: str, *, vcpus: int = 4, memory_mb: int = 4096, disk_gb: int = 40,
                   host_traits: list[str] | None = None, service: bool = True) -> str:
    """A compute host as Loom's compute service registers it."""
    rp = compute_node_uuid(name)
    await placement.ensure_provider(db, rp, name)
    await placement.set_inventory(db, rp, {"VCPU": {"total": vcpus}, "MEMORY_MB": {"total": memory_mb},
                                           "DISK_GB": {"total": disk_gb}})
    if host_traits:
        async with db.session.begin() as session:
            for trait in host_traits:
                await traits.ensure(session, trait)
            await traits.set_for_provider(session, await providers.get(session, rp), host_traits, None)
    if service:
        await services.report(db, name, COMPUTE_BINARY, "compute")
    return rp


async def set_service(db: Database, host: str, **values: Any) -> None:
    async with db.session.begin() as session:
        await session.execute(update(Service).where(Service.host == host, Service.binary == COMPUTE_BINARY)
                              .values(**values))


async def usage(db: Database) -> dict[str, dict[str, int]]:
    """Host name → class → amount allocated."""
    out: dict[str, dict[str, int]] = {}
    async with db.session() as session:
        rows = await session.execute(select(ResourceProvider.name, PlacementAllocation.resource_class,
                                            PlacementAllocation.used)
                                     .join(ResourceProvider, ResourceProvider.id == PlacementAllocation.provider_id))
        for name, rc, used in rows:
            out.setdefault(name, {}).setdefault(rc, 0)
            out[name][rc] += used
    return out


async def holders(db: Database) -> set[str]:
    async with db.session() as session:
        return set(await session.scalars(select(PlacementAllocation.consumer_uuid).distinct()))


def make_context(db: Database, **options: Any) -> SchedulingContext:
    host_info = options.pop("host_info", None) or StaticHostInfo()
    return SchedulingContext.load(SchedulerOptions(**options), host_info=host_info,
                                  instance_hosts=PlacementInstanceHosts(db))


def make_spec(flavor: FlavorSpec = TINY, **fields: Any) -> RequestSpec:
    return RequestSpec(project_id="p1", user_id="u1", flavor=flavor, **fields)


async def test_places_claims_and_returns_alternates(db: Database) -> None:
    for i in range(4):
        await add_host(db, f"cmp{i}", memory_mb=4096 + 1024 * i)
    ctx = make_context(db)
    instance = uid()
    [choices] = await select_destinations(db, make_spec(SMALL), [instance], return_alternates=True, context=ctx)
    # The most free RAM wins; two alternates (max_attempts 3), best next.
    assert [s.host for s in choices] == ["cmp3", "cmp2", "cmp1"]
    chosen = choices[0]
    assert chosen.nodename == "cmp3" and chosen.provider_uuid == compute_node_uuid("cmp3")
    assert chosen.availability_zone == "nova"
    assert chosen.allocation_request["allocations"] == {
        compute_node_uuid("cmp3"): {"DISK_GB": 20, "MEMORY_MB": 2048, "VCPU": 2}}
    assert await usage(db) == {"cmp3": {"VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 20}}
    # An alternate's allocation request can be claimed as is (a reschedule).
    other = uid()
    await placement.claim(db, other, choices[1].allocation_request["allocations"], "p1", "u1", None)
    assert (await usage(db))["cmp2"]["VCPU"] == 2
    # Without alternates: the claimed host only.
    [only] = await select_destinations(db, make_spec(), [uid()], return_alternates=False, context=ctx)
    assert len(only) == 1


async def test_instances_of_one_request_spread_and_are_accounted_for(db: Database) -> None:
    for i in range(3):
        await add_host(db, f"cmp{i}", vcpus=2, memory_mb=2048)
    uuids = [uid() for _ in range(6)]
    found = await select_destinations(db, make_spec(FlavorSpec("3", "half", 1, 1024, 1)), uuids,
                                      return_alternates=True, context=make_context(db))
    hosts = [c[0].host for c in found]
    assert sorted(hosts) == ["cmp0", "cmp0", "cmp1", "cmp1", "cmp2", "cmp2"]
    # Spread: the first three go to three different hosts.
    assert len(set(hosts[:3])) == 3
    # The last instance's alternates could only be hosts with room left: none.
    assert len(found[-1]) == 1
    assert await holders(db) == set(uuids)


async def test_release_on_partial_failure(db: Database) -> None:
    await add_host(db, "cmp0", vcpus=2)
    await add_host(db, "cmp1", vcpus=1)
    uuids = [uid() for _ in range(4)]
    with pytest.raises(NoValidHost) as err:
        await select_destinations(db, make_spec(), uuids, return_alternates=True, context=make_context(db))
    assert "Instance 4 of 4 could not be placed" in err.value.message
    assert "filled by the earlier instances of this request" in err.value.message
    assert err.value.details["instance_uuid"] == uuids[3]
    # The three claims made before are given back.
    assert await holders(db) == set()
    assert await usage(db) == {}


async def test_no_room_in_placement(db: Database) -> None:
    await add_host(db, "cmp0", vcpus=1, memory_mb=1024)
    with pytest.raises(NoValidHost) as err:
        await select_destinations(db, make_spec(SMALL), [uid()], return_alternates=True, context=make_context(db))
    assert err.value.message == ("No valid host was found. There are not enough hosts available. "
                                 "No host has room for VCPU=2 MEMORY_MB=2048 DISK_GB=20.")
    spec = make_spec(FlavorSpec("4", "avx", 1, 512, 1, extra_specs={"trait:HW_CPU_X86_AVX": "required"}))
    with pytest.raises(NoValidHost, match="room for VCPU=1 MEMORY_MB=512 DISK_GB=1 with HW_CPU_X86_AVX"):
        await select_destinations(db, spec, [uid()], return_alternates=True, context=make_context(db))


async def test_filter_results_in_the_message(db: Database) -> None:
    for i in range(10):
        await add_host(db, f"cmp{i}")
    await set_service(db, "cmp0", disabled=True)
    await set_service(db, "cmp1", forced_down=True)
    await set_service(db, "cmp2", last_seen_up=dt.datetime(2000, 1, 1))
    with pytest.raises(NoValidHost) as err:
        await select_destinations(db, make_spec(availability_zone="az1"), [uid()], return_alternates=True,
                                  context=make_context(db))
    assert err.value.message == (
        "No valid host was found. There are not enough hosts available. Filter results: "
        "['ComputeFilter: (start: 10, end: 7)', 'AvailabilityZoneFilter: (start: 7, end: 0)']")
    assert err.value.details["filter_results"][0] == "ComputeFilter: (start: 10, end: 7)"


async def test_traits_and_extra_specs_reach_placement(db: Database) -> None:
    await add_host(db, "plain")
    await add_host(db, "avx", host_traits=["HW_CPU_X86_AVX"])
    await add_host(db, "slow", host_traits=["HW_CPU_X86_AVX", "CUSTOM_SLOW"])
    flavor = FlavorSpec("5", "avx", 1, 512, 1, extra_specs={"trait:HW_CPU_X86_AVX": "required",
                                                            "trait:CUSTOM_SLOW": "forbidden",
                                                            "resources:VCPU": "3"})
    [choices] = await select_destinations(db, make_spec(flavor), [uid()], return_alternates=True,
                                          context=make_context(db))
    assert [s.host for s in choices] == ["avx"]
    assert choices[0].allocation_request["allocations"][compute_node_uuid("avx")]["VCPU"] == 3


async def test_providers_without_a_compute_service_are_skipped(db: Database) -> None:
    await add_host(db, "ghost", service=False)
    with pytest.raises(NoValidHost, match=r"Resource providers with room \(ghost\) have no compute service"):
        await select_destinations(db, make_spec(), [uid()], return_alternates=True, context=make_context(db))
    await add_host(db, "real", memory_mb=1024)
    [choices] = await select_destinations(db, make_spec(), [uid()], return_alternates=True, context=make_context(db))
    assert [s.host for s in choices] == ["real"]


async def test_ignore_and_force_hosts(db: Database) -> None:
    for i in range(3):
        await add_host(db, f"cmp{i}", memory_mb=4096 * (i + 1))
    ctx = make_context(db)
    [choices] = await select_destinations(db, make_spec(ignore_hosts=["cmp2"]), [uid()], return_alternates=True,
                                          context=ctx)
    assert [s.host for s in choices] == ["cmp1", "cmp0"]
    # A forced host skips the filters, even a disabled one (Nova's rule).
    await set_service(db, "cmp0", disabled=True)
    [choices] = await select_destinations(db, make_spec(force_hosts=["CMP0"]), [uid()], return_alternates=True,
                                          context=ctx)
    assert [s.host for s in choices] == ["cmp0"]
    [choices] = await select_destinations(db, make_spec(force_nodes=["cmp1"]), [uid()], return_alternates=True,
                                          context=ctx)
    assert [s.host for s in choices] == ["cmp1"]
    with pytest.raises(NoValidHost, match=r"forced host\(s\) \['nowhere'\]"):
        await select_destinations(db, make_spec(force_hosts=["nowhere"]), [uid()], return_alternates=True,
                                  context=ctx)
    with pytest.raises(NoValidHost, match="ignored hosts"):
        await select_destinations(db, make_spec(ignore_hosts=["cmp0", "cmp1", "cmp2"]), [uid()],
                                  return_alternates=True, context=ctx)


async def test_availability_zones_from_a_host_info_source(db: Database) -> None:
    for i in range(4):
        await add_host(db, f"cmp{i}")
    info = StaticHostInfo({"cmp1": HostInfo(availability_zone="az1"), "cmp3": HostInfo(availability_zone="az1")})
    ctx = make_context(db, host_info=info, default_availability_zone="zone0")
    [choices] = await select_destinations(db, make_spec(availability_zone="az1"), [uid()], return_alternates=True,
                                          context=ctx)
    assert {s.host for s in choices} == {"cmp1", "cmp3"}
    assert {s.availability_zone for s in choices} == {"az1"}
    [choices] = await select_destinations(db, make_spec(availability_zone="zone0"), [uid()],
                                          return_alternates=True, context=ctx)
    assert {s.host for s in choices} <= {"cmp0", "cmp2"}


async def test_build_failures_steer_away(db: Database) -> None:
    await add_host(db, "big", memory_mb=65536)
    await add_host(db, "small", memory_mb=2048)
    ctx = make_context(db, host_info=StaticHostInfo({"big": HostInfo(failed_builds=1)}))
    [choices] = await select_destinations(db, make_spec(), [uid()], return_alternates=True, context=ctx)
    assert [s.host for s in choices] == ["small", "big"]


async def test_anti_affinity_group_across_instances_of_a_request(db: Database) -> None:
    for i in range(3):
        await add_host(db, f"cmp{i}", vcpus=8, memory_mb=8192)
    group = {"uuid": uid(), "policy": "anti-affinity", "rules": {}, "hosts": [], "members": []}
    spec = make_spec(instance_group=group)
    found = await select_destinations(db, spec, [uid() for _ in range(3)], return_alternates=True,
                                      context=make_context(db))
    assert sorted(c[0].host for c in found) == ["cmp0", "cmp1", "cmp2"]
    # The caller's spec is not changed.
    assert group["hosts"] == []
    with pytest.raises(NoValidHost, match=r"ServerGroupAntiAffinityFilter: \(start: 3, end: 0\)"):
        await select_destinations(db, make_spec(instance_group={**group, "hosts": ["cmp0", "cmp1", "cmp2"]}),
                                  [uid()], return_alternates=True, context=make_context(db))
    two = {**group, "rules": {"max_server_per_host": 2}}
    found = await select_destinations(db, make_spec(instance_group=two), [uid() for _ in range(6)],
                                      return_alternates=True, context=make_context(db))
    assert sorted(c[0].host for c in found) == ["cmp0", "cmp0", "cmp1", "cmp1", "cmp2", "cmp2"]


async def test_affinity_group_stays_on_one_host(db: Database) -> None:
    for i in range(3):
        await add_host(db, f"cmp{i}", vcpus=8, memory_mb=8192)
    group = {"uuid": uid(), "policy": "affinity", "hosts": [], "members": []}
    found = await select_destinations(db, make_spec(instance_group=group), [uid() for _ in range(4)],
                                      return_alternates=True, context=make_context(db))
    assert len({c[0].host for c in found}) == 1
    # Alternates of a later member can only be the group's host: none besides the chosen one.
    assert [len(c) for c in found[1:]] == [1, 1, 1]


async def test_soft_anti_affinity_prefers_empty_hosts(db: Database) -> None:
    # Equal hosts: without the weigher the first one would win.
    await add_host(db, "cmp0")
    await add_host(db, "cmp1")
    group = {"uuid": uid(), "policy": "soft-anti-affinity", "hosts": ["cmp0"], "members": [uid()]}
    [choices] = await select_destinations(db, make_spec(instance_group=group), [uid()], return_alternates=True,
                                          context=make_context(db))
    assert choices[0].host == "cmp1"


async def test_same_and_different_host_hints_from_placement(db: Database) -> None:
    for i in range(3):
        await add_host(db, f"cmp{i}")
    ctx = make_context(db, enabled_filters=("ComputeFilter", "SameHostFilter", "DifferentHostFilter"))
    first = uid()
    [[where, *_]] = await select_destinations(db, make_spec(), [first], return_alternates=True, context=ctx)
    [choices] = await select_destinations(db, make_spec(scheduler_hints={"same_host": [first]}), [uid()],
                                          return_alternates=True, context=ctx)
    assert [s.host for s in choices] == [where.host]
    [choices] = await select_destinations(db, make_spec(scheduler_hints={"different_host": first}), [uid()],
                                          return_alternates=True, context=ctx)
    assert where.host not in {s.host for s in choices} and len(choices) == 2


async def test_an_instance_already_holding_allocations_is_refused(db: Database) -> None:
    await add_host(db, "cmp0")
    instance = uid()
    await select_destinations(db, make_spec(), [instance], return_alternates=False, context=make_context(db))
    with pytest.raises(placement.ConcurrentUpdate):
        await select_destinations(db, make_spec(), [instance], return_alternates=False, context=make_context(db))
    with pytest.raises(Invalid, match="same instance uuid twice"):
        await select_destinations(db, make_spec(), [uid()] * 2, return_alternates=False, context=make_context(db))
    nothing = FlavorSpec("0", "nothing", 0, 0, 0)
    with pytest.raises(Invalid, match="asks for no resources"):
        await select_destinations(db, make_spec(nothing), [uid()], return_alternates=False, context=make_context(db))
    assert await select_destinations(db, make_spec(), [], return_alternates=False, context=make_context(db)) == []


async def test_host_states_in_a_few_queries(db: Database) -> None:
    for i in range(5):
        await add_host(db, f"cmp{i}")
    await placement.claim(db, uid(), {compute_node_uuid("cmp0"): {"VCPU": 1, "MEMORY_MB": 256}}, "p", "u", None)
    request = placement.CandidateRequest.simple({"VCPU": 1})
    async with db.session() as session:
        found = await placement.candidates(session, request)
    states, skipped = await host_states(db, found, info_source=StaticHostInfo(), service_down_time=60)
    assert skipped == [] and len(states) == 5
    cmp0 = next(s for s in states if s.host == "cmp0")
    assert (cmp0.num_instances, cmp0.used_vcpus, cmp0.free_memory_mb, cmp0.total_disk_gb) == (1, 1, 3840, 40)
    assert cmp0.service_up and not cmp0.service_disabled


async def test_manager_over_the_bus(db: Database, bus: Bus) -> None:
    for i in range(3):
        await add_host(db, f"cmp{i}")
    manager = SchedulerManager("sched1", db, max_attempts=2)
    server = bus.server(TOPIC, "sched1", manager)
    await server.start()
    try:
        api = SchedulerAPI(bus)
        found = await api.select_destinations(RequestContext(), make_spec(), [uid(), uid()])
        assert [len(c) for c in found] == [2, 2]
        assert all(c[0].provider_uuid == compute_node_uuid(c[0].host) for c in found)
        # NoValidHost crosses the bus as itself.
        with pytest.raises(NoValidHost, match="No host has room for VCPU=64"):
            await api.select_destinations(RequestContext(), make_spec(FlavorSpec("9", "huge", 64, 512, 1)), [uid()])
    finally:
        await server.stop_consuming()


def test_unknown_filter_fails_at_start(db: Database) -> None:
    with pytest.raises(UnknownPlugin, match="NoSuchFilter"):
        SchedulerManager("sched1", db, enabled_filters=["ComputeFilter", "NoSuchFilter"])
