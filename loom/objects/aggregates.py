"""Host aggregates: named sets of compute hosts with metadata. The
``availability_zone`` key of an aggregate's metadata puts its hosts in that
zone; hosts in none are in the default zone. Membership is mirrored into
placement (the aggregate's uuid on the host's root provider), as Nova does.

Functions take the caller's session and leave committing to it."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db import fast
from loom.db.helpers import flush_or_conflict
from loom.db.models import Aggregate, AggregateHost, AggregateMetadata, Instance, Service
from loom.errors import Conflict, Invalid, NotFound
from loom.placement import aggregates as placement_aggregates
from loom.placement import providers
from loom.placement.errors import ConcurrentUpdate, ProviderNotFound
from loom.scheduler.hosts import AZ_METADATA_KEY, COMPUTE_BINARY, DEFAULT_AVAILABILITY_ZONE, compute_node_uuid
from loom.timeutils import utcnow

LOG = logging.getLogger(__name__)

# Nova's zone for services that are not compute hosts.
INTERNAL_AVAILABILITY_ZONE = "internal"
# Which of Nova's InvalidAggregateAction messages a failed check uses.
ADD, UPDATE, UPDATE_META, DELETE = "add", "update", "update_meta", "delete"
_ACTION_MESSAGES = {
    ADD: "Cannot add host to aggregate {id}. Reason: {reason}.",
    UPDATE: "Cannot update aggregate {id}. Reason: {reason}.",
    UPDATE_META: "Cannot update metadata of aggregate {id}. Reason: {reason}.",
    # Nova's wording, though it is the aggregate that is not deleted.
    DELETE: "Cannot remove host from aggregate {id}. Reason: {reason}.",
}


@dataclass
class AggregateRecord:
    id: int
    uuid: str
    name: str
    created_at: dt.datetime
    updated_at: dt.datetime | None
    hosts: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def availability_zone(self) -> str | None:
        return self.metadata.get(AZ_METADATA_KEY)


def invalid_action(action: str, aggregate_id: int, reason: str) -> Invalid:
    return Invalid(_ACTION_MESSAGES[action].format(id=aggregate_id, reason=reason))


def not_found(aggregate_id: int | str) -> NotFound:
    return NotFound(f"Aggregate {aggregate_id} could not be found.")


_AGGREGATES = select(Aggregate.id, Aggregate.uuid, Aggregate.name, Aggregate.created_at,
                     Aggregate.updated_at).order_by(Aggregate.id)
_LOAD_ALL = fast.Statement(_AGGREGATES)
_LOAD = fast.Statement(_AGGREGATES.where(Aggregate.id.in_(bindparam("ids", expanding=True))))
_LOAD_HOSTS = fast.Statement(select(AggregateHost.aggregate_id, AggregateHost.host)
                             .where(AggregateHost.aggregate_id.in_(bindparam("ids", expanding=True)))
                             .order_by(AggregateHost.id))
_LOAD_METADATA = fast.Statement(select(AggregateMetadata.aggregate_id, AggregateMetadata.key, AggregateMetadata.value)
                                .where(AggregateMetadata.aggregate_id.in_(bindparam("ids", expanding=True)))
                                .order_by(AggregateMetadata.key))


async def load(session: fast.Session, ids: Collection[int] | None = None) -> list[AggregateRecord]:
    """Aggregates with their hosts and metadata, by id; all when ``ids`` is None."""
    found = await (fast.rows(session, _LOAD_ALL) if ids is None else fast.rows(session, _LOAD, {"ids": list(ids)}))
    records = {a.id: AggregateRecord(a.id, a.uuid, a.name, a.created_at, a.updated_at) for a in found}
    if not records:
        return []
    wanted = {"ids": list(records)}
    for agg_id, host in await fast.rows(session, _LOAD_HOSTS, wanted):
        records[agg_id].hosts.append(host)
    for agg_id, key, value in await fast.rows(session, _LOAD_METADATA, wanted):
        records[agg_id].metadata[key] = value
    return list(records.values())


async def get(session: AsyncSession, aggregate_id: int) -> AggregateRecord:
    found = await load(session, [aggregate_id])
    if not found:
        raise not_found(aggregate_id)
    return found[0]


_HOSTS = fast.Statement(select(AggregateHost.host, AggregateHost.aggregate_id))
_OF_HOSTS = fast.Statement(_HOSTS.stmt.where(AggregateHost.host.in_(bindparam("hosts", expanding=True))))


async def of_hosts(session: fast.Session, hosts: Collection[str] | None = None) -> dict[str, list[AggregateRecord]]:
    """Host → the aggregates it is in (every host in one when ``hosts`` is None)."""
    if hosts is None:
        pairs = await fast.rows(session, _HOSTS)
    elif not hosts:
        return {}
    else:
        pairs = await fast.rows(session, _OF_HOSTS, {"hosts": list(hosts)})
    if not pairs:  # the usual case for the scheduler: no aggregates at all
        return {}
    records = {r.id: r for r in await load(session, {agg_id for _, agg_id in pairs})}
    out: dict[str, list[AggregateRecord]] = {}
    for host, agg_id in pairs:
        out.setdefault(host, []).append(records[agg_id])
    return out


def zone_of(aggregates: Iterable[AggregateRecord], default: str = DEFAULT_AVAILABILITY_ZONE) -> str:
    """A host's zone from its aggregates; Nova joins several with commas."""
    zones = sorted({a.availability_zone for a in aggregates if a.availability_zone})
    return ",".join(zones) if zones else default


async def service_zones(session: AsyncSession, services: Iterable[Service]) -> dict[int, str]:
    """Service id → its zone: compute hosts by their aggregates, the rest internal."""
    services = list(services)
    by_host = await of_hosts(session, {s.host for s in services if s.binary == COMPUTE_BINARY})
    return {
        s.id: zone_of(by_host.get(s.host, ())) if s.binary == COMPUTE_BINARY else INTERNAL_AVAILABILITY_ZONE
        for s in services
    }


async def available_zones(session: AsyncSession) -> set[str]:
    """The zones of enabled services (Nova's "available" zones)."""
    enabled = list(await session.scalars(select(Service).where(Service.disabled.is_(False))))
    return set((await service_zones(session, enabled)).values())


async def instance_count(session: AsyncSession, hosts: Collection[str]) -> int:
    if not hosts:
        return 0
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Instance)
            .where(Instance.host.in_(list(hosts)), Instance.deleted.is_(False))
        )
        or 0
    )


async def check_zone_change(
    session: AsyncSession,
    agg: AggregateRecord,
    metadata: Mapping[str, str | None],
    action: str,
    hosts: Collection[str] | None = None,
    check_instances: bool = False,
) -> None:
    """Nova's rules for setting an aggregate's zone: not empty, and no host
    of it (or ``hosts``) may be in another zone; with ``check_instances``, a
    zone whose hosts run instances keeps its name."""
    if AZ_METADATA_KEY not in metadata:
        return
    zone = metadata[AZ_METADATA_KEY]
    if not zone:
        raise invalid_action(action, agg.id, f"Aggregate {agg.name} does not support empty named availability zone")
    members = list(hosts) if hosts is not None else agg.hosts
    others = {a.id: a for aggs in (await of_hosts(session, members)).values() for a in aggs if a.id != agg.id}
    conflicting = sorted(
        {a.availability_zone for a in others.values() if a.availability_zone and a.availability_zone != zone}
    )
    if conflicting:
        raise invalid_action(action, agg.id, f"One or more hosts already in availability zone(s) {conflicting}")
    if check_instances and agg.availability_zone != zone and await instance_count(session, members):
        raise invalid_action(action, agg.id, "One or more hosts contain instances in this zone")


async def create(session: AsyncSession, name: str, zone: str | None) -> AggregateRecord:
    agg = Aggregate(name=name)
    session.add(agg)
    await flush_or_conflict(session, f"Aggregate {name} already exists.")
    if zone:
        session.add(AggregateMetadata(aggregate_id=agg.id, key=AZ_METADATA_KEY, value=zone))
        await session.flush()
    return await get(session, agg.id)


async def rename(session: AsyncSession, aggregate_id: int, name: str) -> None:
    agg = await session.get(Aggregate, aggregate_id)
    if agg is None:
        raise not_found(aggregate_id)
    agg.name = name
    await flush_or_conflict(session, f"Aggregate {name} already exists.")


async def update_metadata(session: AsyncSession, aggregate_id: int, updates: Mapping[str, str | None]) -> None:
    """Set keys; a None value deletes its key (a missing one is no error)."""
    rows = {
        m.key: m
        for m in await session.scalars(select(AggregateMetadata).where(AggregateMetadata.aggregate_id == aggregate_id))
    }
    for key, value in updates.items():
        row = rows.get(key)
        if value is None:
            if row is not None:
                await session.delete(row)
        elif row is None:
            session.add(AggregateMetadata(aggregate_id=aggregate_id, key=key, value=value))
        else:
            row.value = value
    await touch(session, aggregate_id)


async def touch(session: AsyncSession, aggregate_id: int) -> None:
    agg = await session.get(Aggregate, aggregate_id)
    if agg is not None:
        agg.updated_at = utcnow()
    await session.flush()


async def add_host(session: AsyncSession, agg: AggregateRecord, host: str) -> None:
    if host in agg.hosts:
        raise Conflict(f"Aggregate {agg.id} already has host {host}.")
    session.add(AggregateHost(aggregate_id=agg.id, host=host))
    await flush_or_conflict(session, f"Aggregate {agg.id} already has host {host}.")
    await mirror(session, agg.uuid, host, member=True)


async def remove_host(session: AsyncSession, agg: AggregateRecord, host: str) -> None:
    if host not in agg.hosts:
        raise NotFound(f"Aggregate {agg.id} has no host {host}.")
    await session.execute(
        sql_delete(AggregateHost).where(AggregateHost.aggregate_id == agg.id, AggregateHost.host == host)
    )
    await mirror(session, agg.uuid, host, member=False)


async def remove_host_everywhere(session: AsyncSession, host: str) -> None:
    """Take a host out of every aggregate (its compute service is going)."""
    for agg in (await of_hosts(session, [host])).get(host, []):
        await remove_host(session, agg, host)


async def delete(session: AsyncSession, agg: AggregateRecord) -> None:
    if agg.hosts:
        raise invalid_action(DELETE, agg.id, "Host aggregate is not empty")
    await session.execute(sql_delete(AggregateMetadata).where(AggregateMetadata.aggregate_id == agg.id))
    await session.execute(sql_delete(Aggregate).where(Aggregate.id == agg.id))


async def mirror(session: AsyncSession, aggregate_uuid: str, host: str, *, member: bool) -> None:
    """Put the aggregate on (or take it off) the host's root provider. As in
    Nova, a failure here is logged, not returned: the aggregate is what counts."""
    try:
        rp = await providers.get(session, compute_node_uuid(host), for_update=True)
        current = set(await placement_aggregates.of_provider(session, rp.id))
        wanted = current | {aggregate_uuid} if member else current - {aggregate_uuid}
        if wanted != current:
            await placement_aggregates.set_for_provider(session, rp, wanted, None)
    except (ProviderNotFound, ConcurrentUpdate) as exc:
        LOG.warning("could not mirror aggregate %s membership of host %s into placement: %s", aggregate_uuid, host, exc)
