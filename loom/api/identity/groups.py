"""``/v3/groups`` and group membership."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.identity import schemas
from loom.api.identity.base import default_domain, enforce, read, views, write
from loom.identity import groups


def _target(group: object) -> dict[str, object]:
    return {"target": {"group": {"id": getattr(group, "id", None),
                                 "domain_id": getattr(group, "domain_id", None)}}}


async def list_(call: Call) -> Response:
    filters = call.query
    if not call.ctx.is_admin and call.ctx.domain_id:
        filters.setdefault("domain_id", call.ctx.domain_id)
    enforce(call, "identity:list_groups", {"target": {"domain_id": filters.get("domain_id")}})
    async with read(call) as session:
        rows = await groups.list_(session, filters)
    v = views(call)
    return JSON(v.collection("groups", [v.group(g) for g in rows], "groups"))


async def show(call: Call) -> Response:
    async with read(call) as session:
        group = await groups.get(session, call.params["group_id"])
    enforce(call, "identity:get_group", _target(group))
    return JSON({"group": views(call).group(group)})


async def create(call: Call) -> Response:
    body = await call.validated(schemas.GroupCreate, "group")
    values = {**body.known("name", "description"), "domain_id": body.domain_id or default_domain(call),
              "extra": body.extras()}
    enforce(call, "identity:create_group", {"target": {"group": {"domain_id": values["domain_id"]}}})
    async with write(call) as session:
        group = await groups.create(session, values)
    return JSON({"group": views(call).group(group)}, status_code=201)


async def update(call: Call) -> Response:
    body = await call.validated(schemas.GroupUpdate, "group")
    async with write(call) as session:
        group = await groups.get(session, call.params["group_id"])
        enforce(call, "identity:update_group", _target(group))
        values = body.known("name", "description")
        if body.extras():
            values["extra"] = {**group.extra, **body.extras()}
        group = await groups.update(session, group.id, values)
    return JSON({"group": views(call).group(group)})


async def delete(call: Call) -> Response:
    async with write(call) as session:
        group = await groups.get(session, call.params["group_id"])
        enforce(call, "identity:delete_group", _target(group))
        await groups.delete(session, group.id)
    return empty()


async def list_users(call: Call) -> Response:
    async with read(call) as session:
        group = await groups.get(session, call.params["group_id"])
        enforce(call, "identity:list_users_in_group", _target(group))
        rows = await groups.members(session, group.id)
    v = views(call)
    return JSON(v.collection("users", [v.user(u) for u in rows], f"groups/{group.id}/users"))


async def membership(call: Call) -> Response:
    """PUT adds, HEAD/GET checks, DELETE removes a user from a group."""
    rule = {"PUT": "identity:add_user_to_group", "DELETE": "identity:remove_user_from_group"}.get(
        call.request.method, "identity:check_user_in_group")
    group_id, user_id = call.params["group_id"], call.params["user_id"]
    async with write(call) as session:
        group = await groups.get(session, group_id)
        enforce(call, rule, _target(group))
        if call.request.method == "PUT":
            await groups.add_member(session, group_id, user_id)
        elif call.request.method == "DELETE":
            await groups.remove_member(session, group_id, user_id)
        else:
            await groups.is_member(session, group_id, user_id)
    return empty()
