"""Task log rows: one per run of a periodic audit on a host, for its period
(Nova's task_log), and the audit period itself."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from loom.db.models import TaskLog
from loom.timeutils import utcnow

USAGE_AUDIT = "instance_usage_audit"


def last_completed_hour(before: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The last whole hour that ended before ``before`` (now by default):
    Nova's last_completed_audit_period with the unit ``hour``."""
    now = before or utcnow()
    end = now.replace(minute=0, second=0, microsecond=0)
    if end >= now:
        end -= dt.timedelta(hours=1)
    return end - dt.timedelta(hours=1), end


async def find(session: Any, task_name: str, begin: dt.datetime, end: dt.datetime,
               host: str | None = None) -> list[TaskLog]:
    query = select(TaskLog).where(TaskLog.task_name == task_name, TaskLog.period_beginning == begin,
                                  TaskLog.period_ending == end)
    if host is not None:
        query = query.where(TaskLog.host == host)
    return list(await session.scalars(query.order_by(TaskLog.host)))


async def begin_task(db: Any, task_name: str, host: str, begin: dt.datetime, end: dt.datetime, items: int,
                     message: str) -> bool:
    """Record that the task started on ``host`` for the period; False if it
    already ran (or runs) there: the unique row makes concurrent runs one."""
    try:
        async with db.session.begin() as session:
            session.add(TaskLog(task_name=task_name, state="RUNNING", host=host, period_beginning=begin,
                                period_ending=end, task_items=items, message=message))
    except IntegrityError:
        return False
    return True


async def end_task(db: Any, task_name: str, host: str, begin: dt.datetime, end: dt.datetime, errors: int,
                   message: str) -> None:
    async with db.session.begin() as session:
        await session.execute(update(TaskLog).where(
            TaskLog.task_name == task_name, TaskLog.host == host, TaskLog.period_beginning == begin,
            TaskLog.period_ending == end).values(state="DONE", errors=errors, message=message[:255],
                                                 updated_at=utcnow()))
