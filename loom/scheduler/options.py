"""The scheduler's options, with Nova's defaults. The entry point builds
them from the settings (``scheduler.*``) and passes them down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from loom.errors import Invalid
from loom.scheduler.hosts import DEFAULT_AVAILABILITY_ZONE

# Nova's default enabled_filters.
DEFAULT_FILTERS: tuple[str, ...] = (
    "ComputeFilter",
    "AvailabilityZoneFilter",
    "ComputeCapabilitiesFilter",
    "ImagePropertiesFilter",
    "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
)
DEFAULT_WEIGHERS: tuple[str, ...] = (
    "RAMWeigher",
    "CPUWeigher",
    "DiskWeigher",
    "BuildFailureWeigher",
    "ServerGroupSoftAffinityWeigher",
    "ServerGroupSoftAntiAffinityWeigher",
)


@dataclass(frozen=True)
class SchedulerOptions:
    enabled_filters: tuple[str, ...] = DEFAULT_FILTERS
    weighers: tuple[str, ...] = DEFAULT_WEIGHERS
    # Weigher name → multiplier, for those not at their default.
    weight_multipliers: Mapping[str, float] = field(default_factory=dict)
    # Hosts tried per instance: the chosen one plus max_attempts - 1 alternates for reschedules.
    max_attempts: int = 3
    # Choose at random among the best N hosts (1: always the best).
    host_subset_size: int = 1
    # Allocation candidates asked of placement per request.
    max_placement_results: int = 1000
    # A compute service whose last heartbeat is older than this is down (service.down_time).
    service_down_time: float = 60.0
    default_availability_zone: str = DEFAULT_AVAILABILITY_ZONE

    def __post_init__(self) -> None:
        for name in ("max_attempts", "host_subset_size", "max_placement_results"):
            if getattr(self, name) < 1:
                raise Invalid(f"scheduler.{name} must be at least 1, not {getattr(self, name)}")
        if self.service_down_time <= 0:
            raise Invalid("scheduler service_down_time must be positive")
        object.__setattr__(self, "enabled_filters", tuple(self.enabled_filters))
        object.__setattr__(self, "weighers", tuple(self.weighers))
