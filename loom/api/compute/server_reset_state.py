"""``os-resetState`` (admin): set a server's vm_state to active or error
and clear its task state, whatever it was doing, as Nova does. Recorded
as a ``resetState`` action. Work still under way on the host then finds
the server no longer in its task state and leaves it alone."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.compute.action_base import Handler, body_object
from loom.api.compute.base import enforce, field_error
from loom.api.http import Call, empty
from loom.objects import instances
from loom.policy.enforcer import ADMIN, Rule

RESET_RULE = "os_compute_api:os-admin-actions:reset_state"
STATES = ("active", "error")


async def _reset_state(call: Call, value: Any) -> Response:
    body = body_object("os-resetState", value, ("state",), required=("state",))
    state = body["state"]
    if state not in STATES:
        raise field_error("state", state, f"{state!r} is not one of {list(STATES)}")
    async with call.deps.db.session.begin() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
        enforce(call, RESET_RULE, {"project_id": row.project_id})
        await instances.start_action(session, call.ctx, row.uuid, "resetState")
        await instances.set_fields(session, row.uuid, {"vm_state": state, "task_state": None})
        await instances.finish_action(session, call.ctx, row.uuid)
    return empty(202)


ACTIONS: dict[str, Handler] = {"os-resetState": _reset_state}

RULES = [Rule(RESET_RULE, ADMIN, "Reset the state of a given server.")]
