"""``resize``, ``migrate`` (cold), ``confirmResize`` and ``revertResize``.

A resize or cold migration is accepted in one transaction: the server moves
into resize_prep with its old and new flavor recorded, the project's quota
is counted again with the bigger of the two (a concurrent upsize cannot
pass a limit), and the migration record is made; then the conductor runs
the move (loom/conductor/migrate.py). Confirming or reverting moves the
migration from ``finished`` on with a conditional update, so of a confirm
and a revert sent at once one wins and the other gets Nova's 400.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from loom.api.compute.action_base import (
    Handler,
    Transition,
    authorized,
    body_object,
    check_ready,
    lock_for_action,
    target,
)
from loom.api.compute.base import enforce, field_error
from loom.api.http import Call, empty
from loom.compute.rpcapi import ComputeAPI
from loom.conductor.rpcapi import ConductorAPI
from loom.db.models import ComputeNode, Instance, Migration
from loom.errors import BadState, Invalid, NotFound
from loom.objects import flavors, instances, migrations, quotas
from loom.policy.enforcer import ADMIN, ADMIN_OR_PROJECT_MEMBER, Rule

RESIZE = Transition("resize", "os_compute_api:servers:resize", ("active", "stopped"), "resize_prep")
MIGRATE = Transition("migrate", "os_compute_api:os-migrate-server:migrate", ("active", "stopped"), "resize_prep")
MIGRATE_HOST_RULE = "os_compute_api:os-migrate-server:migrate:host"
# As Nova, confirm and revert do not check the host.
CONFIRM = Transition("confirmResize", "os_compute_api:servers:confirm_resize", ("resized",), "", needs_host=False)
REVERT = Transition("revertResize", "os_compute_api:servers:revert_resize", ("resized",), "resize_reverting",
                    needs_host=False)
DISK_CONFIGS = ("AUTO", "MANUAL")
_HOSTNAME = re.compile(r"^[a-zA-Z0-9-._]*$")
_FLAVOR_FIELDS = ("flavorid", "name", "vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap")


async def _resize(call: Call, value: Any) -> Response:
    body = body_object("resize", value, ("flavorRef", "OS-DCF:diskConfig"), required=("flavorRef",))
    ref = body["flavorRef"]
    if isinstance(ref, bool) or not isinstance(ref, (str, int)):
        raise field_error("flavorRef", ref, f"{ref!r} is not of type 'string', 'integer'")
    if str(ref) == "":
        raise field_error("flavorRef", ref, "'' is too short")
    if "OS-DCF:diskConfig" in body and body["OS-DCF:diskConfig"] not in DISK_CONFIGS:
        disk = body["OS-DCF:diskConfig"]
        raise field_error("OS-DCF:diskConfig", disk, f"{disk!r} is not one of {list(DISK_CONFIGS)}")
    return await _start(call, RESIZE, flavor_ref=str(ref))


async def _migrate(call: Call, value: Any) -> Response:
    host = None
    if call.version.at_least("2.56"):
        body = body_object("migrate", value, ("host",), nullable=True)
        host = body.get("host")
        if host is not None and (not isinstance(host, str) or not 0 < len(host) <= 255
                                 or not _HOSTNAME.match(host)):
            raise field_error("host", host, f"{host!r} is not a valid hostname")
    return await _start(call, MIGRATE, host=host)


def _flavor_doc(flavor: Any, specs: dict[str, str]) -> dict[str, Any]:
    return {**{k: getattr(flavor, k) for k in _FLAVOR_FIELDS}, "extra_specs": specs}


def _check_disk(current: dict[str, Any], new: dict[str, Any]) -> None:
    """Nova refuses a resize to a zero root disk at the API; its drivers
    refuse shrinking one, which Loom refuses here, before anything moves."""
    old_gb, new_gb = int(current.get("root_gb", 0)), int(new.get("root_gb", 0))
    if new_gb == 0 and old_gb != 0:
        raise Invalid("Server disk was unable to be resized because: Resize to zero disk flavor is not allowed.")
    if new_gb < old_gb:
        raise Invalid("Server disk was unable to be resized because: Unable to resize disk down.")


async def _check_host(session: Any, row: Instance, host: str) -> None:
    if host == row.host:
        raise Invalid("Cannot migrate to the host where the server exists.")
    if await session.scalar(select(ComputeNode.id).where(ComputeNode.host == host).limit(1)) is None:
        raise Invalid(f"Compute host {host} could not be found.")


async def _start(call: Call, t: Transition, *, flavor_ref: str | None = None, host: str | None = None) -> Response:
    """Accept a resize (``flavor_ref``) or cold migration (optionally to
    ``host``): all the checks, the server in resize_prep, the quota, the
    migration record and the action in one transaction; then the conductor."""
    async with call.deps.db.session.begin() as session:
        row = await authorized(session, call, t.rule)
        if host is not None:
            enforce(call, MIGRATE_HOST_RULE, target(row))
        row = await instances.get_for_update(session, call.ctx, row.uuid)
        check_ready(call, row, t)
        current = dict(row.flavor)
        new = current
        if flavor_ref is not None:
            try:
                flavor = await flavors.get(session, call.ctx, flavor_ref)
            except NotFound as exc:
                raise Invalid(exc.message) from None
            if flavor.flavorid == current.get("flavorid"):
                raise Invalid("When resizing, instances must change flavor!")
            new = _flavor_doc(flavor, await flavors.extra_specs(session, flavor))
            _check_disk(current, new)
        if host is not None:
            await _check_host(session, row, host)
        values = {"task_state": t.task_state, "old_flavor": current, "new_flavor": new,
                  "system_metadata": {**(row.system_metadata or {}), "old_vm_state": row.vm_state}}
        if not await instances.set_fields(session, row.uuid, values, expected_task_state=[None],
                                          expected_vm_state=row.vm_state):
            raise BadState(f"Cannot '{t.action}' instance {row.uuid}: it changed state meanwhile")
        # Counted with the bigger of the two flavors from now on: only an upsize needs room.
        deltas = {resource: int(new[key]) - int(current[key])
                  for resource, key in (("cores", "vcpus"), ("ram", "memory_mb"))}
        upsize = {resource: delta for resource, delta in deltas.items() if delta > 0}
        if upsize:
            await quotas.check_instances(session, call.deps.settings.quota, row.project_id, row.user_id, upsize)
        migration = await migrations.create(
            session, instance_uuid=row.uuid, migration_type="migration" if flavor_ref is None else "resize",
            status="pre-migrating", source_compute=row.host, source_node=row.node,
            old_flavor_id=str(current.get("flavorid")), new_flavor_id=str(new.get("flavorid")),
            user_id=call.ctx.user_id, project_id=call.ctx.project_id)
        await instances.start_action(session, call.ctx, row.uuid, t.action)
    same_host = flavor_ref is not None and call.deps.settings.compute.allow_resize_to_same_host
    await ConductorAPI(call.deps.bus).migrate_server(call.ctx, row.uuid, migration.id, host, same_host)
    return empty(202)


async def _settle(call: Call, t: Transition, status: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Move a server waiting in VERIFY_RESIZE on: its migration from
    ``finished`` to ``status`` (and, for a revert, the server into its task
    state), recording the action; the instance and migration for the hosts."""
    async with call.deps.db.session.begin() as session:
        row = await lock_for_action(session, call, t)
        found = await migrations.of_instance(session, row.uuid, ("finished",))
        migration: Migration | None = next((m for m in found if m.migration_type in ("resize", "migration")), None)
        if migration is None or not await migrations.set_fields(session, migration.id, {"status": status},
                                                                expected_status=("finished",)):
            raise Invalid("Instance has not been resized.")
        if t.task_state and not await instances.set_fields(session, row.uuid, {"task_state": t.task_state},
                                                           expected_task_state=[None], expected_vm_state="resized"):
            raise BadState(f"Cannot '{t.action}' instance {row.uuid}: it changed state meanwhile")
        await instances.start_action(session, call.ctx, row.uuid, t.action)
        return migrations.move_instance(row), {**migrations.to_dict(migration), "status": status}


async def _confirm(call: Call, value: Any) -> Response:
    instance, migration = await _settle(call, CONFIRM, "confirming")
    await ComputeAPI(call.deps.bus).confirm_resize(call.ctx, migration["source_compute"], instance, migration)
    return empty(204)


async def _revert(call: Call, value: Any) -> Response:
    instance, migration = await _settle(call, REVERT, "reverting")
    await ComputeAPI(call.deps.bus).revert_resize(call.ctx, migration["dest_compute"], instance, migration)
    return empty(202)


ACTIONS: dict[str, Handler] = {
    "resize": _resize,
    "migrate": _migrate,
    "confirmResize": _confirm,
    "revertResize": _revert,
}

RULES = [
    Rule(RESIZE.rule, ADMIN_OR_PROJECT_MEMBER, "Resize a server."),
    Rule(CONFIRM.rule, ADMIN_OR_PROJECT_MEMBER, "Confirm a server resize."),
    Rule(REVERT.rule, ADMIN_OR_PROJECT_MEMBER, "Revert a server resize."),
    Rule(MIGRATE.rule, ADMIN, "Cold migrate a server to a host."),
    Rule(MIGRATE_HOST_RULE, ADMIN, "Cold migrate a server to a host the caller names (2.56)."),
]
