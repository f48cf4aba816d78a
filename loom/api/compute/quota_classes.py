"""``/os-quota-class-sets``: limits by quota class. Only the "default"
class counts when limits are resolved (as in Nova): it holds the defaults
operators change through the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from loom.api.compute.base import enforce
from loom.api.compute.quota_sets import parse_limits, unexpected_message
from loom.api.http import JSON, Call, Endpoint
from loom.errors import Invalid
from loom.objects import quotas
from loom.policy.enforcer import ADMIN, Rule

POLICY = "os_compute_api:os-quota-class-sets:%s"


def view(call: Call, values: Mapping[str, int], class_name: str | None) -> dict[str, Any]:
    hide = quotas.hidden_in_class(call.version)
    body: dict[str, Any] = {"id": class_name} if class_name is not None else {}
    body.update({r: values[r] for r in quotas.RESOURCES if r not in hide})
    return {"quota_class_set": body}


async def show(call: Call) -> Response:
    class_name = call.params["id"]
    enforce(call, POLICY % "show", {"quota_class": class_name})
    async with call.deps.db.session() as session:
        values = await quotas.class_set(session, call.deps.settings.quota, class_name)
    return JSON(view(call, values, class_name))


async def update(call: Call) -> Response:
    body = await call.json_object()
    if set(body) - {"quota_class_set"}:
        raise Invalid(unexpected_message(sorted(set(body) - {"quota_class_set"})))
    # Before 2.50 "networks" passes the schema; it limits nothing.
    legacy = {"networks"} if not call.version.at_least("2.50") else set()
    values = parse_limits(
        await call.json_object("quota_class_set"), "quota_class_set", quotas.updatable_in_class(call.version), legacy
    )
    values.pop("networks", None)
    class_name = call.params["id"]
    enforce(call, POLICY % "update", {"quota_class": class_name})
    if not 1 <= len(class_name) <= 255:
        raise Invalid("quota_class_name has a length of 1 to 255 characters.")
    async with call.deps.db.session.begin() as session:
        await quotas.set_class_limits(session, class_name, values)
        result = await quotas.class_set(session, call.deps.settings.quota, class_name)
    return JSON(view(call, result, None))


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/os-quota-class-sets/{id}", show),
    Endpoint("PUT", "/os-quota-class-sets/{id}", update),
]
RULES: list[Rule] = [
    Rule(POLICY % "show", ADMIN, "Show a quota class's limits.", (("GET", "/os-quota-class-sets/{quota_class}"),)),
    Rule(POLICY % "update", ADMIN, "Set a quota class's limits.", (("PUT", "/os-quota-class-sets/{quota_class}"),)),
]
