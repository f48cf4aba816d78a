"""Instance records: creation within quota, lookups scoped to the caller,
state updates, and the instance actions users see as server events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loom.config import QuotaSettings
from loom.context import RequestContext
from loom.db import fast
from loom.db.models import Instance, InstanceAction, InstanceActionEvent
from loom.db.models.base import new_uuid
from loom.errors import BadState, Conflict, NotFound
from loom.objects import quotas
from loom.timeutils import utcnow

UPDATABLE = {"vm_state", "task_state", "power_state", "host", "node", "availability_zone", "launched_at",
             "terminated_at", "fault", "progress", "display_name", "display_description", "hostname", "deleted",
             "deleted_at", "metadata_", "tags", "locked", "locked_by", "locked_reason", "flavor", "image_ref",
             "key_name", "key_data", "user_data", "system_metadata", "old_flavor", "new_flavor"}


def not_found(uuid: str) -> NotFound:
    return NotFound(f"Instance {uuid} could not be found.", instance=uuid)


def _get_query(deleted: bool, admin: bool) -> Any:
    query = select(Instance).where(Instance.uuid == bindparam("uuid"))
    if not deleted:
        query = query.where(Instance.deleted.is_(False))
    if not admin:
        query = query.where(Instance.project_id == bindparam("project_id"))
    return query


# Built once: every GET of a server runs one (clients poll them).
_GET = {(deleted, admin): _get_query(deleted, admin) for deleted in (False, True) for admin in (False, True)}
_ACTION_ID = fast.Statement(select(InstanceAction.id).where(InstanceAction.instance_uuid == bindparam("instance"),
                                                          InstanceAction.request_id == bindparam("request")))
_ACTION = fast.Statement(insert(InstanceAction))
_INSERT = fast.Statement(insert(Instance))
# Attribute name → column name where they differ (metadata_ → metadata).
_COLUMN_KEYS = {attr.key: attr.columns[0].key for attr in Instance.__mapper__.column_attrs}
_EVENT = fast.Statement(insert(InstanceActionEvent))
_ACTION_TOUCHED = fast.Statement(update(InstanceAction).where(InstanceAction.id == bindparam("match_id"))
                                 .values(updated_at=bindparam("now")))
_ACTION_FINISHED = fast.Statement(update(InstanceAction).where(InstanceAction.id == bindparam("match_id"))
                                  .values(updated_at=bindparam("now"), finish_time=bindparam("now")))
# set_fields' statements, one per set of columns and expected states.
_SETS: dict[tuple[Any, ...], fast.Statement] = {}


async def get(session: AsyncSession, ctx: RequestContext, uuid: str, *, deleted: bool = False) -> Instance:
    """The instance if the caller may see it; another project's is a 404
    exactly like a missing one."""
    params: dict[str, Any] = {"uuid": uuid}
    if not ctx.is_admin:
        params["project_id"] = ctx.project_id
    row = await session.scalar(_GET[(deleted, ctx.is_admin)], params)
    if row is None:
        raise not_found(uuid)
    return row


async def get_for_update(session: AsyncSession, ctx: RequestContext, uuid: str) -> Instance:
    """The instance (as ``get``) for a read-modify-write of its own fields,
    such as metadata or tags. Writing first takes the row's lock (SQLite's
    database lock) before the read, so concurrent merges queue rather than
    lose each other's changes."""
    conds = [Instance.uuid == uuid, Instance.deleted.is_(False)]
    if not ctx.is_admin:
        conds.append(Instance.project_id == ctx.project_id)
    # A write that changes nothing (not even updated_at) but takes the lock.
    await session.execute(update(Instance).where(*conds).values(updated_at=Instance.updated_at)
                          .execution_options(synchronize_session=False))
    row = await session.scalar(select(Instance).where(*conds).execution_options(populate_existing=True))
    if row is None:
        raise not_found(uuid)
    return row


# Where a server's metadata and tags may change (Nova's rule).
MUTABLE_STATES = ("active", "paused", "suspended", "stopped")


def instance_name(row: Instance) -> str:
    """The hypervisor's name for an instance, as Nova forms it."""
    return f"instance-{row.id:08x}"


def check_unlocked(ctx: RequestContext, instance: Instance) -> None:
    """A locked server refuses changes except from admins, as in Nova."""
    if instance.locked and not ctx.is_admin:
        raise Conflict(f"Instance {instance.uuid} is locked")


def check_state(instance: Instance, action: str, vm_states: tuple[str, ...], *,
                must_have_launched: bool = False) -> None:
    """Refuse ``action`` unless the instance is in one of ``vm_states`` (and
    has launched once, when asked), with Nova's message."""
    if instance.vm_state not in vm_states:
        attr, state = "vm_state", instance.vm_state
    elif must_have_launched and instance.launched_at is None:
        attr, state = "launched_at", None
    else:
        return
    raise BadState(f"Cannot '{action}' instance {instance.uuid} while it is in {attr} {state}")


def network_info(instance: Instance) -> list[dict[str, Any]]:
    """The instance's cached network info, in Nova's VIF model: each
    ``{"address": mac, "network": {"label", "subnets": [{"ips": [{"address",
    "version", "type", "floating_ips": [...]}]}]}}``. Instances have no cache
    column yet (there is no network service to fill it), so none is known."""
    return []


async def get_any(session: AsyncSession, uuid: str) -> Instance:
    row = await session.scalar(select(Instance).where(Instance.uuid == uuid))
    if row is None:
        raise not_found(uuid)
    return row


async def create_many(session: fast.Session, rows: list[dict[str, Any]], project_id: str,
                      quota: QuotaSettings, min_count: int | None = None) -> list[str]:
    """Insert the instances (``rows`` of column values) within the project's (and user's) quota; with
    ``min_count`` below their number, only as many as there is room for
    (at least min_count), as Nova does. The usage is counted again after
    the insert, in the same transaction: concurrent requests never end
    above a limit; the one that would is refused and rolled back whole.
    Returns the new instances' uuids."""
    user_id = str(rows[0].get("user_id") or "")
    wanted = len(rows)
    ranged = min_count is not None and min_count < wanted
    if ranged:
        flavor = rows[0]["flavor"]
        fits = await quotas.instance_room(session, quota, project_id, user_id, int(flavor["vcpus"]),
                                          int(flavor["memory_mb"]))
        if fits is not None and min_count is not None and min_count <= fits < wanted:
            rows = rows[:fits]
    rows = [{"uuid": new_uuid(), **row} for row in rows]
    await fast.run_many(session, _INSERT, [{_COLUMN_KEYS.get(k, k): v for k, v in row.items()} for row in rows])
    requested = {"instances": len(rows), "cores": sum(int(r["flavor"]["vcpus"]) for r in rows),
                 "ram": sum(int(r["flavor"]["memory_mb"]) for r in rows)}
    shown: dict[str, int | str] = {"instances": f"{min_count}-{wanted}"} if ranged else {}
    await quotas.check_instances(session, quota, project_id, user_id, requested, shown)
    return [row["uuid"] for row in rows]


async def list_(session: AsyncSession, query: Any) -> list[Instance]:
    return list(await session.scalars(query))


async def update_fields(session: AsyncSession, uuid: str, values: dict[str, Any],
                        expected_task_state: list[str | None] | None = None,
                        expected_vm_state: str | None = None) -> Instance | None:
    """Update an instance and read it back; None when it was not updated
    (see ``set_fields``)."""
    if not await set_fields(session, uuid, values, expected_task_state, expected_vm_state):
        return None
    # The session may hold the row from before the update: read it afresh.
    row = await session.scalar(select(Instance).where(Instance.uuid == uuid)
                               .execution_options(populate_existing=True))
    if row is None:
        raise not_found(uuid)
    return row


# What a compute host is told of an instance it builds (see conductor.build),
# labelled with the attribute names.
_FOR_BUILD = fast.Statement(select(*(getattr(Instance, name).label(name) for name in (
    "id", "uuid", "hostname", "display_name", "flavor", "image_ref", "key_data", "user_data", "metadata_",
    "project_id", "user_id", "config_drive"))).where(Instance.uuid == bindparam("match")))


async def update_for_build(session: fast.Session, uuid: str, values: dict[str, Any],
                           expected_task_state: list[str | None]) -> Any:
    """``update_fields`` for the conductor's build: the instance's build
    fields (a named tuple) or None when it was not updated."""
    if not await set_fields(session, uuid, values, expected_task_state):
        return None
    return await fast.first(session, _FOR_BUILD, {"match": uuid})


async def set_fields(session: fast.Session, uuid: str, values: dict[str, Any],
                     expected_task_state: list[str | None] | None = None,
                     expected_vm_state: str | None = None) -> bool:
    """Update an instance; with ``expected_task_state`` only if its task
    state is one of those, with ``expected_vm_state`` only if it is in that
    state. Whether it was updated."""
    unknown = set(values) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {unknown}")
    task_states = None if expected_task_state is None else tuple(t for t in expected_task_state if t is not None)
    key = (tuple(sorted(values)), task_states is not None and len(task_states),
           expected_task_state is not None and None in expected_task_state, expected_vm_state is not None)
    statement = _SETS.get(key)
    if statement is None:
        statement = _SETS[key] = fast.Statement(_set_statement(*key))
    params: dict[str, Any] = {f"v_{name}": value for name, value in values.items()}
    params.update(match_uuid=uuid, v_updated_at=utcnow())
    if task_states:
        params["match_task_states"] = list(task_states)
    if expected_vm_state is not None:
        params["match_vm_state"] = expected_vm_state
    return bool(await fast.run(session, statement, params))


def _set_statement(names: tuple[str, ...], task_states: int | bool, none_ok: bool, vm_state: bool) -> Any:
    table = Instance.__table__
    columns = {name: Instance.__mapper__.attrs[name].columns[0] for name in names}  # type: ignore[attr-defined]
    query = update(table).where(table.c.uuid == bindparam("match_uuid"))
    if task_states is not False:
        cond = table.c.task_state.in_(bindparam("match_task_states", expanding=True)) if task_states else None
        if none_ok:
            cond = table.c.task_state.is_(None) if cond is None else (cond | table.c.task_state.is_(None))
        query = query.where(cond)
    if vm_state:
        query = query.where(table.c.vm_state == bindparam("match_vm_state"))
    return query.values({**{column: bindparam(f"v_{name}", type_=column.type) for name, column in columns.items()},
                         table.c.updated_at: bindparam("v_updated_at", type_=table.c.updated_at.type)})


async def start_action(session: fast.Session, ctx: RequestContext, uuid: str, action: str, *,
                       message: str | None = None) -> None:
    await fast.run(session, _ACTION, {"instance_uuid": uuid, "action": action, "request_id": ctx.request_id,
                                      "user_id": ctx.user_id, "project_id": ctx.project_id, "start_time": utcnow(),
                                      "message": message})


async def finish_action(session: fast.Session, ctx: RequestContext, uuid: str) -> None:
    """Mark the action this request started on the instance finished."""
    action_id = await fast.scalar(session, _ACTION_ID, {"instance": uuid, "request": ctx.request_id})
    if action_id is not None:
        await fast.run(session, _ACTION_FINISHED, {"match_id": action_id, "now": utcnow()})


async def event(session: fast.Session, request_id: str, uuid: str, name: str, *, host: str | None,
                start: dt.datetime, result: str | None, traceback: str | None = None) -> None:
    """Record an event of the action the request started. Core statements,
    not ORM objects: every boot records three."""
    action_id = await fast.scalar(session, _ACTION_ID, {"instance": uuid, "request": request_id})
    if action_id is None:
        return
    now = utcnow()
    await fast.run(session, _EVENT, {"action_id": action_id, "event": name, "start_time": start, "finish_time": now,
                                     "result": result, "traceback": traceback, "host": host})
    finished = _ACTION_TOUCHED if result is None else _ACTION_FINISHED
    await fast.run(session, finished, {"match_id": action_id, "now": now})


async def actions(session: AsyncSession, uuid: str) -> list[InstanceAction]:
    return list(await session.scalars(select(InstanceAction).where(
        InstanceAction.instance_uuid == uuid).order_by(InstanceAction.start_time.desc(), InstanceAction.id.desc())))


async def action_events(session: AsyncSession, action_id: int) -> list[InstanceActionEvent]:
    return list(await session.scalars(select(InstanceActionEvent).where(
        InstanceActionEvent.action_id == action_id).order_by(InstanceActionEvent.id)))


async def count(session: AsyncSession, where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(Instance).where(where)) or 0)
