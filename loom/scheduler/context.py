"""What one scheduling request works with: the loaded filters and
weighers, the options, where host information comes from, and caches that
last as long as the request."""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from loom.context import RequestContext
from loom.placement.trees import TreeCache
from loom.scheduler.filters import Filter, load_filters
from loom.scheduler.hosts import HostInfoSource, StaticHostInfo
from loom.scheduler.options import SchedulerOptions
from loom.scheduler.weighers import Weigher, load_weighers

LOG = logging.getLogger(__name__)

# Instance uuids → the hosts they run on (sync or async).
InstanceHosts = Callable[[Sequence[str]], set[str] | Awaitable[set[str]]]


@dataclass
class SchedulingContext:
    filters: Sequence[Filter] = ()
    weighers: Sequence[Weigher] = ()
    options: SchedulerOptions = field(default_factory=SchedulerOptions)
    host_info: HostInfoSource = field(default_factory=StaticHostInfo)
    # Where instances run, for the same_host/different_host hints; None: nowhere known.
    instance_hosts: InstanceHosts | None = None
    request: RequestContext | None = None
    rng: random.Random = field(default_factory=random.Random)
    # Provider trees kept between requests (shared by every request's context).
    trees: TreeCache = field(default_factory=TreeCache)
    _hosts_of: dict[frozenset[str], set[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, options: SchedulerOptions, **kwargs: Any) -> SchedulingContext:
        """Load the filters and weighers ``options`` name; an unknown name
        raises ``UnknownPlugin`` here, when the scheduler starts."""
        return cls(load_filters(options.enabled_filters),
                   load_weighers(options.weighers, options.weight_multipliers), options, **kwargs)

    def for_request(self, request: RequestContext | None) -> SchedulingContext:
        """A context for one request: same plugins and options, empty caches."""
        return replace(self, request=request, _hosts_of={})

    async def resolve_instance_hosts(self, instance_uuids: Collection[str]) -> set[str]:
        """The hosts running those instances, looked up once per request."""
        key = frozenset(instance_uuids)
        if key not in self._hosts_of:
            if self.instance_hosts is None:
                LOG.warning("no instance_hosts source: hosts of instances %s are unknown", sorted(key))
                found: set[str] = set()
            else:
                result = self.instance_hosts(sorted(key))
                found = set(await result if inspect.isawaitable(result) else result)
            self._hosts_of[key] = found
        return self._hosts_of[key]

    def instance_hosts_of(self, instance_uuids: Collection[str]) -> set[str]:
        """What ``resolve_instance_hosts`` found for these instances earlier
        in the request (a filter resolves them in its ``prepare``)."""
        key = frozenset(instance_uuids)
        if key not in self._hosts_of:
            raise LookupError(f"hosts of instances {sorted(key)} were not resolved; a filter must call "
                              "resolve_instance_hosts in its prepare()")
        return self._hosts_of[key]
