"""The hourly instance usage audit of a host (Nova's _instance_usage_audit):
for the last completed hour, count the instances active on the host and
record the run in the task log, once per host and hour."""

from __future__ import annotations

import logging
import time
from typing import Any

from loom.objects import task_logs, usage

LOG = logging.getLogger(__name__)


async def audit_host(conductor: Any, host: str) -> None:
    begin, end = task_logs.last_completed_hour()
    async with conductor.db.session() as session:
        if await task_logs.find(session, task_logs.USAGE_AUDIT, begin, end, host):
            return
        count = await usage.count_active(session, begin, end, host)
    started = time.monotonic()
    if not await task_logs.begin_task(conductor.db, task_logs.USAGE_AUDIT, host, begin, end, count,
                                      "Instance usage audit started..."):
        return
    LOG.info("instance usage audit for host %s from %s to %s: %d instances", host, begin, end, count)
    # Nova sends a usage notification per instance here; Loom has no
    # notification bus yet, so the count is the audit.
    message = (f"Instance usage audit ran for host {host}, {count} instances in "
               f"{time.monotonic() - started} seconds.")
    await task_logs.end_task(conductor.db, task_logs.USAGE_AUDIT, host, begin, end, 0, message)
