"""``os-migrateLive``: move a running (or paused) server to another host
without stopping it. The body per microversion: ``host`` (null lets the
scheduler choose), ``block_migration`` (a boolean; also "auto" from 2.25),
``disk_over_commit`` (before 2.25), ``force`` (2.30 to 2.67: skip the
scheduler's filters for the given host; before 2.30 a given host is
always forced, as in Nova). Before 2.34 the API waits for the
destination to be checked and claimed and answers a refusal with a 400;
from 2.34 it answers at once and a refusal shows in the server's events
and its migration's ``error`` status."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.compute import move_base
from loom.api.compute.action_base import Handler, Transition, authorized, body_object
from loom.api.http import Call, empty
from loom.conductor.rpcapi import ConductorAPI
from loom.errors import Invalid, LoomError
from loom.policy.enforcer import ADMIN, Rule

RULE = "os_compute_api:os-migrate-server:migrate_live"
LIVE_MIGRATE = Transition("live-migration", RULE, ("active", "paused"), "migrating")


def _body(call: Call, value: Any) -> tuple[str | None, bool | None, bool | None]:
    """host, block_migration (None: "auto"), force (None before 2.30)."""
    v = call.version
    if not v.at_least("2.25"):
        keys: tuple[str, ...] = ("host", "block_migration", "disk_over_commit")
    elif not v.at_least("2.30") or v.at_least("2.68"):
        keys = ("host", "block_migration")
    else:
        keys = ("host", "block_migration", "force")
    body = body_object("os-migrateLive", value, keys, required=[k for k in keys if k != "force"])
    host = move_base.hostname("host", body["host"], nullable=True)
    raw = body["block_migration"]
    block = None if raw == "auto" and v.at_least("2.25") else move_base.boolean("block_migration", raw)
    if "disk_over_commit" in keys:
        move_base.boolean("disk_over_commit", body["disk_over_commit"])  # checked, then ignored as by libvirt
    force = None
    if v.at_least("2.30"):
        force = move_base.boolean("force", body.get("force", False))
        if force and not host:
            raise Invalid("Can't force to a non-provided destination")
    return host, block, force


async def migrate_live(call: Call, value: Any) -> Response:
    host, block_migration, force = _body(call, value)
    async with call.deps.db.session() as session:
        row = await authorized(session, call, RULE)
    if host is not None and await move_base.compute_service(call, host) is None:
        raise Invalid(f"Compute host {host} could not be found.")
    row, migration = await move_base.begin_move(
        call, LIVE_MIGRATE, "os-migrateLive",
        lambda r: move_base.migration_values(call, r, "live-migration", "queued", None))
    wait = not call.version.at_least("2.34")
    try:
        await ConductorAPI(call.deps.bus).live_migrate_instance(
            call.ctx, row.uuid, migration, host, block_migration, force is None or force,
            call.deps.settings.service.down_time, wait=wait)
    except LoomError as exc:
        if not wait:
            raise
        raise Invalid(exc.message) from None
    return empty(202)


ACTIONS: dict[str, Handler] = {"os-migrateLive": migrate_live}
RULES = [Rule(RULE, ADMIN, "Live migrate a server to a new host without a reboot.")]
