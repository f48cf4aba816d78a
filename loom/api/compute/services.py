"""``/os-services``: list services, enable/disable or force down a compute
service, delete one.

Binaries show as stored (``loom-compute``); filters and updates also take
Nova's names (``nova-compute``) so stock clients' defaults work.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from typing import Any

from starlette.responses import Response

from loom.api.compute.base import enforce
from loom.api.http import JSON, Call, Endpoint, empty
from loom.db import services
from loom.db.models import Service
from loom.errors import Conflict, Invalid, NotFound
from loom.objects import aggregates, hypervisors
from loom.policy.enforcer import ADMIN, Rule
from loom.scheduler.hosts import COMPUTE_BINARY
from loom.timeutils import isotime

NOVA_PREFIX, LOOM_PREFIX = "nova-", "loom-"
TRUE = {"true", "1", "on", "yes", "y", "t"}
FALSE = {"false", "0", "off", "no", "n", "f"}
_HOST = re.compile(r"^[a-zA-Z0-9-._]{1,255}$")


def stored_binary(name: str) -> str:
    """Loom's name for a binary given by Nova's (nova-compute → loom-compute)."""
    return LOOM_PREFIX + name[len(NOVA_PREFIX) :] if name.startswith(NOVA_PREFIX) else name


def boolean(value: Any, name: str) -> bool:
    """Nova's boolean parameter: JSON booleans or their usual spellings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in TRUE | FALSE:
        return value.lower() in TRUE
    raise Invalid(f"Invalid input for field/attribute {name}. Value: {value}. {value!r} is not a valid boolean")


def _string(body: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str | None:
    value = body.get(name)
    if value is None and name not in body:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or (pattern and not pattern.match(value)):
        raise Invalid(
            f"Invalid input for field/attribute {name}. Value: {value}. must be a string of 1 to 255 "
            "characters" + (" (letters, digits, '-', '.', '_')" if pattern else "")
        )
    return value


def no_extra_keys(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Invalid(
            "Additional properties are not allowed ("
            + ", ".join(f"'{k}'" for k in unknown)
            + f" {'was' if len(unknown) == 1 else 'were'} "
            "unexpected)"
        )


def updated_at(svc: Service) -> str | None:
    """When the service last changed or reported in (Nova shows its heartbeat time)."""
    times = [t for t in (svc.updated_at, svc.last_seen_up) if t is not None]
    return isotime(max(times)) if times else None


def view(call: Call, svc: Service, zone: str, *, forced_down: bool) -> dict[str, Any]:
    out = {
        "binary": svc.binary,
        "host": svc.host,
        "id": svc.uuid if call.version.at_least("2.53") else svc.id,
        "zone": zone,
        "status": "disabled" if svc.disabled else "enabled",
        "state": "up" if services.is_up(svc, call.deps.settings.service.down_time) else "down",
        "updated_at": updated_at(svc),
        "disabled_reason": svc.disabled_reason,
    }
    if forced_down:
        out["forced_down"] = svc.forced_down
    return out


async def list_(call: Call) -> Response:
    enforce(call, "os_compute_api:os-services:list")
    if call.version.at_least("2.75"):
        unknown = sorted(set(call.query) - {"host", "binary"})
        if unknown:
            raise Invalid(
                f"Invalid input for query parameters {unknown[0]}. Additional properties are not allowed "
                f"('{unknown[0]}' was unexpected)"
            )
    host, binary = call.query.get("host") or None, call.query.get("binary") or None
    rows = await services.list_services(call.deps.db, host=host, binary=stored_binary(binary) if binary else None)
    async with call.deps.db.session() as session:
        zones = await aggregates.service_zones(session, rows)
    forced = call.version.at_least("2.11")
    return JSON({"services": [view(call, s, zones[s.id], forced_down=forced) for s in rows]})


async def update(call: Call) -> Response:
    if call.version.at_least("2.53"):
        return await _update_by_uuid(call)
    return await _update_action(call)


async def _update_action(call: Call) -> Response:
    """Before 2.53: ``PUT /os-services/{action}`` naming host and binary in the body."""
    body = await call.json_object()
    forced_ok = call.version.at_least("2.11")
    no_extra_keys(body, {"host", "binary", "disabled_reason"} | ({"forced_down"} if forced_ok else set()))
    host, binary = _string(body, "host", _HOST), _string(body, "binary")
    reason = _string(body, "disabled_reason")
    if host is None or binary is None:
        raise Invalid(f"'{'host' if host is None else 'binary'}' is a required property")
    enforce(call, "os_compute_api:os-services:update")
    action = call.params["service_id"]
    out: dict[str, Any] = {"host": host, "binary": binary}
    if action == "enable":
        values: dict[str, Any] = {"disabled": False, "disabled_reason": None}
        out["status"] = "enabled"
    elif action in ("disable", "disable-log-reason"):
        if action == "disable-log-reason" and reason is None:
            raise Invalid("Missing disabled reason field")
        reason = reason if action == "disable-log-reason" else None
        values = {"disabled": True, "disabled_reason": reason}
        out["status"] = "disabled"
        if reason:
            out["disabled_reason"] = reason
    elif action == "force-down" and forced_ok:
        if "forced_down" not in body:
            raise Invalid("Missing forced_down field")
        values = {"forced_down": boolean(body["forced_down"], "forced_down")}
        out["forced_down"] = values["forced_down"]
    else:
        raise NotFound("Unknown action")
    _check_compute(binary)
    async with call.deps.db.session.begin() as session:
        svc = await services.find(session, host=host, binary=stored_binary(binary))
        if svc is None:
            raise NotFound(f"Could not find binary {binary} on host {host}.")
        for key, value in values.items():
            setattr(svc, key, value)
    return JSON({"service": out})


async def _update_by_uuid(call: Call) -> Response:
    """From 2.53: ``PUT /os-services/{uuid}`` with status and/or forced_down."""
    service_id = _uuid(call.params["service_id"])
    body = await call.json_object()
    no_extra_keys(body, {"status", "disabled_reason", "forced_down"})
    status = body.get("status")
    if "status" in body and status not in ("enabled", "disabled"):
        raise Invalid(
            f"Invalid input for field/attribute status. Value: {status}. {status!r} is not one of "
            "['enabled', 'disabled']"
        )
    reason = _string(body, "disabled_reason")
    forced = boolean(body["forced_down"], "forced_down") if "forced_down" in body else None
    enforce(call, "os_compute_api:os-services:update")
    async with call.deps.db.session.begin() as session:
        svc = await services.find(session, uuid=service_id)
        if svc is None:
            raise NotFound(f"Service {service_id} could not be found.")
        _check_compute(svc.binary)
        if status == "enabled":
            if reason:
                raise Invalid("Specifying 'disabled_reason' with status 'enabled' is invalid.")
            svc.disabled, svc.disabled_reason = False, None
        elif status == "disabled":
            svc.disabled, svc.disabled_reason = True, reason
        if forced is not None:
            svc.forced_down = forced
        if status is None and forced is None:
            raise Invalid("No updates were requested. Fields 'status' or 'forced_down' should be specified.")
        await session.flush()
        await session.refresh(svc)
        zones = await aggregates.service_zones(session, [svc])
    return JSON({"service": view(call, svc, zones[svc.id], forced_down=True)})


def _check_compute(binary: str) -> None:
    if stored_binary(binary) != COMPUTE_BINARY:
        raise Invalid(
            f"Updating a {binary} service is not supported. Only {COMPUTE_BINARY} (nova-compute) "
            "services can be updated."
        )


def _uuid(value: str) -> str:
    try:
        uuidlib.UUID(value)
    except ValueError:
        raise Invalid(f"Invalid uuid {value}") from None
    return value


async def delete(call: Call) -> Response:
    enforce(call, "os_compute_api:os-services:delete")
    raw = call.params["service_id"]
    by_uuid = call.version.at_least("2.53")
    if by_uuid:
        _uuid(raw)
    elif not raw.lstrip("-").isdigit():
        raise Invalid("Invalid input received: id must be an integer")
    async with call.deps.db.session.begin() as session:
        svc = await services.find(session, uuid=raw) if by_uuid else await services.find(session, id=int(raw))
        if svc is None:
            raise NotFound(f"Service {raw} not found.")
        if svc.binary == COMPUTE_BINARY:
            # Instances there hold allocations against the host's provider.
            if await aggregates.instance_count(session, [svc.host]):
                raise Conflict(
                    "Unable to delete compute service that is hosting instances. Migrate or delete the instances first."
                )
            await aggregates.remove_host_everywhere(session, svc.host)
            await hypervisors.delete_host_nodes(session, svc.host)
        await session.delete(svc)
    return empty(204)


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/os-services", list_),
    Endpoint("PUT", "/os-services/{service_id}", update),
    Endpoint("DELETE", "/os-services/{service_id}", delete),
]
RULES: list[Rule] = [
    Rule("os_compute_api:os-services:list", ADMIN, "List all running compute services."),
    Rule("os_compute_api:os-services:update", ADMIN, "Enable, disable or force down a compute service."),
    Rule("os_compute_api:os-services:delete", ADMIN, "Delete a service."),
]
