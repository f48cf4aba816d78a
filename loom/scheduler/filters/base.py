"""The filter contract: a filter says whether a host may take the
request. Filters run in the configured order on the hosts placement found
room on; each records how many hosts it let through."""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext

LOG = logging.getLogger(__name__)


class Filter(abc.ABC):
    """A host filter. Subclasses implement ``host_passes``; one instance
    serves every request, so per-request data lives in the context."""

    # The name the configuration uses: the class name unless set.
    name: ClassVar[str] = ""
    # The answer cannot change between the instances of one request (zone,
    # service, capabilities...): run it for the first instance only.
    run_once_per_request: ClassVar[bool] = False
    # Whether a rebuild with a new image runs it against the server's own
    # host (Nova's RUN_ON_REBUILD): only filters about the image do.
    run_on_rebuild: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def needs_num_instances(self, spec: RequestSpec) -> bool:
        """Whether ``host_passes`` reads ``HostState.num_instances`` for this
        request: counting them is a query the scheduler otherwise skips."""
        return False

    def applies(self, spec: RequestSpec) -> bool:
        """False when ``host_passes`` would pass every host for this request
        (no server group, no zone asked for...): the hosts are not asked."""
        return True

    async def prepare(self, spec: RequestSpec, context: SchedulingContext) -> None:  # noqa: B027
        """Fetch what ``host_passes`` needs, once per request, before any
        host is filtered (``host_passes`` is synchronous)."""

    @abc.abstractmethod
    def host_passes(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> bool:
        """Whether ``host`` may take an instance of ``spec``."""


@dataclass(frozen=True)
class FilterResult:
    name: str
    start: int
    end: int

    @property
    def removed(self) -> int:
        return self.start - self.end

    def __str__(self) -> str:
        # Nova's wording, which operators grep their logs for.
        return f"{self.name}: (start: {self.start}, end: {self.end})"


def run_filters(filters: Sequence[Filter], hosts: Sequence[HostState], spec: RequestSpec,
                context: SchedulingContext, index: int = 0) -> tuple[list[HostState], list[FilterResult]]:
    """The hosts every filter lets through, and what each filter did. For
    the instances after the first (``index`` > 0) the once-per-request
    filters are skipped: ``hosts`` already passed them."""
    remaining = list(hosts)
    results: list[FilterResult] = []
    for f in filters:
        if index > 0 and f.run_once_per_request:
            continue
        start = len(remaining)
        if f.applies(spec):
            remaining = [h for h in remaining if f.host_passes(h, spec, context)]
        results.append(FilterResult(f.name, start, len(remaining)))
        if len(remaining) < start:
            LOG.debug("filter %s removed %d of %d hosts", f.name, start - len(remaining), start)
        if not remaining:
            break
    return remaining, results
