"""The scheduler service: picks hosts for instances and claims them in
placement. Several may run at once; placement's claims keep them honest."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from loom import metrics
from loom.bus.rpc import expose
from loom.context import RequestContext
from loom.db.engine import Database
from loom.manager import Manager
from loom.scheduler import host_check, select
from loom.scheduler.context import InstanceHosts, SchedulingContext
from loom.scheduler.errors import NoValidHost
from loom.scheduler.host_info import DbHostInfo
from loom.scheduler.hosts import DEFAULT_AVAILABILITY_ZONE, HostInfoSource, PlacementInstanceHosts
from loom.scheduler.options import DEFAULT_FILTERS, DEFAULT_WEIGHERS, SchedulerOptions
from loom.scheduler.request import RequestSpec
from loom.scheduler.rpcapi import TOPIC


class SchedulerManager(Manager):
    binary = "loom-scheduler"
    topic = TOPIC

    def __init__(self, host: str, db: Database, *, enabled_filters: Sequence[str] = DEFAULT_FILTERS,
                 weighers: Sequence[str] = DEFAULT_WEIGHERS, weight_multipliers: Mapping[str, float] | None = None,
                 max_attempts: int = 3, host_subset_size: int = 1, max_placement_results: int = 1000,
                 service_down_time: float = 60.0, default_availability_zone: str = DEFAULT_AVAILABILITY_ZONE,
                 host_info: HostInfoSource | None = None, instance_hosts: InstanceHosts | None = None) -> None:
        super().__init__(host)
        self.db = db
        options = SchedulerOptions(
            enabled_filters=tuple(enabled_filters), weighers=tuple(weighers),
            weight_multipliers=dict(weight_multipliers or {}), max_attempts=max_attempts,
            host_subset_size=host_subset_size, max_placement_results=max_placement_results,
            service_down_time=service_down_time, default_availability_zone=default_availability_zone)
        # Unknown filter or weigher names fail here, when the service starts.
        self.context = SchedulingContext.load(
            options, host_info=host_info or DbHostInfo(db),
            instance_hosts=instance_hosts or PlacementInstanceHosts(db))

    @expose
    async def select_destinations(self, ctx: RequestContext, spec: dict[str, Any], instance_uuids: list[str],
                                  return_alternates: bool = True) -> list[list[dict[str, Any]]]:
        started = time.perf_counter()
        try:
            found = await select.select_destinations(self.db, RequestSpec.from_dict(spec), instance_uuids,
                                                     return_alternates=return_alternates,
                                                     context=self.context.for_request(ctx))
        except BaseException as exc:
            if isinstance(exc, NoValidHost):
                metrics.SCHEDULER_NO_VALID_HOST.labels(exc.details.get("reason") or "unknown").inc()
            metrics.child(metrics.SCHEDULER_SELECT, (metrics.outcome(exc),)).observe(time.perf_counter() - started)
            raise
        metrics.child(metrics.SCHEDULER_SELECT, ("ok",)).observe(time.perf_counter() - started)
        return [[s.to_dict() for s in choices] for choices in found]

    @expose
    async def check_host(self, ctx: RequestContext, spec: dict[str, Any], host: str, node: str | None = None) -> None:
        await host_check.check_host(self.db, RequestSpec.from_dict(spec), host, node,
                                    context=self.context.for_request(ctx))
