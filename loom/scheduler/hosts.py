"""What the scheduler knows about a compute host while it places one
request: its room (from placement's allocation candidates), its service
(up, enabled), its availability zone, aggregates and capabilities (from a
pluggable ``HostInfoSource``), and how busy it is.

Each compute host registers one root resource provider in placement, named
after the host, with the uuid ``compute_node_uuid(host)``; the scheduler
maps candidates to hosts through that uuid (or, failing that, the name).
"""

from __future__ import annotations

import functools
import logging
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import bindparam, distinct, func, select
from sqlalchemy.orm import aliased

from loom.db import fast, services
from loom.db.engine import Database
from loom.db.models import PlacementAllocation, ResourceProvider, Service
from loom.placement import Candidate
from loom.placement.sql import chunks

LOG = logging.getLogger(__name__)

COMPUTE_BINARY = "loom-compute"
DEFAULT_AVAILABILITY_ZONE = "nova"
# Aggregate metadata naming the zone its hosts are in (Nova's key).
AZ_METADATA_KEY = "availability_zone"

Allocations = Mapping[str, Mapping[str, int]]


@functools.lru_cache(maxsize=4096)
def compute_node_uuid(host: str) -> str:
    """The uuid of compute host ``host``'s root resource provider."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"loom:compute-node:{host}"))


@dataclass(frozen=True)
class Aggregate:
    """A host aggregate as the scheduler sees it: a name and metadata."""

    name: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    uuid: str | None = None


@dataclass
class HostInfo:
    """What placement and the services table do not say about a host."""

    aggregates: list[Aggregate] = field(default_factory=list)
    # None: the zone of the aggregates' ``availability_zone`` metadata, else the default zone.
    availability_zone: str | None = None
    # What the hypervisor reports: hypervisor_type, hypervisor_version, cpu_info, supported_instances...
    capabilities: dict[str, Any] = field(default_factory=dict)
    # Builds that failed on the host lately (reset by a success), as its compute service counts them.
    failed_builds: int = 0


class HostInfoSource(Protocol):
    """Where host aggregates, zones, capabilities and build failures come
    from. Hosts it says nothing about get the defaults."""

    async def host_info(self, hosts: Collection[str]) -> Mapping[str, HostInfo]: ...


class StaticHostInfo:
    """A fixed map of host → info, for tests; empty by default, which puts
    every host in the default availability zone with no aggregates. The
    scheduler service reads the database (``host_info.DbHostInfo``)."""

    def __init__(self, hosts: Mapping[str, HostInfo] | None = None) -> None:
        self.hosts = dict(hosts or {})

    async def host_info(self, hosts: Collection[str]) -> Mapping[str, HostInfo]:
        return {h: self.hosts[h] for h in hosts if h in self.hosts}


@dataclass(eq=False)  # hosts are compared by identity
class HostState:
    """One compute host as a candidate for the request being scheduled.

    Totals are what placement can allocate: ``(total - reserved) *
    allocation_ratio`` summed over the host's provider tree."""

    host: str
    nodename: str
    provider_uuid: str
    # provider uuid → resource class → {"capacity": n, "used": n}, for every provider of the host's tree
    resources: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    # The root provider's traits.
    traits: frozenset[str] = frozenset()
    service_up: bool = True
    service_disabled: bool = False
    disabled_reason: str | None = None
    availability_zone: str = DEFAULT_AVAILABILITY_ZONE
    aggregates: list[Aggregate] = field(default_factory=list)
    capabilities: dict[str, Any] = field(default_factory=dict)
    # Consumers (instances, migrations) holding allocations on the host.
    num_instances: int = 0
    failed_builds: int = 0
    # Ways placement offered to fit the request here, in its order.
    candidates: list[Candidate] = field(default_factory=list)
    # Sums over the tree by (class, key): filters and weighers read them often.
    _sums: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    # Whether ``resources`` is this state's own copy (see consume).
    _owned: bool = field(default=False, repr=False)

    def __str__(self) -> str:
        return f"({self.host}, {self.nodename})"

    def _sum(self, resource_class: str, key: str) -> int:
        total = self._sums.get((resource_class, key))
        if total is None:
            total = self._sums[(resource_class, key)] = sum(
                r.get(resource_class, {}).get(key, 0) for r in self.resources.values())
        return total

    @property
    def total_vcpus(self) -> int:
        return self._sum("VCPU", "capacity")

    @property
    def used_vcpus(self) -> int:
        return self._sum("VCPU", "used")

    @property
    def free_vcpus(self) -> int:
        return self.total_vcpus - self.used_vcpus

    @property
    def total_memory_mb(self) -> int:
        return self._sum("MEMORY_MB", "capacity")

    @property
    def used_memory_mb(self) -> int:
        return self._sum("MEMORY_MB", "used")

    @property
    def free_memory_mb(self) -> int:
        return self.total_memory_mb - self.used_memory_mb

    @property
    def total_disk_gb(self) -> int:
        return self._sum("DISK_GB", "capacity")

    @property
    def used_disk_gb(self) -> int:
        return self._sum("DISK_GB", "used")

    @property
    def free_disk_gb(self) -> int:
        return self.total_disk_gb - self.used_disk_gb

    def aggregate_metadata(self) -> dict[str, set[str]]:
        """Metadata key → the values the host's aggregates give it."""
        out: dict[str, set[str]] = defaultdict(set)
        for agg in self.aggregates:
            for key, value in agg.metadata.items():
                out[key].add(value)
        return dict(out)

    def fits(self, allocations: Allocations) -> bool:
        """Whether ``allocations`` still fit, as far as this scheduler knows
        (placement's claim has the last word)."""
        for rp, amounts in allocations.items():
            have = self.resources.get(rp, {})
            for rc, amount in amounts.items():
                entry = have.get(rc)
                if entry is None or entry["used"] + amount > entry["capacity"]:
                    return False
        return True

    def fitting_candidate(self) -> Candidate | None:
        return next((c for c in self.candidates if self.fits(c.allocations)), None)

    def consume(self, allocations: Allocations) -> None:
        """Account for allocations claimed here, before the next instance of
        the same request is placed."""
        if not self._owned:  # placement's summaries are shared: copy before writing
            self.resources = {rp: {rc: dict(v) for rc, v in r.items()} for rp, r in self.resources.items()}
            self._owned = True
        self._sums.clear()
        for rp, amounts in allocations.items():
            for rc, amount in amounts.items():
                entry = self.resources.setdefault(rp, {}).setdefault(rc, {"capacity": 0, "used": 0})
                entry["used"] += amount
        self.num_instances += 1


def availability_zone_of(info: HostInfo, default: str) -> str:
    if info.availability_zone:
        return info.availability_zone
    zones = sorted({a.metadata[AZ_METADATA_KEY] for a in info.aggregates if a.metadata.get(AZ_METADATA_KEY)})
    # A host in two zones is a configuration error Nova refuses; show both rather than pick one.
    return ", ".join(zones) if zones else default


async def host_states(db: Database, found: Sequence[Candidate], *, info_source: HostInfoSource,
                      service_down_time: float, default_availability_zone: str = DEFAULT_AVAILABILITY_ZONE,
                      count_instances: bool = True) -> tuple[list[HostState], list[str]]:
    """A HostState per provider tree among ``found`` (in the candidates'
    order), and the names of trees skipped because no compute service runs
    there. Three queries, plus whatever ``info_source`` does; two without
    ``count_instances`` (``num_instances`` left 0: no filter or weigher of
    the request reads it)."""
    by_root: dict[str, list[Candidate]] = {}
    for cand in found:
        by_root.setdefault(cand.root_provider_uuid, []).append(cand)
    compute = {s.host: s for s in await _compute_services(db)}
    by_uuid = {compute_node_uuid(h): s for h, s in compute.items()}
    counts = await _consumer_counts(db, list(by_root)) if count_instances else {}
    states: list[HostState] = []
    skipped: list[str] = []
    for root, cands in by_root.items():
        summaries = cands[0].summaries
        name = summaries[root].name if root in summaries else root
        svc = by_uuid.get(root) or compute.get(name)
        if svc is None:
            LOG.warning("no %s service record for resource provider %s (%s): skipped", COMPUTE_BINARY, name, root)
            skipped.append(name)
            continue
        states.append(HostState(
            host=svc.host, nodename=name, provider_uuid=root,
            resources={rp: s.resources for rp, s in summaries.items()},  # copied by consume
            traits=summaries[root].traits if root in summaries else frozenset(),
            service_up=services.is_up(svc, service_down_time), service_disabled=svc.disabled,
            disabled_reason=svc.disabled_reason, availability_zone=default_availability_zone,
            num_instances=counts.get(root, 0), candidates=cands))
    infos = await info_source.host_info([s.host for s in states]) if states else {}
    for state in states:
        info = infos.get(state.host)
        if info is not None:
            state.aggregates = list(info.aggregates)
            state.availability_zone = availability_zone_of(info, default_availability_zone)
            state.capabilities = dict(info.capabilities)
            state.failed_builds = info.failed_builds
    return states, skipped


# Built once: these run on every scheduling request.
_COMPUTE_SERVICES = fast.Statement(
    select(Service.host, Service.disabled, Service.disabled_reason, Service.forced_down, Service.last_seen_up)
    .where(Service.binary == COMPUTE_BINARY).order_by(Service.id))
_ROOT = aliased(ResourceProvider)
_CONSUMER_COUNTS = fast.Statement(
    select(_ROOT.uuid, func.count(distinct(PlacementAllocation.consumer_uuid)))
    .join(ResourceProvider, ResourceProvider.id == PlacementAllocation.provider_id)
    .join(_ROOT, _ROOT.id == ResourceProvider.root_provider_id)
    .where(_ROOT.uuid.in_(bindparam("roots", expanding=True))).group_by(_ROOT.uuid))


async def _compute_services(db: Database) -> list[Any]:
    """The compute services as plain rows (what HostState needs of them)."""
    async with db.transaction() as tx:
        return await fast.rows(tx, _COMPUTE_SERVICES)


async def _consumer_counts(db: Database, root_uuids: Iterable[str]) -> dict[str, int]:
    """Root provider uuid → how many consumers hold allocations in its tree."""
    out: dict[str, int] = {}
    async with db.transaction() as tx:
        for chunk in chunks(root_uuids):
            rows = await fast.rows(tx, _CONSUMER_COUNTS, {"roots": chunk})
            out.update({rp_uuid: int(n) for rp_uuid, n in rows})
    return out


class PlacementInstanceHosts:
    """``instance_hosts`` answered from placement: the hosts (root
    providers' names) where the instances hold allocations. Needs no
    instances table; an instance not yet (or no longer) on a host has none."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, instance_uuids: Sequence[str]) -> set[str]:
        root = aliased(ResourceProvider)
        hosts: set[str] = set()
        async with self.db.session() as session:
            for chunk in chunks(set(instance_uuids)):
                hosts.update(await session.scalars(
                    select(root.name).distinct()
                    .select_from(PlacementAllocation)
                    .join(ResourceProvider, ResourceProvider.id == PlacementAllocation.provider_id)
                    .join(root, root.id == ResourceProvider.root_provider_id)
                    .where(PlacementAllocation.consumer_uuid.in_(chunk))))
        return hosts
