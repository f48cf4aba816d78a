"""``/os-instance_usage_audit_log``: how the hourly instance usage audit
(loom/conductor/usage_audit.py) went on each compute host, for the last
completed hour, or the last one before a given time. Bodies as Nova's."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.responses import Response

from loom.api.compute.base import enforce
from loom.api.http import JSON, Call, Endpoint
from loom.db import services
from loom.errors import Invalid
from loom.objects import task_logs
from loom.policy.enforcer import ADMIN, Rule

RULE = "os_compute_api:os-instance-usage-audit-log"
COMPUTE_BINARY = "loom-compute"


async def _report(call: Call, before: dt.datetime | None = None) -> dict[str, Any]:
    begin, end = task_logs.last_completed_hour(before)
    async with call.deps.db.session() as session:
        logs = await task_logs.find(session, task_logs.USAGE_AUDIT, begin, end)
    # Disabled compute services count: they may have instances.
    hosts = {s.host for s in await services.list_services(call.deps.db, binary=COMPUTE_BINARY)}
    done = {t.host for t in logs if t.state == "DONE"}
    running = {t.host for t in logs if t.state == "RUNNING"}
    missing = hosts - {t.host for t in logs}
    errors = sum(t.errors for t in logs)
    status = f"{'ALL' if len(done) == len(hosts) else f'{len(done)} of {len(hosts)}'} hosts done. {errors} errors."
    return {"period_beginning": str(begin), "period_ending": str(end), "num_hosts": len(hosts),
            "num_hosts_done": len(done), "num_hosts_running": len(running), "num_hosts_not_run": len(missing),
            "hosts_not_run": sorted(missing), "total_instances": sum(t.task_items for t in logs),
            "total_errors": errors, "overall_status": status,
            "log": {t.host: {"state": t.state, "instances": t.task_items, "errors": t.errors, "message": t.message}
                    for t in logs}}


async def index(call: Call) -> Response:
    enforce(call, RULE)
    return JSON({"instance_usage_audit_logs": await _report(call)})


async def show(call: Call) -> Response:
    enforce(call, RULE)
    raw = call.params["before_timestamp"]
    try:
        before = dt.datetime.strptime(raw, "%Y-%m-%d %H:%M:%S.%f" if "." in raw else "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise Invalid(f"Invalid timestamp for date {raw}") from None
    return JSON({"instance_usage_audit_log": await _report(call, before)})


ENDPOINTS = [
    Endpoint("GET", "/os-instance_usage_audit_log", index),
    Endpoint("GET", "/os-instance_usage_audit_log/{before_timestamp}", show),
]

RULES = [Rule(RULE, ADMIN, "List the instance usage audits of the compute hosts.")]
