"""``/v3/users``, a user's password, projects and groups."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.identity import schemas
from loom.api.identity.base import default_domain, enforce, read, views, write
from loom.errors import Unauthorized
from loom.identity import assignments, groups, projects, users
from loom.identity.passwords import verify_password


def _target(user: object) -> dict[str, object]:
    return {"target": {"user": {"id": getattr(user, "id", None),
                                "domain_id": getattr(user, "domain_id", None)}}}


async def list_(call: Call) -> Response:
    filters = call.query
    if not call.ctx.is_admin and call.ctx.domain_id:
        filters.setdefault("domain_id", call.ctx.domain_id)
    enforce(call, "identity:list_users", {"target": {"domain_id": filters.get("domain_id")}})
    async with read(call) as session:
        rows = await users.list_(session, filters)
    v = views(call)
    return JSON(v.collection("users", [v.user(u) for u in rows], "users"))


async def show(call: Call) -> Response:
    async with read(call) as session:
        user = await users.get(session, call.params["user_id"])
    enforce(call, "identity:get_user", _target(user))
    return JSON({"user": views(call).user(user)})


async def create(call: Call) -> Response:
    body = await call.validated(schemas.UserCreate, "user")
    values = {**body.known("name", "enabled", "default_project_id", "description", "options"),
              "domain_id": body.domain_id or default_domain(call), "extra": body.extras()}
    enforce(call, "identity:create_user", {"target": {"user": {"domain_id": values["domain_id"]}}})
    password_hash = await call.deps.identity.hash(body.password) if body.password else None
    async with write(call) as session:
        user = await users.create(session, values, password_hash)
    return JSON({"user": views(call).user(user)}, status_code=201)


async def update(call: Call) -> Response:
    body = await call.validated(schemas.UserUpdate, "user")
    async with read(call) as session:
        enforce(call, "identity:update_user", _target(await users.get(session, call.params["user_id"])))
    password_hash = await call.deps.identity.hash(body.password) if body.password else None
    async with write(call) as session:
        user = await users.get(session, call.params["user_id"])
        values = body.known("name", "enabled", "default_project_id", "description", "options")
        if body.extras():
            values["extra"] = {**user.extra, **body.extras()}
        user = await users.update(session, user.id, values, password_hash)
    return JSON({"user": views(call).user(user)})


async def delete(call: Call) -> Response:
    async with write(call) as session:
        user = await users.get(session, call.params["user_id"])
        enforce(call, "identity:delete_user", _target(user))
        await users.delete(session, user.id)
    return empty()


async def change_password(call: Call) -> Response:
    """Self-service: the user proves the old password to set a new one."""
    body = await call.validated(schemas.PasswordChange, "user")
    user_id = call.params["user_id"]
    if call.ctx.user_id != user_id:
        enforce(call, "identity:update_user", {"target": {"user": {"id": user_id}}})
    async with read(call) as session:
        user = await users.get(session, user_id)
    if not await verify_password(body.original_password, user.password_hash):
        raise Unauthorized("The original password is wrong.")
    password_hash = await call.deps.identity.hash(body.password)
    async with write(call) as session:
        await users.update(session, user_id, {}, password_hash)
    return empty()


async def list_projects(call: Call) -> Response:
    async with read(call) as session:
        user = await users.get(session, call.params["user_id"])
        enforce(call, "identity:list_user_projects", _target(user))
        ids = await assignments.project_ids_for_user(session, user.id)
        rows = await projects.list_(session, {**call.query, "ids": list(ids)}) if ids else []
    v = views(call)
    return JSON(v.collection("projects", [v.project(p) for p in rows], f"users/{user.id}/projects"))


async def list_groups(call: Call) -> Response:
    async with read(call) as session:
        user = await users.get(session, call.params["user_id"])
        enforce(call, "identity:list_groups_for_user", _target(user))
        rows = await groups.groups_of(session, user.id)
    v = views(call)
    return JSON(v.collection("groups", [v.group(g) for g in rows], f"users/{user.id}/groups"))
