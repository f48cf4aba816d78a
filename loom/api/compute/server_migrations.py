"""``/servers/{id}/migrations``: a server's live migrations under way
(list and show from 2.23, with their progress), aborting one (``DELETE``,
2.24; a queued or preparing one too from 2.65) and forcing one to finish
(``force_complete`` action, 2.22). Admin only, as in Nova."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from loom.api.compute.action_base import authorized
from loom.api.http import JSON, Call, Endpoint, empty
from loom.compute.rpcapi import ComputeAPI
from loom.db.models import Instance, Migration
from loom.errors import BadState, Invalid, NotFound
from loom.objects import instances
from loom.policy.enforcer import ADMIN, Rule

RULE = "os_compute_api:servers:migrations:%s"
# Nova's in-progress statuses of a live migration.
IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")


def _time(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def view(call: Call, m: Migration) -> dict[str, Any]:
    out = {"created_at": _time(m.created_at), "dest_compute": m.dest_compute, "dest_host": m.dest_host,
           "dest_node": m.dest_node, "disk_processed_bytes": m.disk_processed,
           "disk_remaining_bytes": m.disk_remaining, "disk_total_bytes": m.disk_total, "id": m.id,
           "memory_processed_bytes": m.memory_processed, "memory_remaining_bytes": m.memory_remaining,
           "memory_total_bytes": m.memory_total, "server_uuid": m.instance_uuid,
           "source_compute": m.source_compute, "source_node": m.source_node, "status": m.status,
           "updated_at": _time(m.updated_at)}
    if call.version.at_least("2.59"):
        out["uuid"] = m.uuid
    return out


def _since(call: Call, version: str) -> None:
    if not call.version.at_least(version):
        raise NotFound("The resource could not be found.")


async def _instance(call: Call, action: str) -> Instance:
    async with call.deps.db.session() as session:
        return await authorized(session, call, RULE % action)


async def _migration(session: Any, migration_id: str, instance_uuid: str) -> Migration | None:
    if not migration_id.isdigit():
        return None
    return await session.scalar(select(Migration).where(
        Migration.id == int(migration_id), Migration.instance_uuid == instance_uuid, Migration.deleted.is_(False)))


def _not_found_for_instance(migration_id: str, instance_uuid: str) -> str:
    return f"Migration {migration_id} not found for instance {instance_uuid}"


async def list_(call: Call) -> Response:
    _since(call, "2.23")
    row = await _instance(call, "index")
    async with call.deps.db.session() as session:
        found = await session.scalars(select(Migration).where(
            Migration.instance_uuid == row.uuid, Migration.migration_type == "live-migration",
            Migration.status.in_(IN_PROGRESS), Migration.deleted.is_(False)).order_by(Migration.id))
        return JSON({"migrations": [view(call, m) for m in found]})


async def show(call: Call) -> Response:
    _since(call, "2.23")
    row = await _instance(call, "show")
    mid = call.params["migration_id"]
    async with call.deps.db.session() as session:
        m = await _migration(session, mid, row.uuid)
    if m is None:
        raise NotFound(f"In-progress live migration {mid} is not found for server {row.uuid}.")
    if m.migration_type != "live-migration":
        raise NotFound(f"Migration {mid} for server {row.uuid} is not live-migration.")
    if m.status not in IN_PROGRESS:
        raise NotFound(f"Live migration {mid} for server {row.uuid} is not in progress.")
    return JSON({"migration": view(call, m)})


async def _begin(call: Call, action: str, refusal: str, record: str, vm_states: tuple[str, ...] | None,
                 statuses: tuple[str, ...], method: str, missing: type[Exception]) -> tuple[Instance, Migration]:
    """Nova's checks of an abort or a forced completion (lock, the server
    migrating, the migration's status), and the action recorded."""
    await _instance(call, action)
    mid = call.params["migration_id"]
    async with call.deps.db.session.begin() as session:
        row = await instances.get_for_update(session, call.ctx, call.params["server_id"])
        instances.check_unlocked(call.ctx, row)
        if vm_states is not None and row.vm_state not in vm_states:
            raise BadState(f"Cannot '{refusal}' instance {row.uuid} while it is in vm_state {row.vm_state}")
        if row.task_state != "migrating":
            raise BadState(f"Cannot '{refusal}' instance {row.uuid} while it is in task_state {row.task_state}")
        m = await _migration(session, mid, row.uuid)
        if m is None:
            raise missing(_not_found_for_instance(mid, row.uuid))
        if m.status not in statuses:
            raise Invalid(f"Migration {mid} state of instance {row.uuid} is {m.status}. Cannot {method} while the "
                          "migration is in this state.")
        await instances.start_action(session, call.ctx, row.uuid, record)
        return row, m


async def abort(call: Call) -> Response:
    _since(call, "2.24")
    statuses = ("queued", "preparing", "running") if call.version.at_least("2.65") else ("running",)
    row, m = await _begin(call, "delete", "abort live migration", "live_migration_cancel", None, statuses,
                          "abort live migration", NotFound)
    await ComputeAPI(call.deps.bus).live_migration_abort(call.ctx, row.host or "", row.uuid, m.id)
    return empty(202)


async def action(call: Call) -> Response:
    _since(call, "2.22")
    body = await call.json_object()
    if set(body) != {"force_complete"} or body["force_complete"] is not None:
        extra = sorted(set(body) - {"force_complete"})
        if extra:
            raise Invalid(f"Invalid input for field/attribute . Value: {body}. Additional properties are not "
                          f"allowed ({', '.join(map(repr, extra))} was unexpected)")
        if "force_complete" not in body:
            raise Invalid(f"Invalid input for field/attribute . Value: {body}. 'force_complete' is a required "
                          "property")
        value = body["force_complete"]
        raise Invalid(f"Invalid input for field/attribute force_complete. Value: {value}. {value!r} is not of "
                      "type 'null'")
    row, m = await _begin(call, "force_complete", "force_complete", "live_migration_force_complete", ("active",),
                          ("running",), "force complete", Invalid)
    await ComputeAPI(call.deps.bus).live_migration_force_complete(call.ctx, row.host or "", row.uuid, m.id)
    return empty(202)


ENDPOINTS = [
    Endpoint("GET", "/servers/{server_id}/migrations", list_),
    Endpoint("GET", "/servers/{server_id}/migrations/{migration_id}", show),
    Endpoint("DELETE", "/servers/{server_id}/migrations/{migration_id}", abort),
    Endpoint("POST", "/servers/{server_id}/migrations/{migration_id}/action", action),
]
RULES = [
    Rule(RULE % "index", ADMIN, "List the live migrations under way of a server."),
    Rule(RULE % "show", ADMIN, "Show a live migration under way of a server."),
    Rule(RULE % "delete", ADMIN, "Abort a live migration under way."),
    Rule(RULE % "force_complete", ADMIN, "Force a live migration under way to complete."),
]
