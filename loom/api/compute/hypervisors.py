"""``/os-hypervisors``: the compute nodes, their service's state and (before
2.88) their resources, used amounts read live from placement."""

from __future__ import annotations

import json
import uuid as uuidlib
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from loom.api.compute.base import base_url, enforce, int_param
from loom.api.compute.services import boolean
from loom.api.http import JSON, Call, Endpoint
from loom.compute.rpcapi import ComputeAPI
from loom.db import services
from loom.errors import Invalid, MessagingError, NotFound
from loom.objects import hypervisors
from loom.objects.hypervisors import Hypervisor
from loom.policy.enforcer import ADMIN, Rule

MAX_LIMIT = 1000


def _node_missing(ident: str) -> NotFound:
    return NotFound(f"Hypervisor with ID '{ident}' could not be found.")


def view(call: Call, h: Hypervisor, *, detail: bool, with_servers: bool = False) -> dict[str, Any]:
    v = call.version
    uuids = v.at_least("2.53")
    out: dict[str, Any] = {
        "id": h.node.uuid if uuids else h.node.id,
        "hypervisor_hostname": h.node.hypervisor_hostname,
        "state": "up" if services.is_up(h.service, call.deps.settings.service.down_time) else "down",
        "status": "disabled" if h.service.disabled else "enabled",
    }
    if detail:
        out.update(
            hypervisor_type=h.node.hypervisor_type,
            hypervisor_version=h.node.hypervisor_version,
            host_ip=h.node.host_ip,
            service={
                "id": h.service.uuid if uuids else h.service.id,
                "host": h.node.host,
                "disabled_reason": h.service.disabled_reason,
            },
        )
        if not v.at_least("2.88"):
            out.update(hypervisors.resource_fields(h))
            # A JSON string before 2.28, an object from it.
            out["cpu_info"] = h.node.cpu_info if v.at_least("2.28") else json.dumps(h.node.cpu_info or {})
        else:
            out["uptime"] = None  # no driver reports a host's uptime yet
    if h.servers:
        out["servers"] = [{"name": name, "uuid": uuid} for name, uuid in h.servers]
    elif with_servers and v.at_least("2.75"):
        out["servers"] = []
    return out


def _uuid_or_400(value: str) -> str:
    try:
        uuidlib.UUID(value)
    except ValueError:
        raise Invalid(f"Invalid uuid {value}") from None
    return value


def _query(call: Call, allowed: set[str]) -> None:
    """From 2.53 unknown query parameters are refused, as Nova's schemas do."""
    unknown = sorted(set(call.query) - allowed)
    if unknown and call.version.at_least("2.53"):
        raise Invalid(
            f"Invalid input for query parameters {unknown[0]}. Additional properties are not allowed "
            f"('{unknown[0]}' was unexpected)"
        )


async def _listing(call: Call, *, detail: bool) -> Response:
    enforce(call, f"os_compute_api:os-hypervisors:{'list-detail' if detail else 'list'}")
    v = call.version
    _query(call, {"limit", "marker", "hypervisor_hostname_pattern", "with_servers"})
    paged = v.at_least("2.33")
    pattern = call.query.get("hypervisor_hostname_pattern") if v.at_least("2.53") else None
    with_servers = v.at_least("2.53") and boolean(call.query.get("with_servers", False), "with_servers")
    limit = int_param(call, "limit") if paged else None
    marker = call.query.get("marker") if paged else None
    async with call.deps.db.session() as session:
        if pattern is not None:
            if "limit" in call.query or marker:
                raise Invalid(
                    "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported."
                )
            found = await hypervisors.list_(session, pattern=pattern, with_servers=with_servers)
            if not found:
                raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
        else:
            after = None
            if marker:
                node = (
                    await hypervisors.node_by(session, uuid=marker)
                    if v.at_least("2.53")
                    else await hypervisors.node_by(session, id=int(marker))
                    if marker.isdigit()
                    else None
                )
                if node is None:
                    raise Invalid(f"marker [{marker}] not found")
                after = node.id
            page = min(limit, MAX_LIMIT) if limit is not None else (MAX_LIMIT if paged else None)
            found = await hypervisors.list_(session, limit=page, after_id=after, with_servers=with_servers)
    body: dict[str, Any] = {"hypervisors": [view(call, h, detail=detail, with_servers=with_servers) for h in found]}
    if paged and pattern is None and found and len(found) == min(limit if limit is not None else MAX_LIMIT, MAX_LIMIT):
        params = [(k, val) for k, val in call.request.query_params.multi_items() if k != "marker"]
        params.append(("marker", str(body["hypervisors"][-1]["id"])))
        body["hypervisors_links"] = [
            {"rel": "next", "href": f"{base_url(call)}/os-hypervisors{'/detail' if detail else ''}?{urlencode(params)}"}
        ]
    return JSON(body)


async def list_(call: Call) -> Response:
    return await _listing(call, detail=False)


async def detail(call: Call) -> Response:
    return await _listing(call, detail=True)


async def _hypervisor(call: Call, ident: str, with_servers: bool = False) -> Hypervisor:
    async with call.deps.db.session() as session:
        if call.version.at_least("2.53"):
            node = await hypervisors.node_by(session, uuid=_uuid_or_400(ident))
        else:
            node = await hypervisors.node_by(session, id=int(ident)) if ident.isdigit() else None
        found = await hypervisors.get(session, node, with_servers) if node is not None else None
    if found is None:
        raise _node_missing(ident)
    return found


async def show(call: Call) -> Response:
    enforce(call, "os_compute_api:os-hypervisors:show")
    _query(call, {"with_servers"})
    with_servers = call.version.at_least("2.53") and boolean(call.query.get("with_servers", False), "with_servers")
    h = await _hypervisor(call, call.params["hypervisor_id"], with_servers)
    return JSON({"hypervisor": view(call, h, detail=True, with_servers=with_servers)})


async def uptime(call: Call) -> Response:
    if call.version.at_least("2.88"):
        raise NotFound("The resource could not be found.")
    enforce(call, "os_compute_api:os-hypervisors:uptime")
    h = await _hypervisor(call, call.params["hypervisor_id"])
    if not services.is_up(h.service, call.deps.settings.service.down_time):
        raise Invalid(f"Compute service of {h.node.host} is unavailable at this time.")
    try:
        text = await ComputeAPI(call.deps.bus).get_host_uptime(call.ctx, h.node.host)
    except MessagingError:
        raise Invalid(f"Compute service of {h.node.host} is unavailable at this time.") from None
    return JSON({"hypervisor": {**view(call, h, detail=False), "uptime": text}})


async def _matching(call: Call, rule: str, with_servers: bool) -> Response:
    if call.version.at_least("2.53"):
        raise NotFound("The resource could not be found.")
    enforce(call, rule)
    pattern = call.params["pattern"]
    async with call.deps.db.session() as session:
        found = await hypervisors.list_(session, pattern=pattern, with_servers=with_servers)
    if not found:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return JSON({"hypervisors": [view(call, h, detail=False) for h in found]})


async def search(call: Call) -> Response:
    return await _matching(call, "os_compute_api:os-hypervisors:search", with_servers=False)


async def servers(call: Call) -> Response:
    return await _matching(call, "os_compute_api:os-hypervisors:servers", with_servers=True)


async def statistics(call: Call) -> Response:
    if call.version.at_least("2.88"):
        raise NotFound("The resource could not be found.")
    enforce(call, "os_compute_api:os-hypervisors:statistics")
    async with call.deps.db.session() as session:
        stats = await hypervisors.statistics(session)
    return JSON({"hypervisor_statistics": stats})


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/os-hypervisors", list_),
    Endpoint("GET", "/os-hypervisors/detail", detail),
    Endpoint("GET", "/os-hypervisors/statistics", statistics),
    Endpoint("GET", "/os-hypervisors/{hypervisor_id}", show),
    Endpoint("GET", "/os-hypervisors/{hypervisor_id}/uptime", uptime),
    Endpoint("GET", "/os-hypervisors/{pattern}/search", search),
    Endpoint("GET", "/os-hypervisors/{pattern}/servers", servers),
]
RULES: list[Rule] = [
    Rule(f"os_compute_api:os-hypervisors:{name}", ADMIN, description)
    for name, description in (
        ("list", "List all hypervisors."),
        ("list-detail", "List all hypervisors with details."),
        ("statistics", "Show summary statistics for all hypervisors over all compute nodes."),
        ("show", "Show details for a hypervisor."),
        ("uptime", "Show the uptime of a hypervisor."),
        ("search", "Search hypervisors by hypervisor_hostname pattern (before 2.53)."),
        ("servers", "List the servers on hypervisors matching a hypervisor_hostname pattern (before 2.53)."),
    )
]
