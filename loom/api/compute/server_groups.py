"""``/os-server-groups``: list, create, show and delete server groups.

Bodies follow Nova's microversions: before 2.64 a group has ``policies``
(a one-item list) and an always-empty ``metadata``; 2.13 adds
``project_id`` and ``user_id``; 2.15 allows the soft policies; from 2.64
a group has ``policy`` and ``rules`` instead."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from loom.api.compute.base import enforce, field_error, int_param
from loom.api.http import JSON, Call, Endpoint, empty
from loom.context import RequestContext
from loom.db.models import ServerGroup
from loom.errors import Invalid, NotFound
from loom.objects import quotas, server_groups
from loom.policy.enforcer import ADMIN, ADMIN_OR_PROJECT_MEMBER, ADMIN_OR_PROJECT_READER, Rule

MAX_LIMIT = 1000
POLICY_OBJECT = "2.64"
_DIGITS = re.compile(r"^[0-9]*$")
_INDEX_QUERY = {"all_projects", "limit", "offset"}


def _name(group: dict[str, Any]) -> str:
    name = group["name"]
    if not isinstance(name, str):
        raise field_error("name", name, f"{name!r} is not of type 'string'")
    if not name:
        raise field_error("name", name, "'' should be non-empty")
    if len(name) > 255:
        raise field_error("name", name, f"{name!r} is too long")
    if name != name.strip() or not name.isprintable():
        raise Invalid("An invalid 'name' value was provided. The name must be: printable characters. "
                      "Can not start or end with whitespace.")
    return name


def _policies(value: Any, allowed: list[str]) -> str:
    if not isinstance(value, list):
        raise field_error("policies", value, f"{value!r} is not of type 'array'")
    if not value:
        raise field_error("policies", value, "[] should be non-empty")
    if len(value) > 1:
        raise field_error("policies", value, f"{value!r} is too long")
    policy = value[0]
    if not isinstance(policy, str):
        raise field_error(0, policy, f"{policy!r} is not of type 'string'")
    if policy not in allowed:
        raise field_error(0, policy, f"{policy!r} is not one of {allowed}")
    return policy


def _rules(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise field_error("rules", value, f"{value!r} is not of type 'object'")
    extra = sorted(set(value) - {"max_server_per_host"})
    if extra:
        raise field_error("rules", value, f"Additional properties are not allowed ({', '.join(map(repr, extra))} "
                   f"{'was' if len(extra) == 1 else 'were'} unexpected)")
    if "max_server_per_host" not in value:
        return {}
    raw = value["max_server_per_host"]
    # Nova's positive_integer: an integer, or a string of digits.
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise field_error("max_server_per_host", raw, f"{raw!r} is not of type 'integer', 'string'")
    if isinstance(raw, str) and (not raw or not _DIGITS.match(raw)):
        raise field_error("max_server_per_host", raw, f"{raw!r} does not match '^[0-9]*$'")
    if int(raw) < 1:
        raise field_error("max_server_per_host", raw, f"{raw} is less than the minimum of 1")
    return {"max_server_per_host": int(raw)}


def parse_create(body: Any, *, soft: bool, policy_object: bool) -> tuple[str, str, dict[str, int]]:
    """(name, policy, rules) from a create body, validated as Nova's schema
    for the microversion: ``soft`` from 2.15, ``policy_object`` from 2.64."""
    if not isinstance(body, dict) or "server_group" not in body:
        raise Invalid("'server_group' is a required property")
    extra_top = sorted(set(body) - {"server_group"})
    if extra_top:
        raise Invalid(f"Additional properties are not allowed ({', '.join(map(repr, extra_top))} "
                      f"{'was' if len(extra_top) == 1 else 'were'} unexpected)")
    group = body["server_group"]
    if not isinstance(group, dict):
        raise field_error("server_group", group, f"{group!r} is not of type 'object'")
    allowed = ["anti-affinity", "affinity"] + (["soft-anti-affinity", "soft-affinity"] if soft else [])
    known = {"name", "policy", "rules"} if policy_object else {"name", "policies"}
    extra = sorted(set(group) - known)
    if extra:
        raise field_error("server_group", group, f"Additional properties are not allowed "
                   f"({', '.join(map(repr, extra))} {'was' if len(extra) == 1 else 'were'} unexpected)")
    for required in ("name", "policy" if policy_object else "policies"):
        if required not in group:
            raise field_error("server_group", group, f"'{required}' is a required property")
    name = _name(group)
    if not policy_object:
        return name, _policies(group["policies"], allowed), {}
    policy = group["policy"]
    if not isinstance(policy, str):
        raise field_error("policy", policy, f"{policy!r} is not of type 'string'")
    if policy not in allowed:
        raise field_error("policy", policy, f"{policy!r} is not one of {allowed}")
    rules = _rules(group.get("rules", {}))
    if policy != "anti-affinity" and rules:
        raise Invalid("Only anti-affinity policy supports rules.")
    return name, policy, rules


def group_hint(hints: dict[str, Any]) -> str | None:
    """The ``group`` scheduler hint of a server create, validated as Nova's
    schema does (a string in uuid form)."""
    value = hints.get("group")
    if value is None:
        return None
    if not isinstance(value, str):
        raise field_error("group", value, f"{value!r} is not of type 'string'")
    try:
        uuid.UUID(value)
    except ValueError:
        raise field_error("group", value, f"{value!r} is not a 'uuid'") from None
    return value


async def hinted_group(session: AsyncSession, ctx: RequestContext, hints: dict[str, Any]) -> ServerGroup | None:
    """The group a server create asks to join; an unknown one is a 400."""
    group_uuid = group_hint(hints)
    if group_uuid is None:
        return None
    try:
        return await server_groups.get(session, ctx, group_uuid)
    except NotFound as exc:
        raise Invalid(exc.message) from None


async def join(session: AsyncSession, group: ServerGroup | None, instance_uuids: list[str]) -> None:
    """New instances join the group in the transaction that creates them."""
    if group is None:
        return
    try:
        await server_groups.add_members(session, group.uuid, instance_uuids)
    except NotFound as exc:
        raise Invalid(exc.message) from None


def request_group(group: ServerGroup | None) -> dict[str, Any] | None:
    """The request spec's ``instance_group``; the conductor fills in where
    the members are just before it schedules."""
    if group is None:
        return None
    return {"uuid": group.uuid, "policy": group.policy, "rules": dict(group.rules or {}), "hosts": [],
            "members": []}


def view(call: Call, group: ServerGroup, members: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": group.uuid, "name": group.name}
    if call.version.at_least(POLICY_OBJECT):
        out["policy"] = group.policy
        out["rules"] = dict(group.rules or {})
    else:
        out["policies"] = [group.policy]
        out["metadata"] = {}
    out["members"] = members
    if call.version.at_least("2.13"):
        out["project_id"] = group.project_id
        out["user_id"] = group.user_id
    return out


async def list_(call: Call) -> Response:
    if call.version.at_least("2.75"):
        extra = sorted(set(call.query) - _INDEX_QUERY)
        if extra:
            raise Invalid(f"Additional properties are not allowed ({', '.join(map(repr, extra))} "
                          f"{'was' if len(extra) == 1 else 'were'} unexpected)")
    limit = min(int_param(call, "limit") or MAX_LIMIT, MAX_LIMIT)
    offset = int_param(call, "offset") or 0
    own = {"project_id": call.ctx.project_id, "user_id": call.ctx.user_id}
    enforce(call, "os_compute_api:os-server-groups:index", own)
    project_id: str | None = call.ctx.project_id or ""
    # As in Nova, a non-admin asking for all projects quietly gets their own.
    if "all_projects" in call.query and call.ctx.is_admin:
        enforce(call, "os_compute_api:os-server-groups:index:all_projects", own)
        project_id = None
    async with call.deps.db.session() as session:
        rows = await server_groups.list_(session, project_id, limit, offset)
        members = await server_groups.members(session, [g.id for g in rows])
    return JSON({"server_groups": [view(call, g, members[g.id]) for g in rows]})


async def show(call: Call) -> Response:
    async with call.deps.db.session() as session:
        group = await server_groups.get(session, call.ctx, call.params["group_id"])
        enforce(call, "os_compute_api:os-server-groups:show", {"project_id": group.project_id,
                                                               "user_id": group.user_id})
        members = await server_groups.members(session, [group.id])
    return JSON({"server_group": view(call, group, members[group.id])})


async def create(call: Call) -> Response:
    v = call.version
    name, policy, rules = parse_create(await call.body(), soft=v.at_least("2.15"),
                                       policy_object=v.at_least(POLICY_OBJECT))
    enforce(call, "os_compute_api:os-server-groups:create")
    async with call.deps.db.session.begin() as session:
        group = await server_groups.create(session, name=name, policy=policy, rules=rules,
                                           project_id=call.ctx.project_id or "", user_id=call.ctx.user_id or "")
        await quotas.check_server_groups(session, call.deps.settings.quota, group.project_id, group.user_id)
    return JSON({"server_group": view(call, group, [])})


async def delete(call: Call) -> Response:
    async with call.deps.db.session.begin() as session:
        group = await server_groups.get(session, call.ctx, call.params["group_id"])
        enforce(call, "os_compute_api:os-server-groups:delete", {"project_id": group.project_id,
                                                                 "user_id": group.user_id})
        await server_groups.delete_group(session, group)
    return empty(204)


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/os-server-groups", list_),
    Endpoint("POST", "/os-server-groups", create),
    Endpoint("GET", "/os-server-groups/{group_id}", show),
    Endpoint("DELETE", "/os-server-groups/{group_id}", delete),
]
RULES: list[Rule] = [
    Rule("os_compute_api:os-server-groups:index", ADMIN_OR_PROJECT_READER, "List server groups.",
         (("GET", "/os-server-groups"),)),
    Rule("os_compute_api:os-server-groups:index:all_projects", ADMIN, "List the server groups of every project.",
         (("GET", "/os-server-groups"),)),
    Rule("os_compute_api:os-server-groups:show", ADMIN_OR_PROJECT_READER, "Show a server group.",
         (("GET", "/os-server-groups/{server_group_id}"),)),
    Rule("os_compute_api:os-server-groups:create", ADMIN_OR_PROJECT_MEMBER, "Create a server group.",
         (("POST", "/os-server-groups"),)),
    Rule("os_compute_api:os-server-groups:delete", ADMIN_OR_PROJECT_MEMBER, "Delete a server group.",
         (("DELETE", "/os-server-groups/{server_group_id}"),)),
]
