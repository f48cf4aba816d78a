"""``/v3/domains``."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.identity import schemas
from loom.api.identity.base import enforce, read, views, write
from loom.identity import domains


async def list_(call: Call) -> Response:
    enforce(call, "identity:list_domains")
    async with read(call) as session:
        rows = await domains.list_(session, call.query)
    v = views(call)
    return JSON(v.collection("domains", [v.domain(d) for d in rows], "domains"))


async def show(call: Call) -> Response:
    async with read(call) as session:
        domain = await domains.get(session, call.params["domain_id"])
    enforce(call, "identity:get_domain", {"target": {"domain": {"id": domain.id}}})
    return JSON({"domain": views(call).domain(domain)})


async def create(call: Call) -> Response:
    enforce(call, "identity:create_domain")
    body = await call.validated(schemas.DomainCreate, "domain")
    async with write(call) as session:
        domain = await domains.create(session, {
            **body.known("name", "description", "enabled"), "extra": body.extras()})
    return JSON({"domain": views(call).domain(domain)}, status_code=201)


async def update(call: Call) -> Response:
    enforce(call, "identity:update_domain")
    body = await call.validated(schemas.DomainUpdate, "domain")
    values = body.known("name", "description", "enabled")
    async with write(call) as session:
        if body.extras():
            current = await domains.get(session, call.params["domain_id"])
            values["extra"] = {**current.extra, **body.extras()}
        domain = await domains.update(session, call.params["domain_id"], values)
    return JSON({"domain": views(call).domain(domain)})


async def delete(call: Call) -> Response:
    enforce(call, "identity:delete_domain")
    async with write(call) as session:
        await domains.delete(session, call.params["domain_id"])
    return empty()
