"""``/v3/regions``, ``/v3/services`` and ``/v3/endpoints``."""

from __future__ import annotations

import uuid

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.identity import schemas
from loom.api.identity.base import enforce, read, views, write
from loom.identity import catalog


async def list_regions(call: Call) -> Response:
    enforce(call, "identity:list_regions")
    async with read(call) as session:
        rows = await catalog.list_regions(session, call.query)
    v = views(call)
    return JSON(v.collection("regions", [v.region(r) for r in rows], "regions"))


async def show_region(call: Call) -> Response:
    enforce(call, "identity:get_region")
    async with read(call) as session:
        region = await catalog.get_region(session, call.params["region_id"])
    return JSON({"region": views(call).region(region)})


async def create_region(call: Call) -> Response:
    enforce(call, "identity:manage_regions")
    body = await call.validated(schemas.RegionCreate, "region")
    region_id = call.params.get("region_id") or body.id or uuid.uuid4().hex
    async with write(call) as session:
        region = await catalog.create_region(session, {
            "id": region_id, **body.known("description", "parent_region_id"), "extra": body.extras()})
    return JSON({"region": views(call).region(region)}, status_code=201)


async def update_region(call: Call) -> Response:
    enforce(call, "identity:manage_regions")
    body = await call.validated(schemas.RegionUpdate, "region")
    async with write(call) as session:
        region = await catalog.update_region(session, call.params["region_id"],
                                             body.known("description", "parent_region_id"))
    return JSON({"region": views(call).region(region)})


async def delete_region(call: Call) -> Response:
    enforce(call, "identity:manage_regions")
    async with write(call) as session:
        await catalog.delete_region(session, call.params["region_id"])
    return empty()


async def list_services(call: Call) -> Response:
    enforce(call, "identity:list_services")
    async with read(call) as session:
        rows = await catalog.list_services(session, call.query)
    v = views(call)
    return JSON(v.collection("services", [v.service(s) for s in rows], "services"))


async def show_service(call: Call) -> Response:
    enforce(call, "identity:get_service")
    async with read(call) as session:
        service = await catalog.get_service(session, call.params["service_id"])
    return JSON({"service": views(call).service(service)})


async def create_service(call: Call) -> Response:
    enforce(call, "identity:manage_services")
    body = await call.validated(schemas.ServiceCreate, "service")
    async with write(call) as session:
        service = await catalog.create_service(session, {
            **body.known("type", "name", "description", "enabled"), "extra": body.extras()})
    return JSON({"service": views(call).service(service)}, status_code=201)


async def update_service(call: Call) -> Response:
    enforce(call, "identity:manage_services")
    body = await call.validated(schemas.ServiceUpdate, "service")
    async with write(call) as session:
        service = await catalog.update_service(session, call.params["service_id"],
                                               body.known("type", "name", "description", "enabled"))
    return JSON({"service": views(call).service(service)})


async def delete_service(call: Call) -> Response:
    enforce(call, "identity:manage_services")
    async with write(call) as session:
        await catalog.delete_service(session, call.params["service_id"])
    return empty()


async def list_endpoints(call: Call) -> Response:
    enforce(call, "identity:list_endpoints")
    filters = call.query
    if "region" in filters:
        filters["region_id"] = filters.pop("region")
    async with read(call) as session:
        rows = await catalog.list_endpoints(session, filters)
    v = views(call)
    return JSON(v.collection("endpoints", [v.endpoint(e) for e in rows], "endpoints"))


async def show_endpoint(call: Call) -> Response:
    enforce(call, "identity:get_endpoint")
    async with read(call) as session:
        endpoint = await catalog.get_endpoint(session, call.params["endpoint_id"])
    return JSON({"endpoint": views(call).endpoint(endpoint)})


def _endpoint_values(body: schemas.EndpointCreate | schemas.EndpointUpdate) -> dict[str, object]:
    values = body.known("service_id", "interface", "url", "enabled", "region_id")
    if body.region is not None and body.region_id is None:
        values["region_id"] = body.region
    return values


async def create_endpoint(call: Call) -> Response:
    enforce(call, "identity:manage_endpoints")
    body = await call.validated(schemas.EndpointCreate, "endpoint")
    async with write(call) as session:
        endpoint = await catalog.create_endpoint(session, {**_endpoint_values(body), "extra": body.extras()})
    return JSON({"endpoint": views(call).endpoint(endpoint)}, status_code=201)


async def update_endpoint(call: Call) -> Response:
    enforce(call, "identity:manage_endpoints")
    body = await call.validated(schemas.EndpointUpdate, "endpoint")
    async with write(call) as session:
        endpoint = await catalog.update_endpoint(session, call.params["endpoint_id"], _endpoint_values(body))
    return JSON({"endpoint": views(call).endpoint(endpoint)})


async def delete_endpoint(call: Call) -> Response:
    enforce(call, "identity:manage_endpoints")
    async with write(call) as session:
        await catalog.delete_endpoint(session, call.params["endpoint_id"])
    return empty()
