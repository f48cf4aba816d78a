"""Checking one host against a request without placing anything: what a
rebuild with a new image asks (Nova schedules it restricted to the
server's own host). Only the filters that run on a rebuild
(``Filter.run_on_rebuild``) decide; nothing is claimed, since the server
keeps the allocation it has there."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.engine import Database
from loom.placement import providers, traits
from loom.placement.errors import ProviderNotFound
from loom.scheduler.context import SchedulingContext
from loom.scheduler.errors import NoValidHost
from loom.scheduler.filters import run_filters
from loom.scheduler.hosts import HostState, availability_zone_of, compute_node_uuid
from loom.scheduler.request import RequestSpec
from loom.scheduler.select import NO_VALID_HOST

LOG = logging.getLogger(__name__)


async def check_host(db: Database, spec: RequestSpec, host: str, node: str | None, *,
                     context: SchedulingContext) -> None:
    """Raise NoValidHost unless ``host`` passes every rebuild filter for ``spec``."""
    filters = [f for f in context.filters if f.run_on_rebuild]
    if not filters:
        return
    state = await _host_state(db, host, node, context)
    for f in filters:
        await f.prepare(spec, context)
    passed, results = run_filters(filters, [state], spec, context)
    if not passed:
        message = f"{NO_VALID_HOST} Filter results: {[str(r) for r in results]}"
        LOG.info("host %s refused for a rebuild: %s", host, message)
        raise NoValidHost(message, reason="filtered", host=host)


async def _host_state(db: Database, host: str, node: str | None, context: SchedulingContext) -> HostState:
    """The host as the filters see it; room and usage do not matter here."""
    provider_uuid = compute_node_uuid(host)
    async with db.session() as session:
        host_traits = await _traits(session, provider_uuid)
    state = HostState(host=host, nodename=node or host, provider_uuid=provider_uuid, traits=host_traits,
                      availability_zone=context.options.default_availability_zone)
    info = (await context.host_info.host_info([host])).get(host)
    if info is not None:
        state.aggregates = list(info.aggregates)
        state.availability_zone = availability_zone_of(info, context.options.default_availability_zone)
        state.capabilities = dict(info.capabilities)
    return state


async def _traits(session: AsyncSession, provider_uuid: str) -> frozenset[str]:
    try:
        rp = await providers.get(session, provider_uuid)
    except ProviderNotFound:
        return frozenset()
    return frozenset(await traits.of_provider(session, rp.id))
