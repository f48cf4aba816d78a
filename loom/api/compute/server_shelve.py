"""``shelve``, ``shelveOffload`` and ``unshelve``. Shelving snapshots the
server into a ``<name>-shelved`` image the API creates here, and powers it
off (loom/compute/shelve.py); offloading frees its host; unshelving goes
through the conductor (loom/conductor/unshelve.py), which schedules an
offloaded server anew. Deleting a shelved server deletes its shelve image
(``delete_shelved_image``)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response

from loom.api.compute.action_base import Handler, Transition, begin
from loom.api.compute.base import field_error
from loom.api.compute.server_images import create_snapshot_image, delete_image, precheck
from loom.api.http import Call, empty
from loom.compute.rpcapi import ComputeAPI
from loom.conductor.rpcapi import ConductorAPI
from loom.db.models import Instance
from loom.errors import BadState, Invalid, NotFound
from loom.objects import aggregates
from loom.policy.enforcer import ADMIN, ADMIN_OR_PROJECT_MEMBER, Rule

LOG = logging.getLogger(__name__)
SHELVE = Transition("shelve", "os_compute_api:os-shelve:shelve", ("active", "stopped", "paused", "suspended"),
                    "shelving")
SHELVE_OFFLOAD = Transition("shelveOffload", "os_compute_api:os-shelve:shelve_offload", ("shelved",),
                            "shelving_offloading")
UNSHELVE = Transition("unshelve", "os_compute_api:os-shelve:unshelve", ("shelved", "shelved_offloaded"),
                      "unshelving", needs_host=False)


async def _shelve(call: Call, value: Any) -> Response:
    row = await precheck(call, SHELVE)
    image = await create_snapshot_image(call, row, f"{row.display_name}-shelved", "snapshot")
    try:
        row = await begin(call, SHELVE)
    except BaseException:
        await delete_image(call, image["id"])
        raise
    assert row.host is not None
    await ComputeAPI(call.deps.bus).shelve_instance(call.ctx, row.host, row.uuid, image["id"])
    return empty(202)


async def _shelve_offload(call: Call, value: Any) -> Response:
    row = await begin(call, SHELVE_OFFLOAD)
    assert row.host is not None
    await ComputeAPI(call.deps.bus).shelve_offload_instance(call.ctx, row.host, row.uuid)
    return empty(202)


def _zone(call: Call, value: Any) -> str | None:
    """From 2.77 the body may name a zone: ``{"availability_zone": "az"}``
    or null (``{}`` is refused, as Nova's schema does)."""
    if not call.version.at_least("2.77") or value is None:
        return None
    if not isinstance(value, dict):
        raise field_error("unshelve", value, f"{value!r} is not of type 'object', 'null'")
    extra = set(value) - {"availability_zone"}
    if extra:
        raise field_error("unshelve", value, f"Additional properties are not allowed "
                                             f"({', '.join(map(repr, sorted(extra)))} was unexpected)")
    if "availability_zone" not in value:
        raise field_error("unshelve", value, "'availability_zone' is a required property")
    zone = value["availability_zone"]
    if not isinstance(zone, str):
        raise field_error("availability_zone", zone, f"{zone!r} is not of type 'string'")
    if not zone or len(zone) > 255 or zone != zone.strip():
        raise field_error("availability_zone", zone, "An invalid 'name' value was provided. The name must be: "
                                                     "printable characters. Can not start or end with whitespace.")
    return zone


async def _unshelve(call: Call, value: Any) -> Response:
    zone = _zone(call, value)
    if zone is not None:
        async with call.deps.db.session() as session:
            zones = await aggregates.available_zones(session)

        def check(row: Instance) -> None:
            if row.vm_state != "shelved_offloaded":
                # A shelved server still has its host, and so its zone.
                raise BadState(f"Specifying an availability zone when unshelving server {row.uuid} with status "
                               f"{row.vm_state} is not supported. The server status must be SHELVED_OFFLOADED.")
            if zone not in zones:
                raise Invalid("The requested availability zone is not available")

        row = await begin(call, UNSHELVE, check=check)
    else:
        row = await begin(call, UNSHELVE)
    await ConductorAPI(call.deps.bus).unshelve_instance(call.ctx, row.uuid, zone)
    return empty(202)


def shelved_image(row: Instance) -> str | None:
    """The shelve image a server being deleted takes with it, if any."""
    if row.vm_state not in ("shelved", "shelved_offloaded"):
        return None
    return (row.system_metadata or {}).get("shelved_image_id") or None


async def delete_shelved_image(call: Call, uuid: str, image_id: str) -> None:
    """Delete a deleted server's shelve image; a failure is only logged (the
    server's delete goes on, as in Nova)."""
    try:
        await delete_image(call, image_id)
    except NotFound:
        pass
    except Exception:
        LOG.exception("could not delete shelve image %s of server %s", image_id, uuid)


ACTIONS: dict[str, Handler] = {"shelve": _shelve, "shelveOffload": _shelve_offload, "unshelve": _unshelve}

RULES = [
    Rule("os_compute_api:os-shelve:shelve", ADMIN_OR_PROJECT_MEMBER, "Shelve a server."),
    Rule("os_compute_api:os-shelve:shelve_offload", ADMIN, "Shelf-offload (remove) a server."),
    Rule("os_compute_api:os-shelve:unshelve", ADMIN_OR_PROJECT_MEMBER, "Unshelve (restore) a shelved server."),
]
