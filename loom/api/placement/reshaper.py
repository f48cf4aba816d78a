"""``POST /reshaper`` (from 1.30)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.http import Call, validate
from loom.api.placement import schemas
from loom.api.placement.allocations import consumer_body
from loom.api.placement.base import at_least, enforce, no_content
from loom.placement import reshaper
from loom.placement.errors import PlacementInvalid, PlacementNotFound


async def reshape(call: Call) -> Response:
    if not at_least(call, 30):
        raise PlacementNotFound("The resource could not be found.")
    enforce(call, "reshaper:reshape")
    body = await call.json_object()
    if set(body) != {"inventories", "allocations"}:
        raise PlacementInvalid("JSON does not validate: 'inventories' and 'allocations' are required, and only "
                               "they")
    if not isinstance(body["inventories"], dict) or not isinstance(body["allocations"], dict):
        raise PlacementInvalid("JSON does not validate: 'inventories' and 'allocations' must be objects")
    new_inventories: dict[str, tuple[int, dict[str, Any]]] = {}
    for rp_uuid, entry in body["inventories"].items():
        data = validate(schemas.Inventories, entry, rp_uuid)
        new_inventories[schemas.normal_uuid(rp_uuid)] = (
            data.resource_provider_generation, {rc: inv.spec() for rc, inv in data.inventories.items()})
    new_allocations = {schemas.normal_uuid(consumer, "consumer uuid"): consumer_body(call, entry, in_post=True)
                       for consumer, entry in body["allocations"].items()}
    async with call.deps.db.session.begin() as session:
        await reshaper.reshape(session, new_inventories, new_allocations)
    return no_content()
