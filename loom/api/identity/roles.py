"""``/v3/roles`` and role implications."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.identity import schemas
from loom.api.identity.base import enforce, read, views, write
from loom.identity import roles


async def list_(call: Call) -> Response:
    enforce(call, "identity:list_roles")
    async with read(call) as session:
        rows = await roles.list_(session, call.query)
    v = views(call)
    return JSON(v.collection("roles", [v.role(r) for r in rows], "roles"))


async def show(call: Call) -> Response:
    enforce(call, "identity:get_role")
    async with read(call) as session:
        role = await roles.get(session, call.params["role_id"])
    return JSON({"role": views(call).role(role)})


async def create(call: Call) -> Response:
    enforce(call, "identity:create_role")
    body = await call.validated(schemas.RoleCreate, "role")
    async with write(call) as session:
        role = await roles.create(session, {**body.known("name", "domain_id", "description", "options"),
                                            "extra": body.extras()})
    return JSON({"role": views(call).role(role)}, status_code=201)


async def update(call: Call) -> Response:
    enforce(call, "identity:update_role")
    body = await call.validated(schemas.RoleUpdate, "role")
    async with write(call) as session:
        role = await roles.update(session, call.params["role_id"], body.known("name", "description", "options"))
    return JSON({"role": views(call).role(role)})


async def delete(call: Call) -> Response:
    enforce(call, "identity:delete_role")
    async with write(call) as session:
        await roles.delete(session, call.params["role_id"])
    return empty()


async def implies(call: Call) -> Response:
    """PUT/HEAD/GET/DELETE ``/v3/roles/{prior}/implies/{implied}``."""
    enforce(call, "identity:implied_roles")
    prior, implied = call.params["prior_role_id"], call.params["implied_role_id"]
    v = views(call)
    async with write(call) as session:
        if call.request.method == "PUT":
            await roles.add_implied(session, prior, implied)
        elif call.request.method == "DELETE":
            await roles.remove_implied(session, prior, implied)
            return empty()
        else:
            await roles.check_implied(session, prior, implied)
        if call.request.method == "HEAD":
            return empty()
        body = {"role_inference": {"prior_role": v.role_ref(await roles.get(session, prior)),
                                   "implies": v.role_ref(await roles.get(session, implied))}}
    return JSON(body, status_code=201 if call.request.method == "PUT" else 200)


async def list_implies(call: Call) -> Response:
    enforce(call, "identity:implied_roles")
    v = views(call)
    async with read(call) as session:
        prior = await roles.get(session, call.params["prior_role_id"])
        rules = await roles.implications(session)
        implied = await roles.by_ids(session, rules.get(prior.id, ()))
    return JSON({"role_inference": {"prior_role": v.role_ref(prior),
                                    "implies": [v.role_ref(r) for r in implied]}})


async def list_inferences(call: Call) -> Response:
    enforce(call, "identity:implied_roles")
    v = views(call)
    async with read(call) as session:
        rules = await roles.implications(session)
        known = {r.id: r for r in await roles.by_ids(session, set(rules) | {i for s in rules.values() for i in s})}
    out = [{"prior_role": v.role_ref(known[p]), "implies": [v.role_ref(known[i]) for i in sorted(imp)]}
           for p, imp in rules.items() if p in known]
    return JSON({"role_inferences": out})
