"""What the live migration and evacuate actions share: Nova's body types,
and beginning a move, in which the server enters its task state, the
action is recorded and the migration record is written in one
transaction, so that a move is either wholly recorded or refused."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from loom.api.compute.action_base import Transition, lock_for_action
from loom.api.compute.base import field_error
from loom.api.http import Call
from loom.db import services
from loom.db.models import Instance
from loom.errors import BadState
from loom.objects import instances, migrations

COMPUTE_BINARY = "loom-compute"
# Nova's parameter_types.boolean.
BOOLEANS = [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t",
            False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f"]
_TRUE = {"true", "1", "on", "yes", "y", "t"}
_HOSTNAME = re.compile(r"^[a-zA-Z0-9-._]*$")

Check = Callable[[AsyncSession, Instance], Awaitable[None]]


def boolean(name: str, value: Any) -> bool:
    """A body boolean as Nova's schema takes it (true, "yes", "0"...)."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, str) or value not in BOOLEANS:
        raise field_error(name, value, f"{value!r} is not one of {BOOLEANS!r}")
    return value.lower() in _TRUE


def hostname(name: str, value: Any, nullable: bool = False) -> str | None:
    """A host name as Nova's schema takes it."""
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        kinds = "'string', 'null'" if nullable else "'string'"
        raise field_error(name, value, f"{value!r} is not of type {kinds}")
    if not 1 <= len(value) <= 255:
        why = "is too short" if not value else "is too long"
        raise field_error(name, value, f"{value!r} {why}")
    if not _HOSTNAME.match(value):
        raise field_error(name, value, f"{value!r} does not match '{_HOSTNAME.pattern}'")
    return value


async def compute_service(call: Call, host: str) -> Any:
    """The compute service of ``host``, None if there is none."""
    async with call.deps.db.session() as session:
        return await services.find(session, host=host, binary=COMPUTE_BINARY)


def is_up(call: Call, service: Any) -> bool:
    return services.is_up(service, call.deps.settings.service.down_time)


def migration_values(call: Call, row: Instance, migration_type: str, status: str,
                     dest: str | None) -> dict[str, Any]:
    flavor_id = str(row.flavor.get("flavorid")) if row.flavor.get("flavorid") is not None else None
    return {"instance_uuid": row.uuid, "migration_type": migration_type, "status": status,
            "source_compute": row.host, "source_node": row.node, "dest_compute": dest,
            "old_flavor_id": flavor_id, "new_flavor_id": flavor_id, "user_id": call.ctx.user_id,
            "project_id": call.ctx.project_id}


async def begin_move(call: Call, t: Transition, refusal: str, migration: Callable[[Instance], dict[str, Any]],
                     check: Check | None = None) -> tuple[Instance, dict[str, Any]]:
    """Check policy, lock and state (refusing in the words of ``refusal``,
    Nova's name of the action), run ``check``, move the server into
    ``t.task_state``, record the action and create the migration
    (``migration(row)`` gives its fields), in one transaction. The row as
    it was read, and the migration as ``migrations.to_dict`` gives it."""
    async with call.deps.db.session.begin() as session:
        row = await lock_for_action(session, call, dataclasses.replace(t, action=refusal))
        if check is not None:
            await check(session, row)
        if not await instances.set_fields(session, row.uuid, {"task_state": t.task_state},
                                          expected_task_state=list(t.task_states), expected_vm_state=row.vm_state):
            raise BadState(f"Cannot '{refusal}' instance {row.uuid}: it changed state meanwhile")
        await instances.start_action(session, call.ctx, row.uuid, t.action)
        created = await migrations.create(session, **migration(row))
        return row, migrations.to_dict(created)
