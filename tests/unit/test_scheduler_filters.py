"""Each filter against hand-built HostStates; no database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from loom.scheduler.context import SchedulingContext
from loom.scheduler.errors import UnknownPlugin
from loom.scheduler.filters import BUILTIN, Filter, load_filters, run_filters
from loom.scheduler.filters.affinity import DifferentHostFilter, SameHostFilter
from loom.scheduler.filters.aggregate_extra_specs import AggregateInstanceExtraSpecsFilter
from loom.scheduler.filters.availability_zone import AvailabilityZoneFilter
from loom.scheduler.filters.compute import ComputeFilter
from loom.scheduler.filters.compute_capabilities import ComputeCapabilitiesFilter
from loom.scheduler.filters.extra_specs_ops import match
from loom.scheduler.filters.image_properties import ImagePropertiesFilter
from loom.scheduler.filters.server_group import ServerGroupAffinityFilter, ServerGroupAntiAffinityFilter
from loom.scheduler.hosts import Aggregate, HostState
from loom.scheduler.options import DEFAULT_FILTERS
from loom.scheduler.request import FlavorSpec, RequestSpec
from tests.unit.test_scheduler_hosts import make_host

CTX = SchedulingContext()


def make_spec(extra_specs: dict[str, str] | None = None, **fields: Any) -> RequestSpec:
    flavor = FlavorSpec("1", "m1.tiny", 1, 512, 1, extra_specs=extra_specs or {})
    return RequestSpec(project_id="p", user_id="u", flavor=flavor, **fields)


def passes(f: Filter, host: HostState, spec: RequestSpec, ctx: SchedulingContext = CTX) -> bool:
    return f.host_passes(host, spec, ctx)


def test_compute_filter_wants_an_up_and_enabled_service() -> None:
    f, spec = ComputeFilter(), make_spec()
    assert passes(f, make_host(), spec)
    assert not passes(f, make_host(service_up=False), spec)
    assert not passes(f, make_host(service_disabled=True, disabled_reason="maintenance"), spec)


def test_availability_zone_filter() -> None:
    f = AvailabilityZoneFilter()
    host = make_host(availability_zone="az1")
    assert passes(f, host, make_spec())
    assert passes(f, host, make_spec(availability_zone="az1"))
    assert not passes(f, host, make_spec(availability_zone="nova"))
    assert passes(f, make_host(), make_spec(availability_zone="nova"))


@pytest.mark.parametrize(("props", "expected"), [
    ({}, True),
    ({"hw_architecture": "x86_64"}, True),
    ({"architecture": "amd64"}, True),  # legacy name, other spelling
    ({"hw_architecture": "aarch64"}, False),
    ({"hw_vm_mode": "hvm"}, True),
    ({"hw_vm_mode": "xen"}, False),
    ({"img_hv_type": "qemu"}, False),  # the host does not say which hypervisor it runs
])
def test_image_properties_filter_on_a_host_reporting_nothing(props: dict[str, str], expected: bool) -> None:
    assert passes(ImagePropertiesFilter(), make_host(), make_spec(image={"properties": props})) is expected


def test_image_properties_filter_uses_traits_and_capabilities() -> None:
    f = ImagePropertiesFilter()
    arm = make_host(traits=frozenset({"HW_ARCH_AARCH64"}), capabilities={"hypervisor_type": "QEMU"})
    assert passes(f, arm, make_spec(image={"hw_architecture": "aarch64", "img_hv_type": "qemu"}))
    assert not passes(f, arm, make_spec(image={"hw_architecture": "x86_64"}))
    assert not passes(f, arm, make_spec(image={"img_hv_type": "kvm"}))
    declared = make_host(capabilities={"supported_instances": [["x86_64", "kvm", "hvm"], ["i686", "qemu", "hvm"]]})
    assert passes(f, declared, make_spec(image={"properties": {"hw_architecture": "i686", "img_hv_type": "qemu"}}))
    assert not passes(f, declared, make_spec(image={"properties": {"hw_architecture": "i686",
                                                                   "img_hv_type": "kvm"}}))


@pytest.mark.parametrize(("value", "requirement", "expected"), [
    ("1024", "= 512", True), ("256", "= 512", False), ("512", "== 512", True), ("512", "!= 512", False),
    ("8", ">= 4", True), ("8", "<= 4", False), ("QEMU", "s== QEMU", True), ("KVM", "s!= QEMU", True),
    ("a", "s< b", True), ("b", "s<= a", False), ("b", "s> a", True), ("a", "s>= b", False),
    ("sse avx", "<in> avx", True), ("sse", "<in> avx", False),
    ("sse avx aes", "<all-in> avx aes", True), ("sse avx", "<all-in> avx aes", False),
    ("kvm", "<or> qemu <or> kvm", True), ("xen", "<or> qemu <or> kvm", False),
    ("true", "true", True), ("True", "true", False), ("abc", "= 4", False), (None, "= 4", False),
])
def test_extra_specs_operators(value: str | None, requirement: str, expected: bool) -> None:
    assert match(value, requirement) is expected


def test_compute_capabilities_filter() -> None:
    f = ComputeCapabilitiesFilter()
    host = make_host(memory_mb=4096, capabilities={"hypervisor_type": "QEMU",
                                                   "cpu_info": '{"arch": "x86_64", "features": ["avx"]}'})
    assert passes(f, host, make_spec({"capabilities:hypervisor_type": "s== QEMU"}))
    assert not passes(f, host, make_spec({"capabilities:hypervisor_type": "s== KVM"}))
    assert passes(f, host, make_spec({"capabilities:cpu_info:arch": "x86_64"}))
    assert passes(f, host, make_spec({"capabilities:free_ram_mb": ">= 2048"}))
    assert not passes(f, host, make_spec({"capabilities:free_ram_mb": ">= 8192"}))
    # A capability the host does not report fails; other scopes are not this filter's business.
    assert not passes(f, host, make_spec({"capabilities:gpu_model": "a100"}))
    assert passes(f, host, make_spec({"hw:cpu_policy": "dedicated", "resources:VGPU": "1"}))
    # Unscoped keys count only when the host has such a capability.
    assert not passes(f, host, make_spec({"hypervisor_type": "s== KVM"}))
    assert passes(f, host, make_spec({"no_such_capability": "x"}))


def test_aggregate_instance_extra_specs_filter() -> None:
    f = AggregateInstanceExtraSpecsFilter()
    ssd = make_host(aggregates=[Aggregate("fast", {"ssd": "true", "cores": "32"})])
    plain = make_host("host2")
    spec = make_spec({"aggregate_instance_extra_specs:ssd": "true"})
    assert passes(f, ssd, spec) and not passes(f, plain, spec)
    assert passes(f, ssd, make_spec({"aggregate_instance_extra_specs:cores": ">= 16"}))
    assert not passes(f, ssd, make_spec({"aggregate_instance_extra_specs:ssd": "false"}))
    # Other scopes are ignored; unscoped keys are matched (Nova's rule).
    assert passes(f, plain, make_spec({"capabilities:x": "1", "resources:VCPU": "2"}))
    assert not passes(f, plain, make_spec({"ssd": "true"}))
    assert passes(f, plain, make_spec())


def test_affinity_filter_keeps_members_together() -> None:
    f = ServerGroupAffinityFilter()
    h1, h2 = make_host("h1"), make_host("h2")
    empty = make_spec(instance_group={"uuid": "g", "policy": "affinity", "hosts": [], "members": []})
    assert passes(f, h1, empty) and passes(f, h2, empty)
    started = make_spec(instance_group={"uuid": "g", "policy": "affinity", "hosts": ["h1"], "members": ["i1"]})
    assert passes(f, h1, started) and not passes(f, h2, started)
    # Other policies and no group are not its business; the old "policies" form is understood.
    assert passes(f, h2, make_spec(instance_group={"policy": "anti-affinity", "hosts": ["h1"]}))
    assert passes(f, h2, make_spec())
    assert not passes(f, h2, make_spec(instance_group={"policies": ["affinity"], "hosts": ["h1"]}))


def test_anti_affinity_filter_with_max_server_per_host() -> None:
    f = ServerGroupAntiAffinityFilter()
    h1, h2 = make_host("h1"), make_host("h2")
    spec = make_spec(instance_group={"policy": "anti-affinity", "hosts": ["h1"], "members": ["i1"]})
    assert not passes(f, h1, spec) and passes(f, h2, spec)
    two = make_spec(instance_group={"policy": "anti-affinity", "rules": {"max_server_per_host": 2},
                                    "hosts": ["h1", "h2", "h2"], "members": ["i1", "i2", "i3"]})
    assert passes(f, h1, two) and not passes(f, h2, two)
    assert passes(f, h1, make_spec(instance_group={"policy": "affinity", "hosts": ["h1"]}))


async def test_same_and_different_host_filters_look_up_instance_hosts() -> None:
    asked: list[list[str]] = []

    async def instance_hosts(uuids: Sequence[str]) -> set[str]:
        asked.append(list(uuids))
        return {"h1"} if "i1" in uuids else set()

    ctx = SchedulingContext(instance_hosts=instance_hosts)
    h1, h2 = make_host("h1"), make_host("h2")
    same, different = SameHostFilter(), DifferentHostFilter()
    spec = make_spec(scheduler_hints={"same_host": ["i1", "i2"], "different_host": "i1"})
    for f in (same, different):
        await f.prepare(spec, ctx)
    assert passes(same, h1, spec, ctx) and not passes(same, h2, spec, ctx)
    assert not passes(different, h1, spec, ctx) and passes(different, h2, spec, ctx)
    # Each set of uuids is looked up once per request.
    await same.prepare(spec, ctx)
    assert sorted(map(sorted, asked)) == [["i1"], ["i1", "i2"]]
    # No hint: every host passes, nothing is looked up.
    fresh = ctx.for_request(None)
    assert passes(same, h2, make_spec(), fresh) and passes(different, h1, make_spec(), fresh)


async def test_hint_filters_with_a_synchronous_lookup_and_unknown_instances() -> None:
    ctx = SchedulingContext(instance_hosts=lambda uuids: set())
    spec = make_spec(scheduler_hints={"same_host": "gone"})
    await SameHostFilter().prepare(spec, ctx)
    assert not passes(SameHostFilter(), make_host(), spec, ctx)
    with pytest.raises(LookupError):
        passes(DifferentHostFilter(), make_host(), make_spec(scheduler_hints={"different_host": "x"}), ctx)


def test_run_filters_counts_and_stops_when_none_are_left() -> None:
    hosts = [make_host("h1"), make_host("h2", service_up=False), make_host("h3", availability_zone="az1")]
    filters = load_filters(["ComputeFilter", "AvailabilityZoneFilter", "ServerGroupAffinityFilter"])
    passed, results = run_filters(filters, hosts, make_spec(availability_zone="az1"), CTX)
    assert [h.host for h in passed] == ["h3"]
    assert [str(r) for r in results] == ["ComputeFilter: (start: 3, end: 2)",
                                         "AvailabilityZoneFilter: (start: 2, end: 1)",
                                         "ServerGroupAffinityFilter: (start: 1, end: 1)"]
    assert [r.removed for r in results] == [1, 1, 0]
    passed, results = run_filters(filters, hosts, make_spec(availability_zone="az9"), CTX)
    assert passed == [] and len(results) == 2


def test_run_filters_skips_once_per_request_filters_after_the_first_instance() -> None:
    filters = load_filters(["ComputeFilter", "ServerGroupAntiAffinityFilter"])
    hosts = [make_host("h1", service_up=False)]
    _, results = run_filters(filters, hosts, make_spec(), CTX, index=1)
    assert [r.name for r in results] == ["ServerGroupAntiAffinityFilter"]


def test_filters_load_by_name() -> None:
    assert [f.name for f in load_filters(DEFAULT_FILTERS)] == list(DEFAULT_FILTERS)
    assert set(BUILTIN) >= {"SameHostFilter", "DifferentHostFilter", "AggregateInstanceExtraSpecsFilter"}
    # A dotted path names a filter outside Loom; a name twice loads once.
    loaded = load_filters(["loom.scheduler.filters.compute:ComputeFilter", "ComputeFilter"])
    assert [type(f) for f in loaded] == [ComputeFilter]
    with pytest.raises(UnknownPlugin, match="unknown scheduler filter 'RamFilter'"):
        load_filters(["ComputeFilter", "RamFilter"])
    with pytest.raises(UnknownPlugin, match="is not a Filter"):
        load_filters(["loom.scheduler.weighers.resources:RAMWeigher"])
    with pytest.raises(UnknownPlugin):
        load_filters(["no.such.module:Thing"])


def test_only_a_flavor_asking_about_num_instances_makes_the_scheduler_count_them() -> None:
    f = ComputeCapabilitiesFilter()
    assert not f.needs_num_instances(make_spec())
    assert not f.needs_num_instances(make_spec({"capabilities:hypervisor_type": "QEMU"}))
    assert f.needs_num_instances(make_spec({"num_instances": "<= 5"}))
    assert f.needs_num_instances(make_spec({"capabilities:num_instances": "<= 5"}))
    assert not any(cls().needs_num_instances(make_spec({"num_instances": "<= 5"}))
                   for name, cls in BUILTIN.items() if cls is not ComputeCapabilitiesFilter)


@pytest.mark.parametrize("f", [AvailabilityZoneFilter(), ComputeCapabilitiesFilter(), ImagePropertiesFilter(),
                               ServerGroupAffinityFilter(), ServerGroupAntiAffinityFilter()])
def test_a_filter_that_does_not_apply_would_pass_every_host(f: Filter) -> None:
    # applies() only skips asking the hosts: whatever they are, they would pass.
    spec = make_spec()
    assert not f.applies(spec)
    hosts = [make_host("a", availability_zone="other"), make_host("b", service_disabled=True)]
    assert all(passes(f, h, spec) for h in hosts)
    assert run_filters([f], hosts, spec, CTX)[0] == hosts


def test_filters_apply_when_the_request_asks() -> None:
    group = {"uuid": "g", "policy": "anti-affinity", "rules": {}, "hosts": ["a"], "members": ["x"]}
    assert ServerGroupAntiAffinityFilter().applies(make_spec(instance_group=group))
    assert not ServerGroupAffinityFilter().applies(make_spec(instance_group=group))
    assert AvailabilityZoneFilter().applies(make_spec(availability_zone="az1"))
    assert ComputeCapabilitiesFilter().applies(make_spec({"capabilities:hypervisor_type": "QEMU"}))
    assert ImagePropertiesFilter().applies(make_spec(image={"properties": {"hw_architecture": "x86_64"}}))
