"""Soft server group policies: ``soft-affinity`` prefers the hosts with
the most members of the group, ``soft-anti-affinity`` the hosts with the
fewest. Members per host are counted from ``instance_group["hosts"]``
(one entry per placed member)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from loom.scheduler.filters.server_group import group_hosts, group_policy
from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec
from loom.scheduler.weighers.base import Weigher

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext


class _GroupWeigher(Weigher):
    policy: ClassVar[str] = ""

    def applies(self, spec: RequestSpec) -> bool:
        return group_policy(spec) == self.policy

    def members_on(self, host: HostState, spec: RequestSpec) -> int:
        if group_policy(spec) != self.policy:
            return 0
        return group_hosts(spec).count(host.host)


class ServerGroupSoftAffinityWeigher(_GroupWeigher):
    policy = "soft-affinity"
    aggregate_key = "soft_affinity_weight_multiplier"

    def weigh(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> float:
        return self.members_on(host, spec)


class ServerGroupSoftAntiAffinityWeigher(_GroupWeigher):
    policy = "soft-anti-affinity"
    aggregate_key = "soft_anti_affinity_weight_multiplier"

    def weigh(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> float:
        return -self.members_on(host, spec)
