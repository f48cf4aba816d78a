"""Weighers, normalisation and host ordering; no database."""

from __future__ import annotations

import random

import pytest

from loom.scheduler.context import SchedulingContext
from loom.scheduler.errors import UnknownPlugin
from loom.scheduler.hosts import Aggregate, HostState
from loom.scheduler.options import DEFAULT_WEIGHERS
from loom.scheduler.weighers import load_weighers, normalize, order_hosts, weigh_hosts
from loom.scheduler.weighers.build_failure import BuildFailureWeigher
from loom.scheduler.weighers.resources import CPUWeigher, DiskWeigher, RAMWeigher
from loom.scheduler.weighers.server_group import ServerGroupSoftAffinityWeigher, ServerGroupSoftAntiAffinityWeigher
from tests.unit.test_scheduler_filters import make_spec
from tests.unit.test_scheduler_hosts import make_host

CTX = SchedulingContext()


def names(hosts: list[HostState]) -> list[str]:
    return [h.host for h in hosts]


def test_normalize() -> None:
    assert normalize([]) == []
    assert normalize([5, 5, 5]) == [0.0, 0.0, 0.0]
    assert normalize([0, 5, 10]) == [0.0, 0.5, 1.0]
    assert normalize([2, 4], minval=0, maxval=8) == [0.25, 0.5]


def test_resource_weighers_spread_by_default_and_stack_with_a_negative_multiplier() -> None:
    roomy = make_host("roomy", memory_mb=8192, vcpus=4, disk_gb=10)
    cpus = make_host("cpus", memory_mb=2048, vcpus=64, disk_gb=10)
    disk = make_host("disk", memory_mb=1024, vcpus=4, disk_gb=1000)
    hosts, spec = [cpus, disk, roomy], make_spec()
    assert names([w.host for w in weigh_hosts([RAMWeigher()], hosts, spec, CTX)]) == ["roomy", "cpus", "disk"]
    assert names([w.host for w in weigh_hosts([CPUWeigher()], hosts, spec, CTX)])[0] == "cpus"
    assert names([w.host for w in weigh_hosts([DiskWeigher()], hosts, spec, CTX)])[0] == "disk"
    assert names([w.host for w in weigh_hosts([RAMWeigher(-1.0)], hosts, spec, CTX)])[0] == "disk"


def test_weights_are_normalised_then_multiplied_and_summed() -> None:
    a = make_host("a", memory_mb=1000, vcpus=10)
    b = make_host("b", memory_mb=3000, vcpus=2)
    c = make_host("c", memory_mb=2000, vcpus=6)
    weighed = weigh_hosts([RAMWeigher(1.0), CPUWeigher(2.0)], [a, b, c], make_spec(), CTX)
    assert [(w.host.host, w.weight) for w in weighed] == [("a", 2.0), ("c", 1.5), ("b", 1.0)]
    # One host: nothing to compare.
    assert weigh_hosts([RAMWeigher()], [a], make_spec(), CTX)[0].weight == 0.0


def test_used_resources_lower_the_weight() -> None:
    busy = make_host("busy", memory_mb=4096, used={"MEMORY_MB": 3072})
    idle = make_host("idle", memory_mb=2048)
    assert names(order_hosts([RAMWeigher()], [busy, idle], make_spec(), CTX)) == ["idle", "busy"]


def test_build_failures_outweigh_free_resources() -> None:
    failing = make_host("failing", memory_mb=65536, failed_builds=3)
    ok = make_host("ok", memory_mb=1024)
    weighers = [RAMWeigher(), BuildFailureWeigher()]
    assert BuildFailureWeigher().multiplier == 1000000.0
    assert names(order_hosts(weighers, [failing, ok], make_spec(), CTX)) == ["ok", "failing"]


def test_soft_affinity_and_soft_anti_affinity() -> None:
    h1, h2, h3 = make_host("h1"), make_host("h2"), make_host("h3")
    hosts = [h1, h2, h3]
    group = {"uuid": "g", "hosts": ["h2", "h2", "h3"], "members": ["i1", "i2", "i3"]}
    soft = make_spec(instance_group={**group, "policy": "soft-affinity"})
    anti = make_spec(instance_group={**group, "policy": "soft-anti-affinity"})
    weighers = [ServerGroupSoftAffinityWeigher(), ServerGroupSoftAntiAffinityWeigher()]
    assert names(order_hosts(weighers, hosts, soft, CTX)) == ["h2", "h3", "h1"]
    assert names(order_hosts(weighers, hosts, anti, CTX)) == ["h1", "h3", "h2"]
    # Without a soft policy they weigh nothing: placement's order stays.
    hard = make_spec(instance_group={**group, "policy": "anti-affinity"})
    assert names(order_hosts(weighers, hosts, hard, CTX)) == ["h1", "h2", "h3"]


def test_aggregate_metadata_overrides_the_multiplier() -> None:
    stacked = make_host("stacked", memory_mb=1024,
                        aggregates=[Aggregate("a", {"ram_weight_multiplier": "-1.0"}),
                                    Aggregate("b", {"ram_weight_multiplier": "2.0"})])
    assert RAMWeigher().weight_multiplier(stacked) == -1.0
    assert RAMWeigher(3.0).weight_multiplier(make_host()) == 3.0
    bad = make_host(aggregates=[Aggregate("a", {"ram_weight_multiplier": "lots"})])
    assert RAMWeigher(3.0).weight_multiplier(bad) == 3.0


def test_host_subset_size_picks_among_the_best() -> None:
    hosts = [make_host(f"h{i}", memory_mb=1024 * (10 - i)) for i in range(6)]
    rng = random.Random(7)
    firsts = {order_hosts([RAMWeigher()], hosts, make_spec(), CTX, subset_size=3, rng=rng)[0].host
              for _ in range(200)}
    assert firsts == {"h0", "h1", "h2"}
    ordered = order_hosts([RAMWeigher()], hosts, make_spec(), CTX, subset_size=3, rng=rng)
    assert sorted(names(ordered)) == names(hosts)
    assert names(order_hosts([RAMWeigher()], hosts, make_spec(), CTX, subset_size=1))[0] == "h0"


def test_weighers_load_by_name_with_multipliers() -> None:
    loaded = load_weighers(DEFAULT_WEIGHERS, {"RAMWeigher": -2.0})
    assert [w.name for w in loaded] == list(DEFAULT_WEIGHERS)
    assert loaded[0].multiplier == -2.0 and loaded[1].multiplier == 1.0
    with pytest.raises(UnknownPlugin, match="unknown scheduler weigher 'MetricsWeigher'"):
        load_weighers(["MetricsWeigher"])


def test_options_are_checked() -> None:
    from loom.errors import Invalid
    from loom.scheduler.options import SchedulerOptions

    assert SchedulerOptions(enabled_filters=["ComputeFilter"]).enabled_filters == ("ComputeFilter",)  # type: ignore[arg-type]
    for bad in ({"max_attempts": 0}, {"host_subset_size": 0}, {"max_placement_results": 0},
                {"service_down_time": 0}):
        with pytest.raises(Invalid):
            SchedulerOptions(**bad)  # type: ignore[arg-type]


def test_soft_group_weighers_apply_only_to_their_policy() -> None:
    hosts = [make_host("h1"), make_host("h2")]
    for weigher in (ServerGroupSoftAffinityWeigher(), ServerGroupSoftAntiAffinityWeigher()):
        plain = make_spec()
        assert not weigher.applies(plain)
        assert {weigher.weigh(h, plain, CTX) for h in hosts} == {0}  # skipping it adds the same nothing
        group = {"uuid": "g", "hosts": ["h2"], "members": ["i1"], "policy": weigher.policy}
        assert weigher.applies(make_spec(instance_group=group))
