"""``evacuate``: rebuild a server whose host's compute service is down on
another host. The body per microversion: ``host`` (optional: the
scheduler chooses), ``adminPass``, ``onSharedStorage`` (required before
2.14), ``force`` (2.29 to 2.67: skip the scheduler's filters for the given
host; before 2.29 a given host is always forced, as in Nova). Answered
with 200 and, before 2.14, the admin password."""

from __future__ import annotations

import secrets
import string
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from loom.api.compute import move_base
from loom.api.compute.action_base import Handler, Transition, authorized, body_object
from loom.api.compute.base import field_error
from loom.api.http import JSON, Call, empty
from loom.conductor.rpcapi import ConductorAPI
from loom.db import services
from loom.db.models import Instance
from loom.errors import Invalid, NotFound
from loom.policy.enforcer import ADMIN, Rule

RULE = "os_compute_api:os-evacuate"
EVACUATE = Transition("evacuate", RULE, ("active", "stopped", "error"), "rebuilding")
PASSWORD_LENGTH = 12  # Nova's generated admin password length


def _body(call: Call, value: Any) -> tuple[str | None, str | None, bool | None]:
    """host, admin password (None for a disk on shared storage, before
    2.14), force (None before 2.29)."""
    v = call.version
    keys = ["host", "adminPass"]
    if not v.at_least("2.14"):
        keys.append("onSharedStorage")
    if v.at_least("2.29") and not v.at_least("2.68"):
        keys.append("force")
    body = body_object("evacuate", value, keys, required=[] if v.at_least("2.14") else ["onSharedStorage"])
    host = move_base.hostname("host", body["host"]) if "host" in body else None
    password = body.get("adminPass")
    if password is not None and not isinstance(password, str):
        raise field_error("adminPass", password, f"{password!r} is not of type 'string'")
    force = None
    if v.at_least("2.29"):
        force = move_base.boolean("force", body.get("force", False))
        if force and not host:
            raise Invalid("Can't force to a non-provided destination")
    if not v.at_least("2.14") and move_base.boolean("onSharedStorage", body["onSharedStorage"]):
        # Hosts here have no shared storage and rebuild from the image
        # anyway; the flag only decides about the password, as in Nova.
        if password is not None:
            raise Invalid("admin password can't be changed on existing disk")
        return host, None, force
    return host, password if password is not None else _generate_password(), force


def _generate_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(PASSWORD_LENGTH))


async def evacuate(call: Call, value: Any) -> Response:
    host, password, force = _body(call, value)
    async with call.deps.db.session() as session:
        row = await authorized(session, call, RULE)
    if host is not None and await move_base.compute_service(call, host) is None:
        raise NotFound(f"Compute host {host} not found.")
    if row.host == host:
        raise Invalid("The target host can't be the same one.")

    async def source_is_down(session: AsyncSession, locked: Instance) -> None:
        service = await services.find(session, host=locked.host, binary=move_base.COMPUTE_BINARY)
        if service is not None and move_base.is_up(call, service):
            raise Invalid(f"Compute service of {locked.host} is still in use.")

    row, migration = await move_base.begin_move(
        call, EVACUATE, "evacuate", lambda r: move_base.migration_values(call, r, "evacuation", "accepted", host),
        check=source_is_down)
    await ConductorAPI(call.deps.bus).evacuate_instance(call.ctx, row.uuid, migration, host,
                                                         bool(host) and (force is None or force), row.vm_state)
    if call.version.at_least("2.14"):
        return empty(200)
    return JSON({"adminPass": password})


ACTIONS: dict[str, Handler] = {"evacuate": evacuate}
RULES = [Rule(RULE, ADMIN, "Evacuate a server from a failed host to a new host.")]
