"""ComputeFilter: the host's compute service is up and enabled."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from loom.scheduler.filters.base import Filter
from loom.scheduler.hosts import HostState
from loom.scheduler.request import RequestSpec

if TYPE_CHECKING:
    from loom.scheduler.context import SchedulingContext

LOG = logging.getLogger(__name__)


class ComputeFilter(Filter):
    run_once_per_request = True

    def host_passes(self, host: HostState, spec: RequestSpec, context: SchedulingContext) -> bool:
        if host.service_disabled:
            LOG.debug("%s is disabled, reason: %s", host, host.disabled_reason)
            return False
        if not host.service_up:
            LOG.debug("%s has not been heard from in a while", host)
            return False
        return True
