"""``GET /servers`` and ``/servers/detail``: filters, sorting and paging
as Nova does them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_, select
from starlette.responses import Response

from loom.api.compute import server_views
from loom.api.compute.base import base_url, enforce, int_param
from loom.api.http import JSON, Call
from loom.db.models import Instance
from loom.errors import Invalid
from loom.objects import instances

MAX_LIMIT = 1000
SORT_KEYS = ("access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive",
             "created_at", "display_description", "display_name", "host", "hostname", "image_ref",
             "instance_type_id", "kernel_id", "key_name", "launch_index", "launched_at", "locked_by", "node",
             "power_state", "progress", "project_id", "ramdisk_id", "root_device_name", "task_state",
             "terminated_at", "updated_at", "user_id", "uuid", "vm_state")
# Filters applied to whole instances after the query, not in SQL.
_IN_PYTHON = frozenset({"tags", "tags-any", "not-tags", "not-tags-any", "ip", "ip6"})
_TRUE = ("1", "on", "t", "true", "y", "yes")
_FALSE = ("0", "f", "false", "n", "no", "off")


def _parse_time(raw: str, name: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"Invalid filter field: {name}. Value {raw} is not an ISO 8601 time.") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _filters(call: Call, detail: bool) -> tuple[Any, bool]:
    """The WHERE clause for a listing and whether deleted servers may show."""
    q = call.request.query_params
    admin = call.ctx.is_admin
    conds: list[Any] = []
    all_tenants = "all_tenants" in q and q.get("all_tenants", "").lower() not in ("0", "false", "off", "no")
    if all_tenants:
        enforce(call, f"os_compute_api:servers:{'detail' if detail else 'index'}:get_all_tenants")
    if not (admin and all_tenants):
        conds.append(Instance.project_id == call.ctx.project_id)
    if admin and (q.get("project_id") or q.get("tenant_id")) and all_tenants:
        conds.append(Instance.project_id == (q.get("project_id") or q.get("tenant_id")))
    changes_since = q.get("changes-since")
    show_deleted = False
    if changes_since:
        conds.append(Instance.updated_at >= _parse_time(changes_since, "changes-since"))
        show_deleted = True
    if q.get("changes-before") and call.version.at_least("2.66"):
        conds.append(Instance.updated_at <= _parse_time(q["changes-before"], "changes-before"))
        show_deleted = True
    if admin and q.get("deleted", "").lower() in ("true", "1", "yes"):
        show_deleted = True
        conds.append(Instance.deleted.is_(True))
    if not show_deleted:
        conds.append(Instance.deleted.is_(False))
        if not q.get("status"):
            # Soft-deleted servers show only when asked for by status, as in Nova.
            conds.append(Instance.vm_state != "soft-delete")
    if q.get("name"):
        try:
            re.compile(q["name"])
        except re.error:
            raise Invalid(f"Invalid regular expression for name: {q['name']}") from None
        conds.append(Instance.display_name.regexp_match(q["name"]))
    if q.get("status"):
        states = [server_views.STATUS_TO_VM.get(s.upper()) for s in q.getlist("status")]
        if None in states:
            return Instance.id.is_(None), show_deleted  # an unknown status matches nothing, as in Nova
        conds.append(Instance.vm_state.in_(states))
    if q.get("image"):
        conds.append(Instance.image_ref == q["image"].rsplit("/", 1)[-1])
    if q.get("flavor"):
        conds.append(Instance.flavor["flavorid"].as_string() == q["flavor"].rsplit("/", 1)[-1])
    if q.get("reservation_id"):
        conds.append(Instance.reservation_id == q["reservation_id"])
    if "locked" in q and call.version.at_least("2.73"):
        if q["locked"].lower() not in _TRUE + _FALSE:
            raise Invalid(f"Unrecognized value '{q['locked']}', acceptable values are: "
                          f"{', '.join(repr(v) for v in sorted(_TRUE + _FALSE))}")
        conds.append(Instance.locked.is_(q["locked"].lower() in _TRUE))
    if admin:
        # Nova silently drops the other filters for everyone else.
        conds += _admin_filters(call)
    return and_(*conds) if conds else True, show_deleted


def _admin_filters(call: Call) -> list[Any]:
    q = call.request.query_params
    conds: list[Any] = []
    exact: dict[str, Any] = {"host": Instance.host, "uuid": Instance.uuid, "user_id": Instance.user_id,
                             "availability_zone": Instance.availability_zone, "vm_state": Instance.vm_state,
                             "task_state": Instance.task_state}
    for name, column in exact.items():
        if q.get(name):
            conds.append(column.in_(q.getlist(name)))
    regex: dict[str, Any] = {"key_name": Instance.key_name, "node": Instance.node}
    for name, column in regex.items():
        if q.get(name):
            conds.append(column.regexp_match(q[name]))
    numeric: dict[str, Any] = {"power_state": Instance.power_state, "progress": Instance.progress}
    for name, column in numeric.items():
        if q.get(name):
            try:
                conds.append(column.in_([int(v) for v in q.getlist(name)]))
            except ValueError:
                raise Invalid(f"Invalid filter field: {name}.") from None
    if q.get("config_drive"):
        conds.append(Instance.config_drive.is_(q["config_drive"].lower() in _TRUE))
    return conds


def _tag_match(call: Call, rows: list[Instance]) -> list[Instance]:
    if not call.version.at_least("2.26"):
        return rows
    q = call.request.query_params

    def split(name: str) -> set[str]:
        return {t for t in q.get(name, "").split(",") if t}

    want_all, want_any, not_all, not_any = split("tags"), split("tags-any"), split("not-tags"), split("not-tags-any")
    if not (want_all or want_any or not_all or not_any):
        return rows
    out = []
    for r in rows:
        have = set(r.tags or ())
        if want_all and not want_all <= have:
            continue
        if want_any and not want_any & have:
            continue
        if not_all and not_all <= have:
            continue
        if not_any and not_any & have:
            continue
        out.append(r)
    return out


def _ip_match(call: Call, rows: list[Instance]) -> list[Instance]:
    """The ``ip`` and ``ip6`` filters, as Nova: a server matches when one of
    its fixed addresses starts with a match of the pattern for its version."""
    q = call.request.query_params
    patterns: dict[int, re.Pattern[str]] = {}
    for version, name in ((4, "ip"), (6, "ip6")):
        if q.get(name):
            try:
                patterns[version] = re.compile(q[name])
            except re.error:
                raise Invalid(f"Invalid regular expression for {name}: {q[name]}") from None
    if not patterns:
        return rows

    def matches(row: Instance) -> bool:
        fixed = [ip for network in server_views.networks(instances.network_info(row)).values() for ip in network["ips"]]
        return any(ip.get("version") in patterns and patterns[ip["version"]].match(str(ip.get("address")))
                   for ip in fixed)

    return [r for r in rows if matches(r)]


async def _list(call: Call, detail: bool) -> Response:
    enforce(call, "os_compute_api:servers:detail" if detail else "os_compute_api:servers:index")
    where, _ = _filters(call, detail)
    limit = min(int_param(call, "limit") or MAX_LIMIT, MAX_LIMIT)
    q = call.request.query_params
    keys = q.getlist("sort_key") or ["created_at"]
    dirs = q.getlist("sort_dir") or ["desc"] * len(keys)
    if len(dirs) < len(keys):
        dirs += [dirs[-1]] * (len(keys) - len(dirs))
    order = []
    for key, direction in zip(keys, dirs, strict=False):
        if key not in SORT_KEYS:
            raise Invalid(f"Invalid sort_key {key}")
        if direction not in ("asc", "desc"):
            raise Invalid(f"Invalid sort_dir {direction}")
        column = getattr(Instance, {"uuid": "uuid", "instance_type_id": "id"}.get(key, key), None)
        if column is None:
            continue
        order.append(column.desc() if direction == "desc" else column.asc())
    order.append(Instance.id.desc())
    async with call.deps.db.session() as session:
        if detail or _IN_PYTHON.intersection(q):
            rows = list(await session.scalars(select(Instance).where(where).order_by(*order)))
        else:
            # A summary needs two columns; clients poll it, so skip building instances.
            rows = list(await session.execute(select(Instance.uuid, Instance.display_name).where(where)
                                              .order_by(*order)))
    rows = _ip_match(call, _tag_match(call, rows))
    marker = q.get("marker")
    if marker:
        ids = [r.uuid for r in rows]
        if marker not in ids:
            raise Invalid(f"marker [{marker}] not found")
        rows = rows[ids.index(marker) + 1:]
    page = rows[:limit]
    admin = call.ctx.is_admin
    items = [server_views.detail(call, r, admin=admin) if detail else server_views.summary(call, r) for r in page]
    body: dict[str, Any] = {"servers": items}
    # As Nova: a full page links to the next, even when that one is empty.
    if page and len(page) == limit:
        params = [(k, v) for k, v in q.multi_items() if k != "marker"] + [("marker", page[-1].uuid)]
        body["servers_links"] = [{"rel": "next", "href": f"{base_url(call)}/servers{'/detail' if detail else ''}?"
                                                          f"{urlencode(params)}"}]
    return JSON(body)


async def list_(call: Call) -> Response:
    return await _list(call, detail=False)


async def detail(call: Call) -> Response:
    return await _list(call, detail=True)
