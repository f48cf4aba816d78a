"""``/servers/{id}/metadata``: a server's user metadata (Nova's
server-metadata API). POST merges, PUT replaces all, and one key may be
read, set or removed on its own."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from loom.api.compute.base import enforce, field_error
from loom.api.http import JSON, Call, Endpoint, empty
from loom.db.models import Instance
from loom.errors import Invalid, NotFound
from loom.objects import instances, quotas
from loom.policy.enforcer import ADMIN_OR_PROJECT_MEMBER, ADMIN_OR_PROJECT_READER, Rule

_KEY = re.compile(r"^[a-zA-Z0-9\-_:. ]{1,255}$")
# Nova allows metadata changes only in these states, whatever the task.


def _metadata(value: Any, field: str, *, exactly_one: bool = False) -> dict[str, str]:
    """Nova's metadata schema: keys of 1-255 letters, digits, '-_:. ';
    string values of at most 255 characters."""
    if not isinstance(value, dict):
        raise field_error(field, value, f"{value!r} is not of type 'object'")
    if exactly_one and len(value) != 1:
        why = "does not have enough properties" if not value else "has too many properties"
        raise field_error(field, value, f"{value!r} {why}")
    bad = [k for k in value if not _KEY.match(k)]
    if bad:
        names = ", ".join(repr(k) for k in bad)
        raise field_error(
            field,
            value,
            f"Additional properties are not allowed ({names} {'was' if len(bad) == 1 else 'were'} unexpected)",
        )
    for k, v in value.items():
        if not isinstance(v, str):
            raise field_error(k, v, f"{v!r} is not of type 'string'")
        if len(v) > 255:
            raise field_error(k, v, f"{v!r} is too long")
    return dict(value)


async def _body(call: Call, key: str, *, exactly_one: bool = False) -> dict[str, str]:
    body = await call.json_object()
    if key not in body:
        raise Invalid(f"'{key}' is a required property", field=key)
    extra = sorted(set(body) - {key})
    if extra:
        raise Invalid(
            f"Additional properties are not allowed ({', '.join(repr(k) for k in extra)} "
            f"{'was' if len(extra) == 1 else 'were'} unexpected)"
        )
    return _metadata(body[key], key, exactly_one=exactly_one)


def _target(row: Instance) -> dict[str, Any]:
    return {"project_id": row.project_id, "user_id": row.user_id}


async def _read(call: Call, rule: str) -> dict[str, str]:
    async with call.deps.db.session() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
    enforce(call, rule, _target(row))
    return dict(row.metadata_ or {})


async def _change(
    call: Call, rule: str, action: str, change: dict[str, str], *, replace: bool = False, remove: str | None = None
) -> dict[str, str]:
    """Apply a change under the server's lock, with Nova's checks in Nova's
    order: visibility, policy, lock, state, quota."""
    async with call.deps.db.session.begin() as session:
        row = await instances.get_for_update(session, call.ctx, call.params["server_id"])
        enforce(call, rule, _target(row))
        current = dict(row.metadata_ or {})
        if remove is not None and remove not in current:
            raise NotFound("Metadata item was not found")
        instances.check_unlocked(call.ctx, row)
        instances.check_state(row, action, instances.MUTABLE_STATES, must_have_launched=True)
        if remove is not None:
            current.pop(remove)
        else:
            current = dict(change) if replace else {**current, **change}
            # Nova counts against the caller's limits, not the server owner's.
            await quotas.check_metadata_items(
                session, call.deps.settings.quota, call.ctx.project_id or "", call.ctx.user_id or "", len(current)
            )
        await instances.update_fields(session, row.uuid, {"metadata_": current})
    return current


async def index(call: Call) -> Response:
    return JSON({"metadata": await _read(call, "os_compute_api:server-metadata:index")})


async def show(call: Call) -> Response:
    metadata = await _read(call, "os_compute_api:server-metadata:show")
    key = call.params["key"]
    if key not in metadata:
        raise NotFound("Metadata item was not found")
    return JSON({"meta": {key: metadata[key]}})


async def create(call: Call) -> Response:
    # 200, not 201, as Nova answers for backwards compatibility.
    change = await _body(call, "metadata")
    merged = await _change(call, "os_compute_api:server-metadata:create", "update metadata", change)
    return JSON({"metadata": merged})


async def update_all(call: Call) -> Response:
    change = await _body(call, "metadata")
    replaced = await _change(call, "os_compute_api:server-metadata:update_all", "update metadata", change, replace=True)
    return JSON({"metadata": replaced})


async def update(call: Call) -> Response:
    item = await _body(call, "meta", exactly_one=True)
    if call.params["key"] not in item:
        raise Invalid("Request body and URI mismatch")
    await _change(call, "os_compute_api:server-metadata:update", "update metadata", item)
    return JSON({"meta": item})


async def delete(call: Call) -> Response:
    key = call.params["key"]
    await _change(call, "os_compute_api:server-metadata:delete", "delete metadata", {}, remove=key)
    return empty(204)


ENDPOINTS = [
    Endpoint("GET", "/servers/{server_id}/metadata", index),
    Endpoint("POST", "/servers/{server_id}/metadata", create),
    Endpoint("PUT", "/servers/{server_id}/metadata", update_all),
    Endpoint("GET", "/servers/{server_id}/metadata/{key}", show),
    Endpoint("PUT", "/servers/{server_id}/metadata/{key}", update),
    Endpoint("DELETE", "/servers/{server_id}/metadata/{key}", delete),
]
RULES = [
    Rule(
        "os_compute_api:server-metadata:index",
        ADMIN_OR_PROJECT_READER,
        "List a server's metadata.",
        (("GET", "/servers/{server_id}/metadata"),),
    ),
    Rule(
        "os_compute_api:server-metadata:show",
        ADMIN_OR_PROJECT_READER,
        "Show a server metadata item.",
        (("GET", "/servers/{server_id}/metadata/{key}"),),
    ),
    Rule(
        "os_compute_api:server-metadata:create",
        ADMIN_OR_PROJECT_MEMBER,
        "Add or change server metadata items.",
        (("POST", "/servers/{server_id}/metadata"),),
    ),
    Rule(
        "os_compute_api:server-metadata:update_all",
        ADMIN_OR_PROJECT_MEMBER,
        "Replace all server metadata.",
        (("PUT", "/servers/{server_id}/metadata"),),
    ),
    Rule(
        "os_compute_api:server-metadata:update",
        ADMIN_OR_PROJECT_MEMBER,
        "Set one server metadata item.",
        (("PUT", "/servers/{server_id}/metadata/{key}"),),
    ),
    Rule(
        "os_compute_api:server-metadata:delete",
        ADMIN_OR_PROJECT_MEMBER,
        "Delete a server metadata item.",
        (("DELETE", "/servers/{server_id}/metadata/{key}"),),
    ),
]
