"""``POST /servers/{id}/remote-consoles`` (2.6; Nova's remote consoles): a
URL to the server's VNC display (through noVNC) or serial port, through the
console proxy, with a token good for one connection within
``console.token_ttl`` seconds. The older per-type actions
(``os-getVNCConsole`` and its kin) share ``console_url``
(``server_consoles``).

Loom's drivers offer VNC (type ``novnc``) and serial consoles; SPICE, RDP
and MKS are refused with 501, as Nova does where a driver lacks them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.compute.action_base import body_object
from loom.api.compute.base import enforce, field_error
from loom.api.compute.server_guest import NotImplementedByHost
from loom.api.http import JSON, Call, Endpoint
from loom.compute.rpcapi import ComputeAPI
from loom.console import tokens, urls
from loom.errors import BadState, Conflict, Invalid, NotFound
from loom.objects import instances
from loom.policy.enforcer import ADMIN_OR_PROJECT_MEMBER, Rule
from loom.virt.driver import ConsoleEndpoint, NotSupported

RULE = "os_compute_api:os-remote-consoles"
# The console type each protocol Loom serves offers.
SERVED = {"vnc": "novnc", "serial": "serial"}
_PROTOCOLS = ("vnc", "spice", "rdp", "serial")
_TYPES = ("novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial")


def _enum(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise field_error(name, value, f"{value!r} is not of type 'string'")
    if value not in allowed:
        raise field_error(name, value, f"{value!r} is not one of {list(allowed)}")
    return value


async def console_url(call: Call, protocol: str, console_type: str, action: str) -> str:
    """A tokened URL to the server's ``protocol`` console of ``console_type``;
    ``action`` names the request in refusals, as Nova's do."""
    async with call.deps.db.session() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
    enforce(call, RULE, {"project_id": row.project_id})
    if protocol not in SERVED:
        raise NotImplementedByHost("The requested functionality is not supported.")
    if console_type == "xvpvnc":  # the XenServer console Nova no longer offers
        raise Invalid(f"Unavailable console type {console_type}.")
    if SERVED[protocol] != console_type:
        raise Invalid(f"Invalid console type {console_type}")
    if not row.host:
        raise Conflict(f"Instance {row.uuid} is not ready")
    if row.task_state in ("deleting", "migrating"):
        raise BadState(f"Cannot '{action}' instance {row.uuid} while it is in task_state {row.task_state}")
    try:
        found = await ComputeAPI(call.deps.bus).get_console_endpoint(call.ctx, row.host, row.uuid, protocol)
    except NotSupported:
        raise NotImplementedByHost("The requested functionality is not supported.") from None
    settings = call.deps.settings.console
    token = await tokens.issue(call.deps.db, console_type=console_type, instance_uuid=row.uuid, host=row.host,
                               endpoint=ConsoleEndpoint(**found), ttl=settings.token_ttl)
    return urls.access_url(settings, console_type, token)


async def create(call: Call) -> Response:
    if not call.version.at_least("2.6"):
        raise NotFound("The resource could not be found.")
    body = await call.json_object()
    if set(body) - {"remote_console"}:
        extra = ", ".join(map(repr, sorted(set(body) - {"remote_console"})))
        raise Invalid(f"Invalid input for field/attribute. Additional properties are not allowed ({extra} was "
                      "unexpected)")
    if "remote_console" not in body:
        raise Invalid("Invalid input for field/attribute remote_console. 'remote_console' is a required property")
    request = body_object("remote_console", body["remote_console"], ("protocol", "type"),
                          required=("protocol", "type"))
    mks = call.version.at_least("2.8")
    protocol = _enum("protocol", request["protocol"], (*_PROTOCOLS, "mks") if mks else _PROTOCOLS)
    console_type = _enum("type", request["type"], (*_TYPES, "webmks") if mks else _TYPES)
    url = await console_url(call, protocol, console_type, "create")
    return JSON({"remote_console": {"protocol": protocol, "type": console_type, "url": url}})


ENDPOINTS = [Endpoint("POST", "/servers/{server_id}/remote-consoles", create)]

RULES = [Rule(RULE, ADMIN_OR_PROJECT_MEMBER, "Get a URL to a server's remote console (VNC, serial).")]
