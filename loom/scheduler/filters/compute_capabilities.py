"""ComputeCapabilitiesFilter: flavor extra specs scoped ``capabilities:``
(``capabilities:hypervisor_type=s== QEMU``, nested keys as in
``capabilities:cpu_info:arch``) must be met by what the host reports.
An unscoped key is checked only when the host has a capability of that
name (Nova's backward compatibility); other scopes are ignored."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from loom.scheduler.filters import extra_specs_ops
from loom.scheduler.filters.base import Filter
from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext

SCOPE = "capabilities"


def capabilities_of(host: HostState) -> dict[str, Any]:
    """What a flavor can ask of a host: its reported capabilities and the
    host attributes Nova exposes under their Nova names."""
    return {
        "host": host.host,
        "nodename": host.nodename,
        "vcpus": host.total_vcpus,
        "vcpus_used": host.used_vcpus,
        "free_ram_mb": host.free_memory_mb,
        "total_usable_ram_mb": host.total_memory_mb,
        "free_disk_mb": host.free_disk_gb * 1024,
        "total_usable_disk_gb": host.total_disk_gb,
        "num_instances": host.num_instances,
        "availability_zone": host.availability_zone,
        **host.capabilities,
    }


def lookup(caps: dict[str, Any], path: list[str]) -> Any:
    value: Any = caps
    for key in path:
        if isinstance(value, str):
            try:
                value = json.loads(value)  # cpu_info and friends arrive as JSON text
            except ValueError:
                return None
        if not isinstance(value, dict):
            return None
        value = value.get(key)
        if value is None:
            return None
    return value


class ComputeCapabilitiesFilter(Filter):
    run_once_per_request = True

    def needs_num_instances(self, spec: RequestSpec) -> bool:
        return any(key.split(":")[-1] == "num_instances" for key in spec.flavor.extra_specs)

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.flavor.extra_specs)

    def host_passes(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> bool:
        if not spec.flavor.extra_specs:
            return True
        caps = capabilities_of(host)
        for key, requirement in spec.flavor.extra_specs.items():
            path = key.split(":")
            if len(path) == 1:
                if key not in caps:
                    continue
            elif path[0] != SCOPE:
                continue
            else:
                path = path[1:]
            value = lookup(caps, path)
            if value is None or not extra_specs_ops.match(str(value), str(requirement)):
                return False
        return True
