"""Instances active in a window of time, for usage reports and audits:
launched before the window ends and not terminated before it begins,
deleted ones included (Nova's instance_get_active_by_window_joined)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, or_, select

from loom.db.models import Instance
from loom.errors import Invalid


def in_window(begin: dt.datetime, end: dt.datetime) -> Any:
    return and_(or_(Instance.terminated_at.is_(None), Instance.terminated_at > begin), Instance.launched_at < end)


async def active_by_window(session: Any, begin: dt.datetime, end: dt.datetime, *, project_id: str | None = None,
                           host: str | None = None, limit: int | None = None,
                           marker: str | None = None) -> list[Instance]:
    """Ordered by project and uuid; after the instance ``marker`` (a 400
    when there is no such instance, as in Nova)."""
    conds = [in_window(begin, end)]
    if project_id is not None:
        conds.append(Instance.project_id == project_id)
    if host is not None:
        conds.append(Instance.host == host)
    if marker is not None:
        after = await session.scalar(select(Instance).where(Instance.uuid == marker))
        if after is None:
            raise Invalid(f"Marker {marker} could not be found.")
        conds.append(or_(Instance.project_id > after.project_id,
                         and_(Instance.project_id == after.project_id, Instance.uuid > after.uuid)))
    query = select(Instance).where(*conds).order_by(Instance.project_id, Instance.uuid)
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))


async def count_active(session: Any, begin: dt.datetime, end: dt.datetime, host: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(Instance)
                                    .where(in_window(begin, end), Instance.host == host)) or 0)
