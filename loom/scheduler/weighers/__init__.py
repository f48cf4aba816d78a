"""Host weighers, loaded by name (``scheduler.weighers``), each with its
multiplier (``scheduler.weight_multipliers``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from loom.scheduler import plugins
from loom.scheduler.weighers.base import WeighedHost, Weigher, normalize, order_hosts, weigh_hosts
from loom.scheduler.weighers.build_failure import BuildFailureWeigher
from loom.scheduler.weighers.resources import CPUWeigher, DiskWeigher, RAMWeigher
from loom.scheduler.weighers.server_group import ServerGroupSoftAffinityWeigher, ServerGroupSoftAntiAffinityWeigher

LOG = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "loom.scheduler.weighers"

BUILTIN: dict[str, type[Weigher]] = {cls.name: cls for cls in (
    RAMWeigher,
    CPUWeigher,
    DiskWeigher,
    BuildFailureWeigher,
    ServerGroupSoftAffinityWeigher,
    ServerGroupSoftAntiAffinityWeigher,
)}


def load_weighers(names: Iterable[str], multipliers: Mapping[str, float] | None = None) -> list[Weigher]:
    """One instance of each named weigher, in order, with its multiplier
    from ``multipliers`` (by weigher name) or its default."""
    multipliers = dict(multipliers or {})
    classes = plugins.resolve("weigher", names, BUILTIN, Weigher, ENTRY_POINT_GROUP)
    unused = set(multipliers) - {cls.name for cls in classes} - set(names)
    if unused:
        LOG.warning("weight multipliers for weighers that are not enabled: %s", ", ".join(sorted(unused)))
    return [cls(multipliers.get(cls.name)) for cls in classes]


__all__ = ["BUILTIN", "WeighedHost", "Weigher", "load_weighers", "normalize", "order_hosts", "weigh_hosts"]
