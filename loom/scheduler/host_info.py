"""The scheduler's ``HostInfoSource`` read from the database: each host's
aggregates (name, uuid, metadata, and so its availability zone), what its
hypervisor last reported (capabilities) and its recent build failures. Read
afresh for every request, so an aggregate change applies to the next boot."""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Text, bindparam, select, type_coerce

from loom.db import fast
from loom.db.engine import Database
from loom.db.models import ComputeNode
from loom.objects import aggregates
from loom.scheduler.hosts import Aggregate, HostInfo

# What of a compute node the capabilities filters may ask for, by Nova's names.
CAPABILITY_FIELDS = ("hypervisor_type", "hypervisor_version", "hypervisor_hostname", "host_ip", "cpu_info")


# Plain rows rather than ORM objects: this runs for every scheduling request.
# cpu_info comes as its JSON text, decoded once per distinct text (_cpu_info).
_COLUMNS = (ComputeNode.host, ComputeNode.failed_builds,
            *(type_coerce(ComputeNode.cpu_info, Text).label("cpu_info") if f == "cpu_info"
              else getattr(ComputeNode, f) for f in CAPABILITY_FIELDS))


_NODES = fast.Statement(select(*_COLUMNS).where(ComputeNode.host.in_(bindparam("hosts", expanding=True)))
                        .order_by(ComputeNode.id))


def capabilities(node: Any) -> dict[str, Any]:
    """A node row's capabilities (its cpu_info decoded: shared, read only)."""
    out = {name: getattr(node, name) for name in CAPABILITY_FIELDS if getattr(node, name) is not None}
    if isinstance(out.get("cpu_info"), str):
        out["cpu_info"] = _cpu_info(out["cpu_info"])
    return out


@functools.lru_cache(maxsize=1024)
def _cpu_info(text: str) -> Any:
    # Every host of a kind reports the same text, request after request.
    return json.loads(text)


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
