"""``/resource_providers/{uuid}/inventories[/{resource_class}]``."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import Call, MethodNotAllowed
from loom.api.placement import schemas, views
from loom.api.placement.base import at_least, enforce, newest, no_content, respond, rp_path
from loom.placement import inventories, providers
from loom.placement.errors import ConcurrentUpdate, PlacementInvalid, PlacementNotFound


def _collection(generation: int, rows: dict) -> dict:  # type: ignore[type-arg]
    return {"resource_provider_generation": generation,
            "inventories": {rc: views.inventory(row) for rc, row in rows.items()}}


async def list_(call: Call) -> Response:
    enforce(call, "resource_providers:inventories:list")
    async with call.deps.db.session() as session:
        rp = await providers.get(session, call.params["uuid"])
        rows = await inventories.of_provider(session, rp)
    return respond(call, _collection(rp.generation, rows),
                   last_modified=newest(*(r.updated_at or r.created_at for r in rows.values())))


async def show(call: Call) -> Response:
    enforce(call, "resource_providers:inventories:show")
    rc = call.params["resource_class"]
    async with call.deps.db.session() as session:
        rp = await providers.get(session, call.params["uuid"])
        row = (await inventories.of_provider(session, rp)).get(rc)
    if row is None:
        raise PlacementNotFound(f"No inventory of class {rc} for {rp.uuid}")
    return respond(call, {**views.inventory(row), "resource_provider_generation": rp.generation},
                   last_modified=row.updated_at or row.created_at)


async def replace(call: Call) -> Response:
    enforce(call, "resource_providers:inventories:update")
    data = await call.validated(schemas.Inventories)
    async with call.deps.db.session.begin() as session:
        rp = await providers.get(session, call.params["uuid"], for_update=True)
        wanted = {rc: inv.spec() for rc, inv in data.inventories.items()}
        await inventories.replace(session, rp, wanted, generation=data.resource_provider_generation,
                                  reserved_may_equal_total=at_least(call, 26))
        rows = await inventories.of_provider(session, rp)
    return respond(call, _collection(rp.generation, rows))


async def create(call: Call) -> Response:
    enforce(call, "resource_providers:inventories:create")
    data = await call.validated(schemas.InventoryCreate)
    rc = data.resource_class
    async with call.deps.db.session.begin() as session:
        rp = await providers.get(session, call.params["uuid"], for_update=True)
        if rc in await inventories.of_provider(session, rp):
            raise ConcurrentUpdate(f"Update conflict: Inventory for {rc} on resource provider {rp.uuid} "
                                   "already exists.")
        spec = data.model_dump(exclude={"resource_class", "resource_provider_generation"})
        row = await inventories.update_one(session, rp, rc, spec, data.resource_provider_generation, create=True,
                                           reserved_may_equal_total=at_least(call, 26))
    return respond(call, {**views.inventory(row), "resource_provider_generation": rp.generation}, status=201,
                   headers={"location": f"{rp_path(rp.uuid)}/inventories/{rc}"})


async def update_one(call: Call) -> Response:
    enforce(call, "resource_providers:inventories:update")
    data = await call.validated(schemas.InventoryOne)
    rc = call.params["resource_class"]
    async with call.deps.db.session.begin() as session:
        rp = await providers.get(session, call.params["uuid"], for_update=True)
        spec = data.model_dump(exclude={"resource_provider_generation"})
        try:
            row = await inventories.update_one(session, rp, rc, spec, data.resource_provider_generation,
                                               reserved_may_equal_total=at_least(call, 26))
        except PlacementNotFound as exc:
            raise PlacementInvalid(exc.message) from None
    return respond(call, {**views.inventory(row), "resource_provider_generation": rp.generation})


async def delete_one(call: Call) -> Response:
    enforce(call, "resource_providers:inventories:delete")
    async with call.deps.db.session.begin() as session:
        rp = await providers.get(session, call.params["uuid"], for_update=True)
        await inventories.delete_one(session, rp, call.params["resource_class"])
    return no_content()


async def delete_all(call: Call) -> Response:
    if not at_least(call, 5):
        raise MethodNotAllowed("DELETE", ["GET", "POST", "PUT"])
    enforce(call, "resource_providers:inventories:delete")
    async with call.deps.db.session.begin() as session:
        rp = await providers.get(session, call.params["uuid"], for_update=True)
        await inventories.replace(session, rp, {}, generation=None)
    return no_content()
