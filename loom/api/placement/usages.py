"""``/resource_providers/{uuid}/usages`` and ``/usages``."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import Call
from loom.api.placement import query
from loom.api.placement.base import at_least, enforce, params, respond
from loom.placement import providers, usages
from loom.placement.errors import PlacementInvalid, PlacementNotFound


async def for_provider(call: Call) -> Response:
    enforce(call, "resource_providers:usages")
    async with call.deps.db.session() as session:
        rp = await providers.get(session, call.params["uuid"])
        used = await usages.of_provider(session, rp)
    return respond(call, {"resource_provider_generation": rp.generation, "usages": used})


async def for_project(call: Call) -> Response:
    if not at_least(call, 9):
        raise PlacementNotFound("The resource could not be found.")
    enforce(call, "usages")
    q = params(call)
    query.check_keys(q, ["project_id", "user_id", *(["consumer_type"] if at_least(call, 38) else [])])
    project_id = query.one(q, "project_id")
    if not project_id:
        raise PlacementInvalid("Invalid query string parameters: 'project_id' is a required property")
    user_id = query.one(q, "user_id")
    async with call.deps.db.session() as session:
        if at_least(call, 38):
            found: object = await usages.of_project_by_type(session, project_id, user_id,
                                                            query.one(q, "consumer_type"))
        else:
            found = await usages.of_project(session, project_id, user_id)
    return respond(call, {"usages": found})
