"""Hypervisors as the compute API shows them: a compute node record (what
the host last reported about itself), its compute service, and usage read
live from placement's allocations against the node's provider tree and
from the instances on the host."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from loom.db.models import ComputeNode, Instance, PlacementAllocation, ResourceProvider, Service
from loom.placement import providers
from loom.placement.errors import PlacementConflict, ProviderNotFound
from loom.placement.sql import chunks
from loom.scheduler.hosts import COMPUTE_BINARY

LOG = logging.getLogger(__name__)

# Nova's "io_workload": instances being built or in an I/O-heavy task.
BUSY_TASK_STATES = (
    "resize_migrating",
    "rebuilding",
    "resize_prep",
    "image_snapshot",
    "image_backup",
    "rescuing",
    "unshelving",
)
_USAGE_CLASSES = {"VCPU": "vcpus_used", "MEMORY_MB": "memory_mb_used", "DISK_GB": "local_gb_used"}


@dataclass
class Hypervisor:
    node: ComputeNode
    service: Service
    vcpus_used: int = 0
    memory_mb_used: int = 0
    local_gb_used: int = 0
    running_vms: int = 0
    current_workload: int = 0
    # (name, uuid) of the instances on the host, when asked for.
    servers: list[tuple[str, str]] | None = None

    @property
    def free_ram_mb(self) -> int:
        return self.node.memory_mb - self.memory_mb_used

    @property
    def free_disk_gb(self) -> int:
        return self.node.local_gb - self.local_gb_used


async def list_(
    session: AsyncSession,
    *,
    pattern: str | None = None,
    limit: int | None = None,
    after_id: int | None = None,
    with_servers: bool = False,
) -> list[Hypervisor]:
    """Nodes in id order, those with a compute service only (a node whose
    service was deleted is skipped, as Nova does); ``pattern`` matches part
    of the hypervisor hostname; paging starts after node ``after_id``."""
    query = select(ComputeNode).order_by(ComputeNode.id)
    if pattern is not None:
        query = query.where(ComputeNode.hypervisor_hostname.contains(pattern, autoescape=True))
    if after_id is not None:
        query = query.where(ComputeNode.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    return await _with_usage(session, list(await session.scalars(query)), with_servers)


async def node_by(session: AsyncSession, *, id: int | None = None, uuid: str | None = None) -> ComputeNode | None:
    column, value = (ComputeNode.id, id) if uuid is None else (ComputeNode.uuid, uuid)
    return await session.scalar(select(ComputeNode).where(column == value))


async def get(session: AsyncSession, node: ComputeNode, with_servers: bool = False) -> Hypervisor | None:
    """The hypervisor of ``node``; None when its compute service is gone."""
    found = await _with_usage(session, [node], with_servers)
    return found[0] if found else None


async def _with_usage(session: AsyncSession, nodes: Sequence[ComputeNode], with_servers: bool) -> list[Hypervisor]:
    if not nodes:
        return []
    hosts = {n.host for n in nodes}
    services = {
        s.host: s
        for s in await session.scalars(
            select(Service).where(Service.binary == COMPUTE_BINARY, Service.host.in_(list(hosts)))
        )
    }
    usage = await provider_usage(session, [n.uuid for n in nodes])
    counts = await _instance_counts(session, hosts)
    servers = await _servers(session, hosts) if with_servers else {}
    out = []
    for node in nodes:
        svc = services.get(node.host)
        if svc is None:
            LOG.debug("compute node %s has no compute service (deleted?): not shown", node.uuid)
            continue
        used = usage.get(node.uuid, {})
        running, busy = counts.get(node.host, (0, 0))
        out.append(
            Hypervisor(
                node,
                svc,
                running_vms=running,
                current_workload=busy,
                servers=servers.get(node.host, []) if with_servers else None,
                **{attr: used.get(rc, 0) for rc, attr in _USAGE_CLASSES.items()},
            )
        )
    return out


async def provider_usage(session: AsyncSession, root_uuids: Collection[str]) -> dict[str, dict[str, int]]:
    """Root provider uuid → resource class → amount allocated in its tree."""
    root = aliased(ResourceProvider)
    out: dict[str, dict[str, int]] = {}
    for chunk in chunks(set(root_uuids)):
        rows = await session.execute(
            select(root.uuid, PlacementAllocation.resource_class, func.sum(PlacementAllocation.used))
            .join(ResourceProvider, ResourceProvider.id == PlacementAllocation.provider_id)
            .join(root, root.id == ResourceProvider.root_provider_id)
            .where(root.uuid.in_(chunk))
            .group_by(root.uuid, PlacementAllocation.resource_class)
        )
        for rp_uuid, rc, used in rows:
            out.setdefault(rp_uuid, {})[rc] = int(used or 0)
    return out


async def _instance_counts(session: AsyncSession, hosts: Collection[str]) -> dict[str, tuple[int, int]]:
    """Host → (instances on it, those being built or in an I/O-heavy task)."""
    busy = or_(Instance.vm_state == "building", Instance.task_state.in_(BUSY_TASK_STATES))
    rows = await session.execute(
        select(Instance.host, func.count(), func.sum(case((busy, 1), else_=0)))
        .where(Instance.host.in_(list(hosts)), Instance.deleted.is_(False))
        .group_by(Instance.host)
    )
    return {host: (int(n), int(b or 0)) for host, n, b in rows}


async def _servers(session: AsyncSession, hosts: Collection[str]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    rows = await session.execute(
        select(Instance.host, Instance.id, Instance.uuid)
        .where(Instance.host.in_(list(hosts)), Instance.deleted.is_(False))
        .order_by(Instance.id)
    )
    for host, ident, uuid in rows:
        out.setdefault(host or "", []).append((f"instance-{ident:08x}", uuid))
    return out


async def statistics(session: AsyncSession) -> dict[str, int]:
    """Sums over the nodes of enabled compute services (Nova leaves disabled ones out)."""
    enabled = select(Service.host).where(Service.binary == COMPUTE_BINARY, Service.disabled.is_(False))
    nodes = list(await session.scalars(select(ComputeNode).where(ComputeNode.host.in_(enabled))))
    hypervisors = await _with_usage(session, nodes, with_servers=False)
    keys = (
        "vcpus",
        "memory_mb",
        "local_gb",
        "vcpus_used",
        "memory_mb_used",
        "local_gb_used",
        "free_ram_mb",
        "free_disk_gb",
        "current_workload",
        "running_vms",
        "disk_available_least",
    )
    stats = dict.fromkeys(keys, 0)
    for h in hypervisors:
        view = resource_fields(h)
        for key in keys:
            stats[key] += int(view[key])
    return {"count": len(hypervisors), **stats}


def resource_fields(h: Hypervisor) -> dict[str, Any]:
    """The fields microversion 2.88 dropped (placement has them now)."""
    n = h.node
    return {
        "vcpus": n.vcpus,
        "memory_mb": n.memory_mb,
        "local_gb": n.local_gb,
        "vcpus_used": h.vcpus_used,
        "memory_mb_used": h.memory_mb_used,
        "local_gb_used": h.local_gb_used,
        "free_ram_mb": h.free_ram_mb,
        "free_disk_gb": h.free_disk_gb,
        "current_workload": h.current_workload,
        "running_vms": h.running_vms,
        # Loom never overcommits disk, so the least available is what is free.
        "disk_available_least": h.free_disk_gb,
    }


async def delete_host_nodes(session: AsyncSession, host: str) -> None:
    """Forget a host's compute nodes and, where nothing is allocated on
    them any more, their resource providers (its compute service is going)."""
    for node in list(await session.scalars(select(ComputeNode).where(ComputeNode.host == host))):
        try:
            await providers.delete(session, node.uuid)
        except (ProviderNotFound, PlacementConflict) as exc:
            LOG.warning("resource provider of compute node %s (%s) kept: %s", node.uuid, host, exc)
        await session.delete(node)
