"""What the conductor asks the scheduler for: the request spec, and what
comes back: a selection per instance, with alternates for a reschedule."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FlavorSpec:
    flavorid: str
    name: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap: int = 0
    extra_specs: dict[str, str] = field(default_factory=dict)

    @property
    def disk_gb(self) -> int:
        return self.root_gb + self.ephemeral_gb + (self.swap + 1023) // 1024


@dataclass
class RequestSpec:
    """Everything the scheduler needs to place a set of instances; it
    travels over the bus as a plain dict (``to_dict``/``from_dict``)."""

    project_id: str
    user_id: str
    flavor: FlavorSpec
    image: dict[str, Any] = field(default_factory=dict)  # the image as the Image API shows it
    num_instances: int = 1
    availability_zone: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)
    # Server group: {"uuid", "policy", "rules": {"max_server_per_host": N}, "hosts": [...], "members": [...]}
    instance_group: dict[str, Any] | None = None
    # Hosts already tried for this request (reschedules) or to avoid.
    ignore_hosts: list[str] = field(default_factory=list)
    force_hosts: list[str] = field(default_factory=list)
    force_nodes: list[str] = field(default_factory=list)
    # A move to a host the caller named (Nova's requested_destination): only
    # that host is considered, and unlike a forced host it must pass the filters.
    requested_host: str | None = None
    # Booted from a volume: the flavor's root disk is not taken from the host.
    is_bfv: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestSpec:
        data = dict(data)
        data["flavor"] = FlavorSpec(**data["flavor"])
        return cls(**data)


@dataclass
class Selection:
    """A host chosen for one instance, with the allocations claimed for it
    in placement (``allocation_request``), as a dict over the bus."""

    host: str
    nodename: str
    provider_uuid: str
    allocation_request: dict[str, Any]
    availability_zone: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Selection:
        return cls(**data)
