"""The ``rescue`` and ``unrescue`` server actions: a rescued server boots
a rescue system (its own image, or ``rescue_image_ref``) with its disks
attached, so that a user can repair them; unrescue boots its own disk
again. Rescue answers 200 with the rescue system's admin password."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from loom.api.compute.action_base import Handler, Transition, begin, body_object
from loom.api.compute.base import field_error
from loom.api.compute.server_rebuild import generate_password
from loom.api.http import JSON, Call, empty
from loom.compute.rpcapi import ComputeAPI
from loom.errors import Invalid, NotFound
from loom.image import images as image_records
from loom.policy.enforcer import ADMIN_OR_PROJECT_MEMBER, Rule

RESCUE = Transition("rescue", "os_compute_api:os-rescue", ("active", "stopped", "error"), "rescuing")
UNRESCUE = Transition("unrescue", "os_compute_api:os-unrescue", ("rescued",), "unrescuing")


async def _rescue(call: Call, value: Any) -> Response:
    body = body_object("rescue", value, ("adminPass", "rescue_image_ref"), nullable=True)
    password = body.get("adminPass")
    if password is not None and not isinstance(password, str):
        raise field_error("adminPass", "...", "adminPass is not of type 'string'")  # never echo a password
    image_ref = body.get("rescue_image_ref")
    if image_ref is not None:
        await _check_rescue_image(call, image_ref)
    row = await begin(call, RESCUE)
    await ComputeAPI(call.deps.bus).rescue_instance(call.ctx, row.host, row.uuid)
    return JSON({"adminPass": password if password is not None else generate_password()})


async def _check_rescue_image(call: Call, image_ref: Any) -> None:
    if not isinstance(image_ref, str):
        raise field_error("rescue_image_ref", image_ref, f"{image_ref!r} is not of type 'string'")
    try:
        uuid.UUID(image_ref)
    except ValueError:
        raise field_error("rescue_image_ref", image_ref, f"{image_ref!r} is not a 'uuid'") from None
    async with call.deps.db.session() as session:
        try:
            await image_records.get(session, call.ctx, image_ref)
        except NotFound:
            raise Invalid(f"Requested rescue image '{image_ref}' is not supported") from None


async def _unrescue(call: Call, value: Any) -> Response:
    row = await begin(call, UNRESCUE)
    await ComputeAPI(call.deps.bus).unrescue_instance(call.ctx, row.host, row.uuid)
    return empty(202)


ACTIONS: dict[str, Handler] = {"rescue": _rescue, "unrescue": _unrescue}

RULES = [
    Rule(RESCUE.rule, ADMIN_OR_PROJECT_MEMBER, "Rescue a server."),
    Rule(UNRESCUE.rule, ADMIN_OR_PROJECT_MEMBER, "Unrescue a server."),
]
