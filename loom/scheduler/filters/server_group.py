"""Server group filters: ``affinity`` keeps a group's members on one host,
``anti-affinity`` on different hosts (at most ``max_server_per_host``
members per host, 1 by default).

``spec.instance_group["hosts"]`` lists the hosts of the members already
placed, one entry per member (a host with two members appears twice), so
that members per host can be counted. The scheduler adds each instance it
places to it before placing the next instance of the same request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loom.scheduler.filters.base import Filter
from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext


def group_policy(spec: RequestSpec) -> str | None:
    group = spec.instance_group
    if not group:
        return None
    # "policies" is the form of compute API microversions before 2.64.
    return group.get("policy") or next(iter(group.get("policies") or []), None)


def group_hosts(spec: RequestSpec) -> list[str]:
    return list((spec.instance_group or {}).get("hosts") or [])


def group_rules(spec: RequestSpec) -> dict[str, Any]:
    return dict((spec.instance_group or {}).get("rules") or {})


class ServerGroupAffinityFilter(Filter):
    def applies(self, spec: RequestSpec) -> bool:
        return group_policy(spec) == "affinity"

    def host_passes(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> bool:
        if group_policy(spec) != "affinity":
            return True
        hosts = group_hosts(spec)
        # The group's first member may go anywhere.
        return not hosts or host.host in hosts


class ServerGroupAntiAffinityFilter(Filter):
    def applies(self, spec: RequestSpec) -> bool:
        return group_policy(spec) == "anti-affinity"

    def host_passes(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> bool:
        if group_policy(spec) != "anti-affinity":
            return True
        limit = int(group_rules(spec).get("max_server_per_host") or 1)
        return group_hosts(spec).count(host.host) < limit
