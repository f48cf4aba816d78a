"""The console actions of microversions 2.1 to 2.5 (``remote-consoles``
replaced them in 2.6, where they are not found): ``os-getVNCConsole``
(``novnc``), ``os-getSerialConsole`` (``serial``), and ``os-getSPICEConsole``
and ``os-getRDPConsole``, which no Loom driver offers (501). Each answers
``{"console": {"type", "url"}}``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.compute.action_base import Handler, body_object
from loom.api.compute.base import field_error
from loom.api.compute.remote_consoles import console_url
from loom.api.http import JSON, Call
from loom.errors import NotFound

# action → (protocol, the types its schema allows, Nova's name for it in refusals)
_ACTIONS = {
    "os-getVNCConsole": ("vnc", ("novnc", "xvpvnc"), "get_vnc_console"),
    "os-getSerialConsole": ("serial", ("serial",), "get_serial_console"),
    "os-getSPICEConsole": ("spice", ("spice-html5",), "get_spice_console"),
    "os-getRDPConsole": ("rdp", ("rdp-html5",), "get_rdp_console"),
}


def _action(name: str) -> Handler:
    protocol, types, nova_name = _ACTIONS[name]

    async def handle(call: Call, value: Any) -> Response:
        if call.version.at_least("2.6"):
            raise NotFound("The resource could not be found.")  # Nova's answer for an action not in the version
        body = body_object(name, value, ("type",), required=("type",))
        console_type = body["type"]
        if not isinstance(console_type, str):
            raise field_error("type", console_type, f"{console_type!r} is not of type 'string'")
        if console_type not in types:
            raise field_error("type", console_type, f"{console_type!r} is not one of {list(types)}")
        url = await console_url(call, protocol, console_type, nova_name)
        return JSON({"console": {"type": console_type, "url": url}})

    return handle


ACTIONS: dict[str, Handler] = {name: _action(name) for name in _ACTIONS}
# The policy rule is remote_consoles' (Nova's one rule for every console).
RULES: list[Any] = []
