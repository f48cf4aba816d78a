"""AvailabilityZoneFilter: the host is in the zone the request asks for
(a request naming no zone may go anywhere)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loom.scheduler.filters.base import Filter
from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext


class AvailabilityZoneFilter(Filter):
    run_once_per_request = True

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.availability_zone)

    def host_passes(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> bool:
        wanted = spec.availability_zone
        return not wanted or wanted in {z.strip() for z in host.availability_zone.split(",")}
