"""``/servers/{id}/ips``: a server's addresses, all of them or those on one
network (by its label), as Nova's ips API shows them."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.compute import server_views
from loom.api.compute.base import enforce
from loom.api.http import JSON, Call, Endpoint
from loom.db.models import Instance
from loom.errors import NotFound
from loom.objects import instances
from loom.policy.enforcer import ADMIN_OR_PROJECT_READER, Rule


async def _load(call: Call, rule: str) -> Instance:
    async with call.deps.db.session() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
    enforce(call, rule, {"project_id": row.project_id, "user_id": row.user_id})
    return row


async def index(call: Call) -> Response:
    row = await _load(call, "os_compute_api:ips:index")
    networks = server_views.networks(instances.network_info(row))
    return JSON({"addresses": server_views.addresses(networks, extended=False)})


async def show(call: Call) -> Response:
    row = await _load(call, "os_compute_api:ips:show")
    label = call.params["network_label"]
    networks = server_views.networks(instances.network_info(row))
    if label not in networks:
        raise NotFound("Instance is not a member of specified network")
    return JSON(server_views.addresses({label: networks[label]}, extended=False))


ENDPOINTS = [
    Endpoint("GET", "/servers/{server_id}/ips", index),
    Endpoint("GET", "/servers/{server_id}/ips/{network_label}", show),
]
RULES = [
    Rule(
        "os_compute_api:ips:index",
        ADMIN_OR_PROJECT_READER,
        "List a server's addresses by network.",
        (("GET", "/servers/{server_id}/ips"),),
    ),
    Rule(
        "os_compute_api:ips:show",
        ADMIN_OR_PROJECT_READER,
        "List a server's addresses on one network.",
        (("GET", "/servers/{server_id}/ips/{network_label}"),),
    ),
]
