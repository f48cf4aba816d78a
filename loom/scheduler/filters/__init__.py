"""Host filters, loaded by name (``scheduler.enabled_filters``)."""

from __future__ import annotations

from collections.abc import Iterable

from loom.scheduler import plugins
from loom.scheduler.filters.affinity import DifferentHostFilter, SameHostFilter
from loom.scheduler.filters.aggregate_extra_specs import AggregateInstanceExtraSpecsFilter
from loom.scheduler.filters.availability_zone import AvailabilityZoneFilter
from loom.scheduler.filters.base import Filter, FilterResult, run_filters
from loom.scheduler.filters.compute import ComputeFilter
from loom.scheduler.filters.compute_capabilities import ComputeCapabilitiesFilter
from loom.scheduler.filters.image_properties import ImagePropertiesFilter
from loom.scheduler.filters.server_group import ServerGroupAffinityFilter, ServerGroupAntiAffinityFilter

ENTRY_POINT_GROUP = "loom.scheduler.filters"

BUILTIN: dict[str, type[Filter]] = {cls.name: cls for cls in (
    ComputeFilter,
    AvailabilityZoneFilter,
    ImagePropertiesFilter,
    ComputeCapabilitiesFilter,
    ServerGroupAffinityFilter,
    ServerGroupAntiAffinityFilter,
    AggregateInstanceExtraSpecsFilter,
    SameHostFilter,
    DifferentHostFilter,
)}


def load_filters(names: Iterable[str]) -> list[Filter]:
    """One instance of each named filter, in order (``UnknownPlugin`` for a name that is none)."""
    return [cls() for cls in plugins.resolve("filter", names, BUILTIN, Filter, ENTRY_POINT_GROUP)]


__all__ = ["BUILTIN", "Filter", "FilterResult", "load_filters", "run_filters"]
