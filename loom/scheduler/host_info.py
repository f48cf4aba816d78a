"""The scheduler's ``HostInfoSource`` read from the database: each host's
aggregates (name, uuid, metadata, and so its availability zone), what its
hypervisor last reported (capabilities) and its recent build failures. Read
afresh for every request, so an aggregate change applies to the next boot."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import bindparam, select

from loom.db import fast
from loom.db.engine import Database
from loom.db.models import ComputeNode
from loom.objects import aggregates
from loom.scheduler.hosts import Aggregate, HostInfo

# What of a compute node the capabilities filters may ask for, by Nova's names.
CAPABILITY_FIELDS = ("hypervisor_type", "hypervisor_version", "hypervisor_hostname", "host_ip", "cpu_info")


# Plain rows rather than ORM objects: this runs for every scheduling request.
_COLUMNS = (ComputeNode.host, ComputeNode.failed_builds, *(getattr(ComputeNode, f) for f in CAPABILITY_FIELDS))


_NODES = fast.Statement(select(*_COLUMNS).where(ComputeNode.host.in_(bindparam("hosts", expanding=True)))
                        .order_by(ComputeNode.id))


def capabilities(node: Any) -> dict[str, Any]:
    return {name: getattr(node, name) for name in CAPABILITY_FIELDS if getattr(node, name) is not None}


class DbHostInfo:
    """Host information from the aggregates and compute_nodes tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def host_info(self, hosts: Collection[str]) -> Mapping[str, HostInfo]:
        if not hosts:
            return {}
        async with self.db.transaction() as tx:
            by_host = await aggregates.of_hosts(tx, hosts)
            nodes = await fast.rows(tx, _NODES, {"hosts": list(hosts)})
        out: dict[str, HostInfo] = {}
        for host in hosts:
            aggs = by_host.get(host, [])
            # Zone left unset: the scheduler derives it from the aggregates, or its default.
            out[host] = HostInfo(aggregates=[Aggregate(a.name, dict(a.metadata), a.uuid) for a in aggs])
        for node in nodes:
            info = out[node.host]
            info.capabilities = capabilities(node)
            info.failed_builds = int(node.failed_builds or 0)
        return out
