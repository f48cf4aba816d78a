"""``POST /servers/{id}/action``: the server actions. The body names one
action; power and pause/suspend actions move the server into their task
state with one conditional update (a concurrent action loses with a 409)
and cast to its host; lock and unlock only change the record."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.compute import (
    server_consoles,
    server_deferred_delete,
    server_evacuate,
    server_guest,
    server_images,
    server_live_migrate,
    server_rebuild,
    server_rescue,
    server_reset_state,
    server_resize,
    server_shelve,
)
from loom.api.compute.action_base import Handler, Transition, begin, target
from loom.api.compute.base import enforce
from loom.api.http import Call, Endpoint, empty
from loom.compute.rpcapi import ComputeAPI
from loom.errors import Invalid
from loom.objects import instances
from loom.policy.enforcer import ADMIN, ADMIN_OR_PROJECT_MEMBER, Rule
from loom.timeutils import utcnow

LOCK_REASON_MAX = 255
# Task states a hard reboot may take over from: a soft reboot that hangs is
# what a hard reboot is for. (Nova also takes over from pausing and the like;
# that lets two operations finish in either order, so Loom does not.)
_REBOOT_TASKS = (
    None,
    "rebooting",
    "reboot_pending",
    "reboot_started",
    "rebooting_hard",
    "reboot_pending_hard",
    "reboot_started_hard",
)


STOP = Transition("stop", "os_compute_api:servers:stop", ("active", "error"), "powering-off")
START = Transition("start", "os_compute_api:servers:start", ("stopped",), "powering-on")
SOFT_REBOOT = Transition("reboot", "os_compute_api:servers:reboot", ("active",), "rebooting")
HARD_REBOOT = Transition(
    "reboot",
    "os_compute_api:servers:reboot",
    ("active", "stopped", "paused", "suspended", "error"),
    "rebooting_hard",
    _REBOOT_TASKS,
)
PAUSE = Transition("pause", "os_compute_api:os-pause-server:pause", ("active",), "pausing")
UNPAUSE = Transition("unpause", "os_compute_api:os-pause-server:unpause", ("paused",), "unpausing")
SUSPEND = Transition("suspend", "os_compute_api:os-suspend-server:suspend", ("active",), "suspending")
RESUME = Transition("resume", "os_compute_api:os-suspend-server:resume", ("suspended",), "resuming")


async def _stop(call: Call, value: Any) -> Response:
    row = await begin(call, STOP)
    await ComputeAPI(call.deps.bus).stop_instance(call.ctx, row.host, row.uuid)
    return empty(202)


async def _start(call: Call, value: Any) -> Response:
    row = await begin(call, START)
    await ComputeAPI(call.deps.bus).start_instance(call.ctx, row.host, row.uuid)
    return empty(202)


async def _reboot(call: Call, value: Any) -> Response:
    if not isinstance(value, dict):
        raise Invalid(f"Invalid input for field/attribute reboot. Value: {value}. {value!r} is not of type 'object'")
    extra = set(value) - {"type"}
    if extra:
        raise Invalid(
            f"Invalid input for field/attribute reboot. Value: {value}. Additional properties are not "
            f"allowed ({', '.join(map(repr, sorted(extra)))} was unexpected)"
        )
    kind = value.get("type")
    if "type" not in value:
        raise Invalid(f"Invalid input for field/attribute reboot. Value: {value}. 'type' is a required property")
    if kind not in ("HARD", "Hard", "hard", "SOFT", "Soft", "soft"):
        raise Invalid(
            f"Invalid input for field/attribute type. Value: {kind}. {kind!r} is not one of "
            "['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"
        )
    hard = kind.upper() == "HARD"
    row = await begin(call, HARD_REBOOT if hard else SOFT_REBOOT)
    await ComputeAPI(call.deps.bus).reboot_instance(call.ctx, row.host, row.uuid, "HARD" if hard else "SOFT")
    return empty(202)


def _simple(t: Transition, cast: str) -> Handler:
    async def handle(call: Call, value: Any) -> Response:
        row = await begin(call, t)
        await getattr(ComputeAPI(call.deps.bus), cast)(call.ctx, row.host, row.uuid)
        return empty(202)

    return handle


def _lock_reason(call: Call, value: Any) -> str | None:
    if not call.version.at_least("2.73") or value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(
            f"Invalid input for field/attribute lock. Value: {value}. {value!r} is not of type 'object', 'null'"
        )
    extra = set(value) - {"locked_reason"}
    if extra:
        raise Invalid(
            f"Invalid input for field/attribute lock. Value: {value}. Additional properties are not "
            f"allowed ({', '.join(map(repr, sorted(extra)))} was unexpected)"
        )
    reason = value.get("locked_reason")
    if reason is not None and (not isinstance(reason, str) or not 0 < len(reason) <= LOCK_REASON_MAX):
        raise Invalid(
            f"Invalid input for field/attribute locked_reason. Value: {reason}. It must be a string "
            f"of 1 to {LOCK_REASON_MAX} characters"
        )
    return reason


async def _lock(call: Call, value: Any) -> Response:
    reason = _lock_reason(call, value)
    async with call.deps.db.session.begin() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
        enforce(call, "os_compute_api:os-lock-server:lock", target(row))
        is_owner = row.project_id == call.ctx.project_id
        if row.locked and is_owner:
            return empty(202)  # an owner's lock is never replaced, as in Nova
        started = utcnow()
        await instances.start_action(session, call.ctx, row.uuid, "lock")
        values: dict[str, Any] = {"locked": True, "locked_by": "owner" if is_owner else "admin"}
        if reason:
            values["locked_reason"] = reason
        await instances.set_fields(session, row.uuid, values)
        await instances.event(
            session, call.ctx.request_id, row.uuid, "api_lock", host=None, start=started, result="Success"
        )
    return empty(202)


async def _unlock(call: Call, value: Any) -> Response:
    async with call.deps.db.session.begin() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
        target = {"project_id": row.project_id}
        enforce(call, "os_compute_api:os-lock-server:unlock", target)
        expected = "owner" if row.project_id == call.ctx.project_id else "admin"
        if row.locked_by and row.locked_by != expected:
            enforce(call, "os_compute_api:os-lock-server:unlock:unlock_override", target)
        started = utcnow()
        await instances.start_action(session, call.ctx, row.uuid, "unlock")
        await instances.set_fields(session, row.uuid, {"locked": False, "locked_by": None, "locked_reason": None})
        await instances.event(
            session, call.ctx.request_id, row.uuid, "api_unlock", host=None, start=started, result="Success"
        )
    return empty(202)


ACTIONS: dict[str, Handler] = {
    "os-stop": _stop,
    "os-start": _start,
    "reboot": _reboot,
    "pause": _simple(PAUSE, "pause_instance"),
    "unpause": _simple(UNPAUSE, "unpause_instance"),
    "suspend": _simple(SUSPEND, "suspend_instance"),
    "resume": _simple(RESUME, "resume_instance"),
    "lock": _lock,
    "unlock": _unlock,
}


# Modules each adding actions (``ACTIONS``) and their policy rules (``RULES``).
ACTION_MODULES: tuple[Any, ...] = (server_deferred_delete, server_rebuild, server_rescue, server_guest,
                                    server_reset_state, server_images, server_shelve, server_resize,
                                    server_evacuate, server_live_migrate, server_consoles)
_ALL_ACTIONS: dict[str, Handler] = {**ACTIONS}
for _module in ACTION_MODULES:
    _ALL_ACTIONS.update(_module.ACTIONS)


async def action(call: Call) -> Response:
    body = await call.json_object()
    if len(body) != 1:
        raise Invalid("Malformed request body")
    ((name, value),) = body.items()
    handler = _ALL_ACTIONS.get(name)
    if handler is None:
        raise Invalid(f"There is no such action: {name}")
    return await handler(call, value)


ENDPOINTS = [Endpoint("POST", "/servers/{server_id}/action", action)]

RULES = [*(rule for module in ACTION_MODULES for rule in module.RULES),
    Rule("os_compute_api:servers:stop", ADMIN_OR_PROJECT_MEMBER, "Stop a server."),
    Rule("os_compute_api:servers:start", ADMIN_OR_PROJECT_MEMBER, "Start a server."),
    Rule("os_compute_api:servers:reboot", ADMIN_OR_PROJECT_MEMBER, "Reboot a server."),
    Rule("os_compute_api:os-pause-server:pause", ADMIN_OR_PROJECT_MEMBER, "Pause a server."),
    Rule("os_compute_api:os-pause-server:unpause", ADMIN_OR_PROJECT_MEMBER, "Unpause a paused server."),
    Rule("os_compute_api:os-suspend-server:suspend", ADMIN_OR_PROJECT_MEMBER, "Suspend a server."),
    Rule("os_compute_api:os-suspend-server:resume", ADMIN_OR_PROJECT_MEMBER, "Resume a suspended server."),
    Rule("os_compute_api:os-lock-server:lock", ADMIN_OR_PROJECT_MEMBER, "Lock a server."),
    Rule("os_compute_api:os-lock-server:unlock", ADMIN_OR_PROJECT_MEMBER, "Unlock a server."),
    Rule(
        "os_compute_api:os-lock-server:unlock:unlock_override",
        ADMIN,
        "Unlock a server locked by someone else (an admin's lock, for a project member).",
    ),
]
