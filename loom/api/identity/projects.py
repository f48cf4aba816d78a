"""``/v3/projects``."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.identity import schemas
from loom.api.identity.base import default_domain, enforce, read, views, write
from loom.errors import Invalid
from loom.identity import projects


def _target(project: object) -> dict[str, object]:
    return {"target": {"project": {"id": getattr(project, "id", None),
                                   "domain_id": getattr(project, "domain_id", None)}}}


async def list_(call: Call) -> Response:
    filters = call.query
    if not call.ctx.is_admin and call.ctx.domain_id:
        # A domain-scoped token sees its own domain's projects.
        filters.setdefault("domain_id", call.ctx.domain_id)
    enforce(call, "identity:list_projects", {"target": {"domain_id": filters.get("domain_id")}})
    async with read(call) as session:
        rows = await projects.list_(session, filters)
    v = views(call)
    return JSON(v.collection("projects", [v.project(p) for p in rows], "projects"))


async def show(call: Call) -> Response:
    async with read(call) as session:
        project = await projects.get(session, call.params["project_id"])
    enforce(call, "identity:get_project", _target(project))
    return JSON({"project": views(call).project(project)})


async def create(call: Call) -> Response:
    body = await call.validated(schemas.ProjectCreate, "project")
    if body.is_domain:
        raise Invalid("Projects acting as domains are not supported; create a domain instead.")
    values = {**body.known("name", "description", "enabled", "parent_id", "tags"),
              "domain_id": body.domain_id or default_domain(call), "extra": body.extras()}
    enforce(call, "identity:create_project", {"target": {"project": {"domain_id": values["domain_id"]}}})
    async with write(call) as session:
        project = await projects.create(session, values)
    return JSON({"project": views(call).project(project)}, status_code=201)


async def update(call: Call) -> Response:
    body = await call.validated(schemas.ProjectUpdate, "project")
    async with write(call) as session:
        project = await projects.get(session, call.params["project_id"])
        enforce(call, "identity:update_project", _target(project))
        values = body.known("name", "description", "enabled", "tags", "domain_id")
        if body.extras():
            values["extra"] = {**project.extra, **body.extras()}
        project = await projects.update(session, project.id, values)
    return JSON({"project": views(call).project(project)})


async def delete(call: Call) -> Response:
    async with write(call) as session:
        project = await projects.get(session, call.params["project_id"])
        enforce(call, "identity:delete_project", _target(project))
        await projects.delete(session, project.id)
    return empty()
