"""Service records: registration, heartbeats and "is it up"."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.engine import Database
from loom.db.models import Service
from loom.errors import NotFound
from loom.timeutils import isotime, utcnow


def is_up(service: Service, down_time: float, now: dt.datetime | None = None) -> bool:
    if service.forced_down or service.last_seen_up is None:
        return False
    now = now or utcnow()
    return (now - service.last_seen_up).total_seconds() <= down_time


def to_dict(service: Service, down_time: float) -> dict[str, Any]:
    return {
        "id": service.id,
        "uuid": service.uuid,
        "host": service.host,
        "binary": service.binary,
        "topic": service.topic,
        "disabled": service.disabled,
        "disabled_reason": service.disabled_reason,
        "forced_down": service.forced_down,
        "report_count": service.report_count,
        "last_seen_up": isotime(service.last_seen_up),
        "up": is_up(service, down_time),
        "created_at": isotime(service.created_at),
        "updated_at": isotime(service.updated_at),
    }


async def report(db: Database, host: str, binary: str, topic: str) -> Service:
    """Register the service on first report; record a heartbeat on every one."""
    try:
        return await _report(db, host, binary, topic)
    except IntegrityError:
        # Two first reports raced to insert; the loser updates the winner's row.
        return await _report(db, host, binary, topic)


async def _report(db: Database, host: str, binary: str, topic: str) -> Service:
    async with db.session.begin() as session:
        svc = await session.scalar(
            select(Service).where(Service.host == host, Service.binary == binary).with_for_update()
        )
        now = utcnow()
        if svc is None:
            svc = Service(host=host, binary=binary, topic=topic, report_count=0)
            session.add(svc)
        svc.topic = topic
        svc.report_count += 1
        svc.last_seen_up = now
        return svc


async def list_services(db: Database, *, host: str | None = None, binary: str | None = None) -> list[Service]:
    async with db.session() as session:
        query = select(Service).order_by(Service.id)
        if host is not None:
            query = query.where(Service.host == host)
        if binary is not None:
            query = query.where(Service.binary == binary)
        return list(await session.scalars(query))


async def get_service(db: Database, host: str, binary: str) -> Service:
    async with db.session() as session:
        svc = await session.scalar(select(Service).where(Service.host == host, Service.binary == binary))
    if svc is None:
        raise NotFound(f"service {binary} on host {host} could not be found")
    return svc


async def find(session: AsyncSession, *, id: int | None = None, uuid: str | None = None, host: str | None = None,
               binary: str | None = None) -> Service | None:
    """One service by id, by uuid, or by host and binary; None if there is none."""
    if id is not None:
        cond = Service.id == id
    elif uuid is not None:
        cond = Service.uuid == uuid
    else:
        cond = (Service.host == host) & (Service.binary == binary)
    return await session.scalar(select(Service).where(cond))
