"""``/resource_classes`` (from 1.2)."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import Call
from loom.api.placement import schemas, views
from loom.api.placement.base import at_least, enforce, no_content, respond
from loom.placement import resource_classes
from loom.placement.errors import PlacementNotFound


def _since_1_2(call: Call) -> None:
    if not at_least(call, 2):
        raise PlacementNotFound("The resource could not be found.")


async def list_(call: Call) -> Response:
    _since_1_2(call)
    enforce(call, "resource_classes:list")
    async with call.deps.db.session() as session:
        found = await resource_classes.list_(session)
    return respond(call, {"resource_classes": [views.resource_class(rc.name) for rc in found]})


async def show(call: Call) -> Response:
    _since_1_2(call)
    enforce(call, "resource_classes:show")
    async with call.deps.db.session() as session:
        rc = await resource_classes.get(session, call.params["name"])
    return respond(call, views.resource_class(rc.name))


async def create(call: Call) -> Response:
    _since_1_2(call)
    enforce(call, "resource_classes:create")
    data = await call.validated(schemas.ResourceClassCreate)
    async with call.deps.db.session.begin() as session:
        await resource_classes.create(session, data.name)
    return Response(status_code=201, headers={"location": f"/placement/resource_classes/{data.name}"})


async def put(call: Call) -> Response:
    """Before 1.7: rename (body ``{"name"}``); from 1.7: create if missing."""
    _since_1_2(call)
    enforce(call, "resource_classes:update")
    name = call.params["name"]
    if not at_least(call, 7):
        data = await call.validated(schemas.ResourceClassCreate)
        async with call.deps.db.session.begin() as session:
            rc = await resource_classes.rename(session, name, data.name)
        return respond(call, views.resource_class(rc.name))
    resource_classes.check_custom_name(name)
    async with call.deps.db.session.begin() as session:
        created = await resource_classes.ensure(session, name)
    headers = {"location": f"/placement/resource_classes/{name}"}
    return Response(status_code=201, headers=headers) if created else no_content(headers)


async def delete(call: Call) -> Response:
    _since_1_2(call)
    enforce(call, "resource_classes:delete")
    async with call.deps.db.session.begin() as session:
        await resource_classes.delete(session, call.params["name"])
    return no_content()
