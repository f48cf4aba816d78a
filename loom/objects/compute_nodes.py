"""Compute node records: what each hypervisor last reported about itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from loom.db.engine import Database
from loom.db.models import ComputeNode
from loom.timeutils import utcnow

FIELDS = ("hypervisor_hostname", "hypervisor_type", "hypervisor_version", "host_ip", "vcpus", "memory_mb",
          "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used", "running_vms", "cpu_info", "failed_builds")


async def report(db: Database, uuid: str, host: str, values: dict[str, Any]) -> None:
    """Create or update the node ``uuid`` of ``host`` with what it reported."""
    values = {k: values[k] for k in FIELDS if k in values}
    for _ in range(2):  # two first reports may race to insert; the loser updates
        try:
            async with db.session.begin() as session:
                node = await session.scalar(select(ComputeNode).where(ComputeNode.uuid == uuid))
                if node is None:
                    node = ComputeNode(uuid=uuid, host=host, hypervisor_hostname=host, hypervisor_type="unknown")
                    session.add(node)
                node.host = host
                for key, value in values.items():
                    setattr(node, key, value)
                node.reported_at = utcnow()
            return
        except IntegrityError:
            continue
