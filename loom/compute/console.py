"""Where a guest's remote console listens on this host, for the API to
issue a token for and the console proxy to bridge to. Nothing changes: the
driver says where the display or serial port is, or why it has none."""

from __future__ import annotations

import dataclasses
from typing import Any

from loom.errors import Conflict, Invalid
from loom.virt.driver import InstanceNotFound

PROTOCOLS = ("vnc", "serial")


async def endpoint(compute: Any, uuid: str, protocol: str) -> dict[str, Any]:
    """The guest's ``protocol`` console as ConsoleEndpoint's fields. A guest
    that is not (yet) on this host is not ready, as Nova says (409)."""
    if protocol not in PROTOCOLS:
        raise Invalid(f"Invalid console type {protocol}")
    driver = compute.driver
    try:
        found = await (driver.get_vnc_console(uuid) if protocol == "vnc" else driver.get_serial_console(uuid))
    except InstanceNotFound:
        raise Conflict(f"Instance {uuid} is not ready") from None
    return dataclasses.asdict(found)
