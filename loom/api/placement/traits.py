"""``/traits`` and ``/resource_providers/{uuid}/traits``."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import Call
from loom.api.placement import query, schemas
from loom.api.placement.base import enforce, no_content, params, respond
from loom.placement import providers, traits
from loom.placement.errors import BadQueryValue, PlacementNotFound


async def list_(call: Call) -> Response:
    enforce(call, "traits:list")
    q = params(call)
    query.check_keys(q, ["name", "associated"])
    async with call.deps.db.session() as session:
        names = await traits.all_names(session)
        associated = query.one(q, "associated")
        if associated is not None:
            if associated.lower() not in ("true", "false"):
                raise BadQueryValue(f"Invalid query string parameters: 'associated' must be true or false. "
                                    f"Got: {associated}")
            used = await traits.associated(session)
            names = [n for n in names if (n in used) == (associated.lower() == "true")]
    name = query.one(q, "name")
    if name is not None:
        if name.startswith("in:"):
            wanted = set(name[3:].split(","))
            names = [n for n in names if n in wanted]
        elif name.startswith("startswith:"):
            names = [n for n in names if n.startswith(name[len("startswith:"):])]
        else:
            raise BadQueryValue(f"Badly formed name parameter. Expected name query string parameter in form: "
                                f"?name=[in|startswith]:[name1,name2|prefix]. Got: \"{name}\"")
    return respond(call, {"traits": names})


async def show(call: Call) -> Response:
    enforce(call, "traits:show")
    name = call.params["name"]
    async with call.deps.db.session() as session:
        if not await traits.exists_(session, name):
            raise PlacementNotFound(f"No such trait(s): {name}")
    return no_content()


async def put(call: Call) -> Response:
    enforce(call, "traits:update")
    name = call.params["name"]
    traits.check_custom_name(name)
    async with call.deps.db.session.begin() as session:
        created = await traits.ensure(session, name)
    headers = {"location": f"/placement/traits/{name}"}
    return Response(status_code=201, headers=headers) if created else no_content(headers)


async def delete(call: Call) -> Response:
    enforce(call, "traits:delete")
    async with call.deps.db.session.begin() as session:
        await traits.delete(session, call.params["name"])
    return no_content()


async def of_provider(call: Call) -> Response:
    enforce(call, "resource_providers:traits:list")
    async with call.deps.db.session() as session:
        rp = await providers.get(session, call.params["uuid"])
        names = await traits.of_provider(session, rp.id)
    return respond(call, {"traits": names, "resource_provider_generation": rp.generation})


async def set_for_provider(call: Call) -> Response:
    enforce(call, "resource_providers:traits:update")
    data = await call.validated(schemas.Traits)
    async with call.deps.db.session.begin() as session:
        rp = await providers.get(session, call.params["uuid"], for_update=True)
        generation = await traits.set_for_provider(session, rp, data.traits, data.resource_provider_generation)
        names = await traits.of_provider(session, rp.id)
    return respond(call, {"traits": names, "resource_provider_generation": generation})


async def delete_for_provider(call: Call) -> Response:
    enforce(call, "resource_providers:traits:delete")
    async with call.deps.db.session.begin() as session:
        rp = await providers.get(session, call.params["uuid"], for_update=True)
        await traits.set_for_provider(session, rp, [], None)
    return no_content()
