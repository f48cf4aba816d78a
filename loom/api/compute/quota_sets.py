"""``/os-quota-sets``: a project's (or one of its users') compute limits,
their usage, the defaults; setting and reverting them."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from starlette.responses import Response

from loom.api.compute.base import enforce, field_error
from loom.api.http import JSON, Call, Endpoint, empty
from loom.errors import Invalid
from loom.objects import quotas
from loom.policy.enforcer import ADMIN, ADMIN_OR_PROJECT_READER, Rule

POLICY = "os_compute_api:os-quota-sets:%s"
_INTEGER = re.compile(r"^-?[0-9]+$")
_TRUE = {"true", "1", "on", "yes", "y", "t"}
_FALSE = {"false", "0", "off", "no", "n", "f"}


def limit_value(field: str, value: Any) -> int:
    """A limit as Nova's schema takes it: an integer, or a string of
    digits, from -1 (unlimited) to 2**31 - 1."""
    if isinstance(value, str):
        if not _INTEGER.match(value):
            raise field_error(field, value, f"{value!r} does not match '^-?[0-9]+$'")
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise field_error(field, value, f"{value!r} is not of type 'integer', 'string'")
    if number < quotas.UNLIMITED:
        raise field_error(field, value, f"{number} is less than the minimum of {quotas.UNLIMITED}")
    if number > quotas.MAX_LIMIT:
        raise field_error(field, value, f"{number} is greater than the maximum of {quotas.MAX_LIMIT}")
    return number


def _boolean(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise field_error(field, value, f"{value!r} is not a valid boolean")


def unexpected_message(names: Collection[str]) -> str:
    """jsonschema's words for keys a schema does not define."""
    listed = ", ".join(repr(k) for k in names)
    return f"Additional properties are not allowed ({listed} {'was' if len(names) == 1 else 'were'} unexpected)"


def parse_limits(
    body: Mapping[str, Any], key: str, allowed: Collection[str], extra: Collection[str] = ()
) -> dict[str, Any]:
    """The body's settable keys with their values checked; any other key
    is refused as Nova's schema refuses it."""
    unexpected = [k for k in body if k not in allowed and k not in extra]
    if unexpected:
        raise field_error(key, dict(body), unexpected_message(unexpected))
    return {k: v if k in extra else limit_value(k, v) for k, v in body.items()}


def strict_query(call: Call, allowed: tuple[str, ...]) -> None:
    """2.75 refuses query parameters a request does not define."""
    if call.version.at_least("2.75"):
        extra = sorted(set(call.request.query_params) - set(allowed))
        if extra:
            raise Invalid(unexpected_message(extra))


def _user_id(call: Call) -> str | None:
    values = call.request.query_params.getlist("user_id")
    return values[0] if values else None


def view(call: Call, values: Mapping[str, Any], project_id: str | None) -> dict[str, Any]:
    hide = quotas.hidden(call.version)
    body: dict[str, Any] = {"id": project_id} if project_id is not None else {}
    body.update({r: values[r] for r in quotas.RESOURCES if r not in hide})
    return {"quota_set": body}


async def _verified(call: Call, action: str) -> str:
    project_id = call.params["id"]
    enforce(call, POLICY % action, {"project_id": project_id})
    async with call.deps.db.session() as session:
        if not await quotas.project_exists(session, project_id):
            raise Invalid(f"Project ID {project_id} is not a valid project.")
    return project_id


async def show(call: Call) -> Response:
    strict_query(call, ("user_id",))
    project_id = await _verified(call, "show")
    async with call.deps.db.session() as session:
        values = await quotas.limits(session, call.deps.settings.quota, project_id, _user_id(call))
    return JSON(view(call, values, project_id))


async def detail(call: Call) -> Response:
    strict_query(call, ("user_id",))
    project_id = await _verified(call, "detail")
    user_id = _user_id(call)
    async with call.deps.db.session() as session:
        limits = await quotas.limits(session, call.deps.settings.quota, project_id, user_id)
        used = await quotas.usage(session, project_id, user_id)
    values = {r: {"in_use": used[r], "limit": limits[r], "reserved": 0} for r in quotas.RESOURCES}
    return JSON(view(call, values, project_id))


async def defaults(call: Call) -> Response:
    project_id = await _verified(call, "defaults")
    async with call.deps.db.session() as session:
        values = await quotas.defaults(session, call.deps.settings.quota)
    return JSON(view(call, values, project_id))


async def update(call: Call) -> Response:
    strict_query(call, ("user_id",))
    body = await call.json_object()
    if set(body) - {"quota_set"}:
        raise Invalid(unexpected_message(sorted(set(body) - {"quota_set"})))
    legacy = {"networks"} if not call.version.at_least("2.36") else set()
    values = parse_limits(
        await call.json_object("quota_set"), "quota_set", quotas.updatable(call.version), {"force", *legacy}
    )
    force = _boolean("force", values.pop("force", False))
    project_id = await _verified(call, "update")
    if "networks" in values:
        raise Invalid("The networks quota is disabled")
    user_id = _user_id(call)
    settings = call.deps.settings.quota
    async with call.deps.db.session.begin() as session:
        if not force:
            limits = await quotas.limits(session, settings, project_id)
            used = await quotas.usage(session, project_id, user_id)
            totals = await quotas.users_totals(session, project_id)
            own = await quotas.overrides(session, project_id, user_id) if user_id else {}
            for resource, value in values.items():
                low, high = quotas.bounds(
                    limits[resource], used[resource], totals.get(resource, 0), own.get(resource), for_user=bool(user_id)
                )
                quotas.check_bounds(resource, value, low, high)
        await quotas.set_limits(session, project_id, values, user_id or "")
        result = await quotas.limits(session, settings, project_id, user_id)
    return JSON(view(call, result, None))


async def delete(call: Call) -> Response:
    strict_query(call, ("user_id",))
    project_id = call.params["id"]
    enforce(call, POLICY % "delete", {"project_id": project_id})
    async with call.deps.db.session.begin() as session:
        await quotas.delete_limits(session, project_id, _user_id(call))
    return empty(202)


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/os-quota-sets/{id}", show),
    Endpoint("PUT", "/os-quota-sets/{id}", update),
    Endpoint("DELETE", "/os-quota-sets/{id}", delete),
    Endpoint("GET", "/os-quota-sets/{id}/detail", detail),
    Endpoint("GET", "/os-quota-sets/{id}/defaults", defaults),
]
RULES: list[Rule] = [
    Rule(
        POLICY % "show", ADMIN_OR_PROJECT_READER, "Show a project's quotas.", (("GET", "/os-quota-sets/{tenant_id}"),)
    ),
    Rule(
        POLICY % "detail",
        ADMIN_OR_PROJECT_READER,
        "Show a project's quotas with their usage.",
        (("GET", "/os-quota-sets/{tenant_id}/detail"),),
    ),
    Rule(POLICY % "defaults", "", "Show the default quotas.", (("GET", "/os-quota-sets/{tenant_id}/defaults"),)),
    Rule(POLICY % "update", ADMIN, "Set a project's (or a user's) quotas.", (("PUT", "/os-quota-sets/{tenant_id}"),)),
    Rule(
        POLICY % "delete",
        ADMIN,
        "Revert a project's (or a user's) quotas to the defaults.",
        (("DELETE", "/os-quota-sets/{tenant_id}"),),
    ),
]
