"""HostState and the pieces of host information, without a database."""

from __future__ import annotations

import uuid
from typing import Any

from loom.placement import Candidate
from loom.scheduler.hosts import (
    Aggregate,
    HostInfo,
    HostState,
    StaticHostInfo,
    availability_zone_of,
    compute_node_uuid,
)


def make_host(name: str = "host1", *, vcpus: int = 16, memory_mb: int = 32768, disk_gb: int = 500,
              used: dict[str, int] | None = None, **fields: Any) -> HostState:
    """A host with one root provider holding VCPU, MEMORY_MB and DISK_GB,
    and one candidate asking for a small flavor there."""
    rp = compute_node_uuid(name)
    used = used or {}
    resources = {rc: {"capacity": cap, "used": used.get(rc, 0)}
                 for rc, cap in (("VCPU", vcpus), ("MEMORY_MB", memory_mb), ("DISK_GB", disk_gb))}
    cand = Candidate({rp: {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}, {"": [rp]}, rp)
    return HostState(host=name, nodename=name, provider_uuid=rp, resources={rp: resources},
                     candidates=[cand], **fields)


def test_compute_node_uuid_is_stable_and_per_host() -> None:
    assert compute_node_uuid("cmp1") == compute_node_uuid("cmp1")
    assert compute_node_uuid("cmp1") != compute_node_uuid("cmp2")
    assert compute_node_uuid("cmp1") == str(uuid.uuid5(uuid.NAMESPACE_URL, "loom:compute-node:cmp1"))


def test_totals_used_and_free_come_from_the_provider_tree() -> None:
    host = make_host(vcpus=8, memory_mb=4096, disk_gb=100, used={"VCPU": 3, "MEMORY_MB": 1024, "DISK_GB": 10})
    child = str(uuid.uuid4())
    host.resources[child] = {"VCPU": {"capacity": 4, "used": 1}}
    assert (host.total_vcpus, host.used_vcpus, host.free_vcpus) == (12, 4, 8)
    assert (host.total_memory_mb, host.used_memory_mb, host.free_memory_mb) == (4096, 1024, 3072)
    assert (host.total_disk_gb, host.used_disk_gb, host.free_disk_gb) == (100, 10, 90)


def test_fits_and_consume_account_for_claims() -> None:
    host = make_host(vcpus=2, memory_mb=1024, disk_gb=2)
    alloc = host.candidates[0].allocations
    assert host.fits(alloc)
    host.consume(alloc)
    assert host.num_instances == 1 and host.free_vcpus == 1
    assert host.fitting_candidate() is not None
    host.consume(alloc)
    assert not host.fits(alloc)
    assert host.fitting_candidate() is None
    # A class the host has no inventory of never fits.
    assert not host.fits({host.provider_uuid: {"VGPU": 1}})


def test_aggregate_metadata_merges_values() -> None:
    host = make_host(aggregates=[Aggregate("a", {"ssd": "true", "availability_zone": "az1"}),
                                 Aggregate("b", {"ssd": "false"})])
    assert host.aggregate_metadata() == {"ssd": {"true", "false"}, "availability_zone": {"az1"}}


def test_availability_zone_from_info_aggregates_or_default() -> None:
    assert availability_zone_of(HostInfo(), "nova") == "nova"
    assert availability_zone_of(HostInfo(availability_zone="az9"), "nova") == "az9"
    assert availability_zone_of(HostInfo([Aggregate("a", {"availability_zone": "az1"}), Aggregate("b")]),
                                "nova") == "az1"


async def test_static_host_info_answers_for_known_hosts_only() -> None:
    source = StaticHostInfo({"h1": HostInfo(failed_builds=2)})
    assert await source.host_info(["h1", "h2"]) == {"h1": HostInfo(failed_builds=2)}
    assert await StaticHostInfo().host_info(["h1"]) == {}


def test_consume_copies_resources_shared_with_placement() -> None:
    host = make_host("h", used={"VCPU": 2})
    shared = host.resources
    before = {rp: {rc: dict(v) for rc, v in r.items()} for rp, r in shared.items()}
    assert host.free_vcpus == 14
    host.consume(host.candidates[0].allocations)
    assert shared == before  # the summaries other requests read are untouched
    assert host.free_vcpus == 13 and host.used_memory_mb == 512
