"""``/resource_providers/{uuid}/aggregates`` (from 1.1; with the provider
generation from 1.19)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.http import Call, validate
from loom.api.placement import schemas
from loom.api.placement.base import at_least, enforce, respond
from loom.placement import aggregates, providers
from loom.placement.errors import PlacementInvalid, PlacementNotFound


def _body(call: Call, names: list[str], generation: int) -> dict[str, Any]:
    body: dict[str, Any] = {"aggregates": names}
    if at_least(call, 19):
        body["resource_provider_generation"] = generation
    return body


async def show(call: Call) -> Response:
    if not at_least(call, 1):
        raise PlacementNotFound("The resource could not be found.")
    enforce(call, "resource_providers:aggregates:list")
    async with call.deps.db.session() as session:
        rp = await providers.get(session, call.params["uuid"])
        names = await aggregates.of_provider(session, rp.id)
    return respond(call, _body(call, names, rp.generation))


async def update(call: Call) -> Response:
    if not at_least(call, 1):
        raise PlacementNotFound("The resource could not be found.")
    enforce(call, "resource_providers:aggregates:update")
    body = await call.body()
    if at_least(call, 19):
        data = validate(schemas.Aggregates, body)
        wanted, generation = data.aggregates, data.resource_provider_generation
    else:
        if not isinstance(body, list) or not all(isinstance(a, str) for a in body):
            raise PlacementInvalid("JSON does not validate: the body must be an array of aggregate uuids")
        wanted, generation = [schemas.normal_uuid(a, "aggregate uuid") for a in body], None
    async with call.deps.db.session.begin() as session:
        rp = await providers.get(session, call.params["uuid"], for_update=True)
        new_generation = await aggregates.set_for_provider(session, rp, wanted, generation, bump=at_least(call, 19))
        names = await aggregates.of_provider(session, rp.id)
    return respond(call, _body(call, names, new_generation))
