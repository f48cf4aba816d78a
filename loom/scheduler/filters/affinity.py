"""SameHostFilter and DifferentHostFilter: the ``same_host`` and
``different_host`` scheduler hints (an instance uuid or a list of them)
ask for a host running one of those instances, or none of them. Where
the instances run comes from the context's ``instance_hosts``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loom.scheduler.filters.base import Filter
from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext


def hinted_uuids(spec: RequestSpec, hint: str) -> list[str]:
    value = spec.scheduler_hints.get(hint)
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


class _HintFilter(Filter):
    hint = ""
    run_once_per_request = True

    async def prepare(self, spec: RequestSpec, context: SchedulingContext) -> None:
        uuids = hinted_uuids(spec, self.hint)
        if uuids:
            await context.resolve_instance_hosts(uuids)

    def hosts_running(self, spec: RequestSpec, context: SchedulingContext) -> set[str] | None:
        uuids = hinted_uuids(spec, self.hint)
        return context.instance_hosts_of(uuids) if uuids else None


class SameHostFilter(_HintFilter):
    hint = "same_host"

    def host_passes(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> bool:
        hosts = self.hosts_running(spec, context)
        return hosts is None or host.host in hosts


class DifferentHostFilter(_HintFilter):
    hint = "different_host"

    def host_passes(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> bool:
        hosts = self.hosts_running(spec, context)
        return hosts is None or host.host not in hosts
