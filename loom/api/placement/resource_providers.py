"""``/resource_providers`` and ``/resource_providers/{uuid}``."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import Call
from loom.api.placement import query, schemas, views
from loom.api.placement.base import at_least, enforce, newest, no_content, params, respond, rp_path
from loom.placement import providers, resource_classes, traits
from loom.placement.errors import PlacementInvalid
from loom.placement.request import AggregateFilter, ProviderQuery, TraitFilter


async def list_(call: Call) -> Response:
    enforce(call, "resource_providers:list")
    q = params(call)
    allowed = ["name", "uuid"]
    for key, minor in (("member_of", 3), ("resources", 4), ("in_tree", 14), ("required", 18)):
        if at_least(call, minor):
            allowed.append(key)
    query.check_keys(q, allowed)
    member_of = [v for k, v in q if k == "member_of"]
    required = [v for k, v in q if k == "required"]
    uuid = query.one(q, "uuid")
    in_tree = query.one(q, "in_tree")
    resources = query.parse_resources(query.one(q, "resources") or "") if query.one(q, "resources") else {}
    wanted = ProviderQuery(
        name=query.one(q, "name"),
        uuid=schemas.normal_uuid(uuid, "uuid") if uuid else None,
        in_tree=schemas.normal_uuid(in_tree, "in_tree") if in_tree else None,
        member_of=query.parse_member_of(member_of, multiple_ok=at_least(call, 24), forbidden_ok=at_least(call, 32))
        if member_of else AggregateFilter(),
        traits=query.parse_required(required, forbidden_ok=at_least(call, 22), any_ok=at_least(call, 39))
        if required else TraitFilter(),
        resources=resources,
    )
    async with call.deps.db.session() as session:
        unknown = await resource_classes.missing(session, set(resources))
        if unknown:
            raise PlacementInvalid(f"Invalid resource class in resources parameter: No such resource class "
                                   f"{', '.join(sorted(unknown))}.")
        await traits.require(session, wanted.traits.names())
        rows = await providers.list_(session, wanted)
    return respond(call, {"resource_providers": [views.provider(call, r) for r in rows]},
                   last_modified=newest(*(r.updated_at or r.created_at for r in rows)))


async def show(call: Call) -> Response:
    enforce(call, "resource_providers:show")
    async with call.deps.db.session() as session:
        info = await providers.info(session, await providers.get(session, call.params["uuid"]))
    return respond(call, views.provider(call, info), last_modified=info.updated_at or info.created_at)


async def create(call: Call) -> Response:
    enforce(call, "resource_providers:create")
    body = await call.json_object()
    if "parent_provider_uuid" in body and not at_least(call, 14):
        raise PlacementInvalid("JSON does not validate: Additional properties are not allowed "
                               "('parent_provider_uuid' was unexpected)")
    data = await call.validated(schemas.ProviderCreate)
    async with call.deps.db.session.begin() as session:
        rp = await providers.create(session, data.name, data.uuid, data.parent_provider_uuid)
        info = await providers.info(session, rp)
    headers = {"location": rp_path(info.uuid)}
    if at_least(call, 20):
        return respond(call, views.provider(call, info), headers=headers, last_modified=info.created_at)
    return Response(status_code=201, headers=headers)


async def update(call: Call) -> Response:
    enforce(call, "resource_providers:update")
    body = await call.json_object()
    if "parent_provider_uuid" in body and not at_least(call, 14):
        raise PlacementInvalid("JSON does not validate: Additional properties are not allowed "
                               "('parent_provider_uuid' was unexpected)")
    data = await call.validated(schemas.ProviderUpdate)
    async with call.deps.db.session.begin() as session:
        rp = await providers.get(session, call.params["uuid"], for_update=True)
        await providers.update_provider(session, rp, data.name, parent_uuid=data.parent_provider_uuid,
                                        set_parent="parent_provider_uuid" in body,
                                        allow_reparent=at_least(call, 37))
        info = await providers.info(session, rp)
    return respond(call, views.provider(call, info), last_modified=info.updated_at)


async def delete(call: Call) -> Response:
    enforce(call, "resource_providers:delete")
    async with call.deps.db.session.begin() as session:
        await providers.delete(session, call.params["uuid"])
    return no_content()
