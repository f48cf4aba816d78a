"""``GET /os-migrations`` (admin): every move of every server, as Nova
lists them. Filters ``host`` (source or destination), ``status``,
``instance_uuid``, ``source_compute``, ``migration_type``; from 2.23 each
migration shows its type, and a live migration under way links to its
``/servers/{id}/migrations/{id}``; from 2.59 its uuid, newest first,
``limit``/``marker`` paging with a next link, ``changes-since`` and no
unknown query parameters; from 2.66 ``changes-before``."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import or_, select
from starlette.responses import Response

from loom.api.compute.base import base_url, enforce, int_param, links
from loom.api.compute.server_migrations import IN_PROGRESS
from loom.api.http import JSON, Call, Endpoint
from loom.db.models import Migration
from loom.errors import Invalid
from loom.policy.enforcer import ADMIN, Rule

RULE = "os_compute_api:os-migrations:index"
MAX_LIMIT = 1000
_FILTERS = ("hidden", "host", "instance_uuid", "source_compute", "status", "migration_type")


def _time(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def _flavor_id(value: str | None) -> int | str | None:
    """Nova shows flavor ids as numbers; those of Loom's flavors that are."""
    return int(value) if value is not None and value.isdigit() else value


def view(call: Call, m: Migration) -> dict[str, Any]:
    out: dict[str, Any] = {
        "created_at": _time(m.created_at), "dest_compute": m.dest_compute, "dest_host": m.dest_host,
        "dest_node": m.dest_node, "id": m.id, "instance_uuid": m.instance_uuid,
        "new_instance_type_id": _flavor_id(m.new_flavor_id), "old_instance_type_id": _flavor_id(m.old_flavor_id),
        "source_compute": m.source_compute, "source_node": m.source_node, "status": m.status,
        "updated_at": _time(m.updated_at)}
    if call.version.at_least("2.23"):
        out["migration_type"] = m.migration_type
        if m.migration_type == "live-migration" and m.status in IN_PROGRESS:
            out["links"] = links(call, f"servers/{m.instance_uuid}/migrations", str(m.id))
    if call.version.at_least("2.59"):
        out["uuid"] = m.uuid
    return out


def _time_param(call: Call, name: str) -> dt.datetime | None:
    raw = call.query.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not a "
                      "'date-time'") from None
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def _where(call: Call) -> list[Any]:
    q = call.request.query_params
    v = call.version
    allowed = set(_FILTERS)
    if v.at_least("2.59"):
        allowed |= {"limit", "marker", "changes-since"} | ({"changes-before"} if v.at_least("2.66") else set())
        unknown = sorted(set(q) - allowed)
        if unknown:
            raise Invalid(f"Invalid input for query parameters {unknown[0]}. Additional properties are not allowed "
                          f"('{unknown[0]}' was unexpected)")
    conds: list[Any] = [Migration.deleted.is_(False), Migration.hidden.is_(False)]
    if q.getlist("status"):
        conds.append(Migration.status.in_(q.getlist("status")))
    if q.get("host"):
        conds.append(or_(Migration.source_compute == q["host"], Migration.dest_compute == q["host"]))
    elif q.get("source_compute"):
        conds.append(Migration.source_compute == q["source_compute"])
    if q.get("migration_type"):
        conds.append(Migration.migration_type == q["migration_type"])
    if q.get("instance_uuid"):
        conds.append(Migration.instance_uuid == q["instance_uuid"])
    since = _time_param(call, "changes-since") if v.at_least("2.59") else None
    before = _time_param(call, "changes-before") if v.at_least("2.66") else None
    if since and before and before < since:
        raise Invalid("The value of changes-since must be less than or equal to changes-before.")
    if since:
        conds.append(Migration.updated_at >= since)
    if before:
        conds.append(Migration.updated_at <= before)
    return conds


async def list_(call: Call) -> Response:
    enforce(call, RULE, {})
    paged = call.version.at_least("2.59")
    query = select(Migration).where(*_where(call))
    if paged:
        query = query.order_by(Migration.created_at.desc(), Migration.id.desc())
    else:
        query = query.order_by(Migration.id)
    async with call.deps.db.session() as session:
        rows = list(await session.scalars(query))
    if not paged:
        return JSON({"migrations": [view(call, m) for m in rows]})
    asked = int_param(call, "limit")
    limit = min(asked if asked is not None else MAX_LIMIT, MAX_LIMIT)
    marker = call.query.get("marker")
    if marker is not None:
        uuids = [m.uuid for m in rows]
        if marker not in uuids:
            raise Invalid(f"Marker {marker} could not be found.")
        rows = rows[uuids.index(marker) + 1:]
    page = rows[:limit]
    body: dict[str, Any] = {"migrations": [view(call, m) for m in page]}
    if page and len(page) == limit:
        params = [(k, v) for k, v in call.request.query_params.multi_items() if k != "marker"]
        params.append(("marker", page[-1].uuid))
        body["migrations_links"] = [{"rel": "next", "href": f"{base_url(call)}/os-migrations?{urlencode(params)}"}]
    return JSON(body)


ENDPOINTS = [Endpoint("GET", "/os-migrations", list_)]
RULES = [Rule(RULE, ADMIN, "List migrations.")]
