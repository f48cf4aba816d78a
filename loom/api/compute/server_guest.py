"""Server actions that ask the guest for something: ``os-getConsoleOutput``
(its console log, a call to its host), ``changePassword`` (through its
agent; a call, so the agent's refusal reaches the user) and
``trigger_crash_dump`` (2.17; an NMI, with no task state, as in Nova)."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from loom.api.compute.action_base import Handler, Transition, begin, body_object, lock_for_action
from loom.api.compute.base import enforce, field_error
from loom.api.http import JSON, Call, empty
from loom.compute.rpcapi import ComputeAPI
from loom.errors import BadState, Conflict, LoomError, NotFound
from loom.objects import instances
from loom.policy.enforcer import ADMIN_OR_PROJECT_MEMBER, Rule
from loom.virt.driver import NotSupported

CONSOLE_RULE = "os_compute_api:os-console-output"
PASSWORD = Transition("changePassword", "os_compute_api:os-admin-password", ("active",), "updating_password")
# No task state: the dump changes nothing Loom tracks.
CRASH_DUMP = Transition("trigger_crash_dump", "os_compute_api:servers:trigger_crash_dump",
                        ("active", "paused", "rescued", "resized", "error"), "")
# Nova strips these from console output (they would break XML, once).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")
_INTEGER = re.compile(r"^-?[0-9]+$")


class NotImplementedByHost(LoomError):
    """The server's hypervisor does not support this."""

    status = 501


def _length(value: Any) -> int | None:
    """Nova's schema: an integer, a numeric string or null, at least -1;
    -1 and null mean the whole log."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise field_error("length", value, f"{value!r} is not of type 'integer', 'string', 'null'")
    if isinstance(value, str) and not _INTEGER.match(value):
        raise field_error("length", value, f"{value!r} does not match '^-?[0-9]+$'")
    length = int(value)
    if length < -1:
        raise field_error("length", value, f"{length} is less than the minimum of -1")
    return None if length == -1 else length


async def _console_output(call: Call, value: Any) -> Response:
    body = body_object("os-getConsoleOutput", value, ("length",))
    length = _length(body.get("length"))
    async with call.deps.db.session() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
    enforce(call, CONSOLE_RULE, {"project_id": row.project_id})
    if not row.host:
        raise Conflict(f"Instance {row.uuid} is not ready")
    if row.task_state in ("deleting", "migrating"):
        raise BadState(f"Cannot 'get_console_output' instance {row.uuid} while it is in task_state "
                       f"{row.task_state}")
    try:
        output = await ComputeAPI(call.deps.bus).get_console_output(call.ctx, row.host, row.uuid, length)
    except NotSupported:
        raise NotImplementedByHost("The requested functionality is not supported.") from None
    return JSON({"output": _CONTROL.sub("", output)})


async def _change_password(call: Call, value: Any) -> Response:
    body = body_object("changePassword", value, ("adminPass",), required=("adminPass",))
    if not isinstance(body["adminPass"], str):
        raise field_error("adminPass", "...", "adminPass is not of type 'string'")  # never echo a password
    row = await begin(call, PASSWORD)
    try:
        await ComputeAPI(call.deps.bus).set_admin_password(call.ctx, row.host, row.uuid, body["adminPass"])
    except NotSupported:
        raise NotImplementedByHost("Unable to set password on instance") from None
    return empty(202)


async def _trigger_crash_dump(call: Call, value: Any) -> Response:
    if not call.version.at_least("2.17"):
        raise NotFound("The resource could not be found.")  # Nova's answer for an action not in the version
    if value is not None:
        raise field_error("trigger_crash_dump", value, f"{value!r} is not of type 'null'")
    t = CRASH_DUMP
    async with call.deps.db.session.begin() as session:
        row = await lock_for_action(session, call, t)
        await instances.start_action(session, call.ctx, row.uuid, t.action)
    await ComputeAPI(call.deps.bus).trigger_crash_dump(call.ctx, row.host, row.uuid)
    return empty(202)


ACTIONS: dict[str, Handler] = {
    "os-getConsoleOutput": _console_output,
    "changePassword": _change_password,
    "trigger_crash_dump": _trigger_crash_dump,
}

RULES = [
    Rule(CONSOLE_RULE, ADMIN_OR_PROJECT_MEMBER, "Show the console output of a server."),
    Rule(PASSWORD.rule, ADMIN_OR_PROJECT_MEMBER, "Change the administrative password of a server."),
    Rule(CRASH_DUMP.rule, ADMIN_OR_PROJECT_MEMBER, "Trigger a crash dump in a server (2.17)."),
]
