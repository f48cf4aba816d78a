"""What every server action shares: Nova's state checks with its refusal
messages, the one conditional move of the server into an action's task
state (a concurrent action loses with a 409), and validation of an
action's body. Each action lives in its own ``server_*`` module, which
exports ``ACTIONS`` (body key → handler) and ``RULES``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from loom.api.compute.base import enforce, field_error
from loom.api.http import Call
from loom.db.models import Instance
from loom.errors import BadState, Conflict
from loom.objects import instances

Handler = Callable[[Call, Any], Awaitable[Response]]


@dataclass(frozen=True)
class Transition:
    """An action run on the server's host: Nova's action name (also the
    word of its refusals), policy rule, the states it starts from, and the
    task state it moves the server into."""

    action: str
    rule: str
    vm_states: tuple[str, ...]
    task_state: str
    task_states: tuple[str | None, ...] = (None,)
    # Whether the server must have a host (false for shelved-offloaded ones).
    needs_host: bool = True
    # Whether a locked server refuses it (Nova's createImage and createBackup ignore locks).
    locks: bool = True


def target(row: Instance) -> dict[str, Any]:
    return {"project_id": row.project_id, "user_id": row.user_id}


def check_state(row: Instance, t: Transition) -> None:
    """Nova's check_instance_state, with its message."""
    state: str | None
    if row.vm_state not in t.vm_states:
        attr, state = "vm_state", row.vm_state
    elif row.task_state not in t.task_states:
        attr, state = "task_state", row.task_state
    else:
        return
    raise BadState(f"Cannot '{t.action}' instance {row.uuid} while it is in {attr} {state}")


async def authorized(session: AsyncSession, call: Call, rule: str) -> Instance:
    """The request's server, once ``rule`` allows acting on it."""
    row = await instances.get(session, call.ctx, call.params["server_id"])
    enforce(call, rule, target(row))
    return row


def check_ready(call: Call, row: Instance, t: Transition) -> None:
    """Nova's checks of ``row`` for ``t``: its lock, its states, its host."""
    if t.locks:
        instances.check_unlocked(call.ctx, row)
    check_state(row, t)
    if t.needs_host and not row.host:
        raise Conflict(f"Instance {row.uuid} is not ready")


async def lock_for_action(session: AsyncSession, call: Call, t: Transition) -> Instance:
    """The request's server, allowed ``t.rule`` and ready for ``t``, under
    its row lock in ``session``."""
    row = await authorized(session, call, t.rule)
    # Take the row's lock before reading its state: concurrent actions queue here.
    row = await instances.get_for_update(session, call.ctx, row.uuid)
    check_ready(call, row, t)
    return row


async def begin(call: Call, t: Transition, values: dict[str, Any] | None = None,
                check: Callable[[Instance], Awaitable[None] | None] | None = None,
                after: Callable[[AsyncSession, Instance], Awaitable[None]] | None = None) -> Instance:
    """Check policy, lock and state, move the server into ``t.task_state``
    (with ``values`` written alongside) and record the action, all in one
    transaction; the row as it was read. ``check`` may refuse the action
    (raise) after the state checks, ``after`` once the server has moved
    (a recount of quota, say); either raising undoes everything."""
    async with call.deps.db.session.begin() as session:
        row = await lock_for_action(session, call, t)
        if check is not None:
            result = check(row)
            if result is not None:
                await result
        if not await instances.set_fields(
            session,
            row.uuid,
            {"task_state": t.task_state, **(values or {})},
            expected_task_state=list(t.task_states),
            expected_vm_state=row.vm_state,
        ):
            raise BadState(f"Cannot '{t.action}' instance {row.uuid}: it changed state meanwhile")
        if after is not None:
            await after(session, row)
        await instances.start_action(session, call.ctx, row.uuid, t.action)
        return row


def body_object(name: str, value: Any, allowed: Iterable[str], required: Iterable[str] = (),
                nullable: bool = False) -> dict[str, Any]:
    """An action's body as Nova's JSON schema checks it: an object with only
    the ``allowed`` keys and every ``required`` one (None passes when
    ``nullable``, as ``{}``)."""
    if value is None and nullable:
        return {}
    if not isinstance(value, dict):
        kinds = "'object', 'null'" if nullable else "'object'"
        raise field_error(name, value, f"{value!r} is not of type {kinds}")
    extra = set(value) - set(allowed)
    if extra:
        raise field_error(name, value, f"Additional properties are not allowed "
                                       f"({', '.join(map(repr, sorted(extra)))} was unexpected)")
    for key in required:
        if key not in value:
            raise field_error(name, value, f"'{key}' is a required property")
    return value
