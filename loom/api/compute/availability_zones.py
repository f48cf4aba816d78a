"""``/os-availability-zone``: the zones services are in. A compute host is
in the zone of its aggregates' ``availability_zone`` metadata, else in the
default zone; other services are in the internal zone, which only the
detailed (admin) listing shows. A zone is available while one of its
services is enabled."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.compute.base import enforce
from loom.api.compute.services import updated_at
from loom.api.http import JSON, Call, Endpoint
from loom.db import services
from loom.db.models import Service
from loom.objects import aggregates
from loom.policy.enforcer import ADMIN, Rule


async def _zones(call: Call) -> tuple[list[Service], dict[int, str], list[str], list[str]]:
    """Services, their zones, and the available and unavailable zones (in first-seen order)."""
    rows = await services.list_services(call.deps.db)
    async with call.deps.db.session() as session:
        zones = await aggregates.service_zones(session, rows)
    available = list(dict.fromkeys(zones[s.id] for s in rows if not s.disabled))
    unavailable = list(dict.fromkeys(zones[s.id] for s in rows if s.disabled and zones[s.id] not in available))
    return rows, zones, available, unavailable


async def list_(call: Call) -> Response:
    enforce(call, "os_compute_api:os-availability-zone:list")
    _, _, available, unavailable = await _zones(call)
    info = [
        {"zoneName": zone, "zoneState": {"available": state}, "hosts": None}
        for zones, state in ((available, True), (unavailable, False))
        for zone in zones
        if zone != aggregates.INTERNAL_AVAILABILITY_ZONE
    ]
    return JSON({"availabilityZoneInfo": info})


async def detail(call: Call) -> Response:
    enforce(call, "os_compute_api:os-availability-zone:detail")
    rows, zones, available, unavailable = await _zones(call)
    down_time = call.deps.settings.service.down_time
    hosts: dict[str, dict[str, dict[str, Any]]] = {}
    for svc in rows:
        if svc.disabled:
            continue
        hosts.setdefault(zones[svc.id], {}).setdefault(svc.host, {})[svc.binary] = {
            "available": services.is_up(svc, down_time),
            "active": not svc.disabled,
            "updated_at": updated_at(svc),
        }
    info: list[dict[str, Any]] = [
        {"zoneName": zone, "zoneState": {"available": True}, "hosts": hosts.get(zone, {})} for zone in available
    ]
    info += [{"zoneName": zone, "zoneState": {"available": False}, "hosts": None} for zone in unavailable]
    return JSON({"availabilityZoneInfo": info})


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/os-availability-zone", list_),
    Endpoint("GET", "/os-availability-zone/detail", detail),
]
RULES: list[Rule] = [
    # Anyone may list the zones (Nova's default), to pick one to boot in.
    Rule("os_compute_api:os-availability-zone:list", "", "List availability zones, without their hosts."),
    Rule("os_compute_api:os-availability-zone:detail", ADMIN, "List availability zones with their hosts."),
]
