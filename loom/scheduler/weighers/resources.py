"""Weighers on free resources: with the default positive multipliers
instances spread to the hosts with the most free RAM, vCPUs and disk; a
negative multiplier stacks them instead."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec
from loom.scheduler.weighers.base import Weigher

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext


class RAMWeigher(Weigher):
    aggregate_key = "ram_weight_multiplier"

    def weigh(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> float:
        return host.free_memory_mb


class CPUWeigher(Weigher):
    aggregate_key = "cpu_weight_multiplier"

    def weigh(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> float:
        return host.free_vcpus


class DiskWeigher(Weigher):
    aggregate_key = "disk_weight_multiplier"

    def weigh(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> float:
        return host.free_disk_gb
