"""Helpers every compute handler uses."""

from __future__ import annotations

from typing import Any

from loom.api.http import Call
from loom.errors import Invalid


def field_error(field: Any, value: Any, why: str) -> Invalid:
    """A body field Nova's JSON schema would refuse, in its words."""
    return Invalid(f"Invalid input for field/attribute {field}. Value: {value}. {why}", field=str(field))


def enforce(call: Call, rule: str, target: dict[str, Any] | None = None) -> None:
    call.deps.enforcer.enforce(rule, call.ctx, target or {"project_id": call.ctx.project_id,
                                                          "user_id": call.ctx.user_id})


def authorized(call: Call, rule: str, target: dict[str, Any] | None = None) -> bool:
    return bool(call.deps.enforcer.authorize(rule, call.ctx, target or {"project_id": call.ctx.project_id,
                                                                        "user_id": call.ctx.user_id}))


def base_url(call: Call) -> str:
    """``<public>/compute/v2.1`` or ``<public>/compute/v2``, as the request came."""
    version = "v2" if str(call.version) == "2.0" else "v2.1"
    return f"{call.deps.settings.public_url}/compute/{version}"


def links(call: Call, collection: str, ident: str) -> list[dict[str, str]]:
    root = call.deps.settings.public_url + "/compute"
    return [{"rel": "self", "href": f"{base_url(call)}/{collection}/{ident}"},
            {"rel": "bookmark", "href": f"{root}/{collection}/{ident}"}]


def int_param(call: Call, name: str, minimum: int = 0) -> int | None:
    raw = call.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not an integer") from None
    if value < minimum:
        raise Invalid(f"Invalid input for query parameters {name}. Value: {raw}. {value} is less than the minimum "
                      f"of {minimum}")
    return value
