"""BuildFailureWeigher: hosts where builds failed lately rank lower. The
multiplier is Nova's (1e6), large enough to outweigh every resource
weigher, so a host that keeps failing builds stops attracting them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec
from loom.scheduler.weighers.base import Weigher

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext


class BuildFailureWeigher(Weigher):
    default_multiplier = 1000000.0
    aggregate_key = "build_failure_weight_multiplier"

    def weigh(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> float:
        return -host.failed_builds
