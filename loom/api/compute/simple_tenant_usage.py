"""``/os-simple-tenant-usage``: what each project's servers used over a
period (hours, and vCPU, memory and disk hours), counted from when each
server launched and was terminated, deleted servers included. Bodies,
paging (2.40) and messages as Nova's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from loom.api.compute.base import base_url, enforce, int_param
from loom.api.http import JSON, Call, Endpoint
from loom.db.models import Instance
from loom.errors import Invalid
from loom.objects import usage
from loom.policy.enforcer import ADMIN, ADMIN_OR_PROJECT_READER, Rule
from loom.timeutils import utcnow

MAX_LIMIT = 1000
_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def _parse(raw: str | None) -> dt.datetime:
    if not raw:
        return utcnow()
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(raw, fmt)
        except ValueError:
            continue
    raise Invalid("Invalid datetime string: Datetime is in invalid format")


def _period(call: Call) -> tuple[dt.datetime, dt.datetime]:
    start, stop = _parse(call.query.get("start")), _parse(call.query.get("end"))
    if not start < stop:
        raise Invalid("Invalid start time. The start time cannot occur after the end time.")
    # Nothing is known after now.
    return start, min(stop, utcnow())


def _hours(row: Instance, start: dt.datetime, stop: dt.datetime) -> float:
    launched, terminated = row.launched_at, row.terminated_at
    if launched is None or launched > stop or (terminated is not None and terminated < start):
        return 0
    end = min(stop, terminated) if terminated is not None else stop
    return (end - max(launched, start)).total_seconds() / 3600.0


def _server_usage(row: Instance, start: dt.datetime, stop: dt.datetime, now: dt.datetime) -> dict[str, Any]:
    flavor = row.flavor or {}
    ended = row.terminated_at
    state = "terminated" if ended is not None else row.vm_state
    assert row.launched_at is not None  # the window's query asks for it
    return {"hours": _hours(row, start, stop), "flavor": flavor.get("name", ""), "instance_id": row.uuid,
            "name": row.display_name, "tenant_id": row.project_id, "memory_mb": flavor.get("memory_mb", 0),
            "local_gb": flavor.get("root_gb", 0) + flavor.get("ephemeral_gb", 0),
            "vcpus": flavor.get("vcpus", 0), "started_at": _time(row.launched_at), "ended_at": _time(ended),
            "state": state, "uptime": int(((ended or now) - row.launched_at).total_seconds())}


def _summaries(server_usages: Iterable[dict[str, Any]], start: dt.datetime, stop: dt.datetime,
               detailed: bool) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for info in server_usages:
        summary = out.get(info["tenant_id"])
        if summary is None:
            summary = out[info["tenant_id"]] = {"tenant_id": info["tenant_id"], "total_local_gb_usage": 0,
                                                "total_vcpus_usage": 0, "total_memory_mb_usage": 0,
                                                "total_hours": 0, "start": _time(start), "stop": _time(stop)}
            if detailed:
                summary["server_usages"] = []
        summary["total_local_gb_usage"] += info["local_gb"] * info["hours"]
        summary["total_vcpus_usage"] += info["vcpus"] * info["hours"]
        summary["total_memory_mb_usage"] += info["memory_mb"] * info["hours"]
        summary["total_hours"] += info["hours"]
        if detailed:
            summary["server_usages"].append(info)
    return list(out.values())


async def _usages(call: Call, project_id: str | None) -> tuple[list[dict[str, Any]], dt.datetime, dt.datetime,
                                                               int | None]:
    start, stop = _period(call)
    paged = call.version.at_least("2.40")
    limit = min(int_param(call, "limit") or MAX_LIMIT, MAX_LIMIT) if paged else MAX_LIMIT
    marker = call.query.get("marker") if paged else None
    async with call.deps.db.session() as session:
        rows = await usage.active_by_window(session, start, stop, project_id=project_id, limit=limit,
                                            marker=marker)
    now = utcnow()
    return [_server_usage(r, start, stop, now) for r in rows], start, stop, limit if paged else None


def _links(call: Call, path: str, server_usages: list[dict[str, Any]], limit: int | None) -> list[dict[str, str]]:
    if limit is None or not server_usages or len(server_usages) != limit:
        return []
    params = [(k, v) for k, v in call.request.query_params.multi_items() if k != "marker"]
    params.append(("marker", server_usages[-1]["instance_id"]))
    return [{"rel": "next", "href": f"{base_url(call)}/{path}?{urlencode(params)}"}]


async def index(call: Call) -> Response:
    enforce(call, "os_compute_api:os-simple-tenant-usage:list")
    detailed = call.query.get("detailed", "0") == "1"
    server_usages, start, stop, limit = await _usages(call, None)
    body: dict[str, Any] = {"tenant_usages": _summaries(server_usages, start, stop, detailed)}
    if links := _links(call, "os-simple-tenant-usage", server_usages, limit):
        body["tenant_usages_links"] = links
    return JSON(body)


async def show(call: Call) -> Response:
    tenant_id = call.params["tenant_id"]
    enforce(call, "os_compute_api:os-simple-tenant-usage:show", {"project_id": tenant_id})
    server_usages, start, stop, limit = await _usages(call, tenant_id)
    found = _summaries(server_usages, start, stop, True)
    body: dict[str, Any] = {"tenant_usage": found[0] if found else {}}
    if links := _links(call, f"os-simple-tenant-usage/{tenant_id}", server_usages, limit):
        body["tenant_usage_links"] = links
    return JSON(body)


ENDPOINTS = [
    Endpoint("GET", "/os-simple-tenant-usage", index),
    Endpoint("GET", "/os-simple-tenant-usage/{tenant_id}", show),
]

RULES = [
    Rule("os_compute_api:os-simple-tenant-usage:list", ADMIN, "List the usage of every project."),
    Rule("os_compute_api:os-simple-tenant-usage:show", ADMIN_OR_PROJECT_READER, "Show a project's usage."),
]
