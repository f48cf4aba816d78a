"""The deferred-delete actions on a SOFT_DELETED server: ``restore`` (its
host powers the guest on again) and ``forceDelete`` (deleted now, in any
state, as Nova's force_delete)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from loom.api.compute import servers
from loom.api.compute.action_base import Handler, Transition, begin
from loom.api.http import Call, empty
from loom.compute.rpcapi import ComputeAPI
from loom.db.models import Instance
from loom.objects import quotas
from loom.policy.enforcer import ADMIN_OR_PROJECT_MEMBER, Rule

RESTORE = Transition("restore", "os_compute_api:os-deferred-delete:restore", ("soft-delete",), "restoring")


async def _restore(call: Call, value: Any) -> Response:
    async def recount(session: AsyncSession, row: Instance) -> None:
        # A soft-deleted server frees its quota (as in Nova); restoring
        # takes it again, checked after the move so concurrent restores
        # and boots cannot pass a limit together.
        flavor = row.flavor
        await quotas.check_instances(session, call.deps.settings.quota, row.project_id, row.user_id,
                                     {"instances": 1, "cores": int(flavor["vcpus"]),
                                      "ram": int(flavor["memory_mb"])})

    # The reclaim clock stops: deleted_at goes with the move into restoring.
    row = await begin(call, RESTORE, {"deleted_at": None}, after=recount)
    assert row.host is not None  # begin refuses a server without a host
    await ComputeAPI(call.deps.bus).restore_instance(call.ctx, row.host, row.uuid)
    return empty(202)


async def _force_delete(call: Call, value: Any) -> Response:
    await servers.delete_now(call, "os_compute_api:os-deferred-delete:force")
    return empty(202)


ACTIONS: dict[str, Handler] = {"restore": _restore, "forceDelete": _force_delete}

RULES = [
    Rule("os_compute_api:os-deferred-delete:restore", ADMIN_OR_PROJECT_MEMBER, "Restore a soft-deleted server."),
    Rule("os_compute_api:os-deferred-delete:force", ADMIN_OR_PROJECT_MEMBER,
         "Delete a server at once, soft-deleted or not."),
]
