"""AggregateInstanceExtraSpecsFilter: flavor extra specs scoped
``aggregate_instance_extra_specs:`` must match the metadata of one of the
host's aggregates (``aggregate_instance_extra_specs:ssd=true``). As in
Nova, unscoped keys are matched too and keys of other scopes are not:
scope the keys meant for this filter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loom.scheduler.filters import extra_specs_ops
from loom.scheduler.filters.base import Filter
from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext

SCOPE = "aggregate_instance_extra_specs"


class AggregateInstanceExtraSpecsFilter(Filter):
    run_once_per_request = True

    def host_passes(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> bool:
        specs = spec.flavor.extra_specs
        if not specs:
            return True
        metadata = host.aggregate_metadata()
        for key, requirement in specs.items():
            scope, sep, name = key.partition(":")
            if sep and scope != SCOPE:
                continue
            values = metadata.get(name if sep else key)
            if not values or not any(extra_specs_ops.match(v, str(requirement)) for v in values):
                return False
        return True
