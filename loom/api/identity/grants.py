"""Role grants on projects, domains and the system, and the
``/v3/role_assignments`` listing."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.identity.base import enforce, read, views, write
from loom.errors import Invalid
from loom.identity import assignments, domains, projects, roles
from loom.identity.assignments import Grant

RULES = {"PUT": "identity:create_grant", "DELETE": "identity:revoke_grant",
         "HEAD": "identity:check_grant", "GET": "identity:check_grant"}


def _actor(call: Call) -> tuple[assignments.Actor, str]:
    if "user_id" in call.params:
        return "user", call.params["user_id"]
    return "group", call.params["group_id"]


async def _target(call: Call, session: Any) -> tuple[assignments.Target, str, dict[str, Any]]:
    if "project_id" in call.params:
        project = await projects.get(session, call.params["project_id"])
        return "project", project.id, {"project": {"id": project.id, "domain_id": project.domain_id}}
    if "domain_id" in call.params:
        domain = await domains.get(session, call.params["domain_id"])
        return "domain", domain.id, {"domain": {"id": domain.id}}
    return "system", "all", {}


async def grant(call: Call) -> Response:
    """PUT/HEAD/GET/DELETE ``/v3/{projects|domains}/{id}/{users|groups}/{id}/roles/{role}``
    and the ``/v3/system/...`` and ``OS-INHERIT`` forms."""
    inherited = call.request.url.path.find("/OS-INHERIT/") >= 0
    actor, actor_id = _actor(call)
    method = call.request.method
    async with write(call) as session:
        target, target_id, target_doc = await _target(call, session)
        rule = "identity:system_grants" if target == "system" else RULES[method]
        enforce(call, rule, {"target": target_doc})
        args = (session, actor, actor_id, target, target_id, call.params["role_id"], inherited)
        if method == "PUT":
            await assignments.grant(*args)
        elif method == "DELETE":
            await assignments.revoke(*args)
        else:
            await assignments.check(*args)
    return empty()


async def list_roles(call: Call) -> Response:
    """GET ``/v3/{projects|domains|system}/.../{users|groups}/{id}/roles``."""
    inherited = call.request.url.path.find("/OS-INHERIT/") >= 0
    actor, actor_id = _actor(call)
    async with read(call) as session:
        target, target_id, target_doc = await _target(call, session)
        rule = "identity:system_grants" if target == "system" else "identity:list_grants"
        enforce(call, rule, {"target": target_doc})
        ids = await assignments.direct_role_ids(session, actor, actor_id, target, target_id, inherited)
        rows = await roles.by_ids(session, ids)
    v = views(call)
    path = call.request.url.path.split("/v3/", 1)[-1]
    return JSON(v.collection("roles", [v.role(r) for r in rows], path))


async def role_assignments(call: Call) -> Response:
    q = call.query
    filters: dict[str, Any] = {
        "user_id": q.get("user.id"), "group_id": q.get("group.id"), "role_id": q.get("role.id"),
        "domain_id": q.get("scope.domain.id"), "system": q.get("scope.system"),
        "inherited": q.get("scope.OS-INHERIT:inherited_to") == "projects",
    }
    effective = call.flag("effective")
    include_names = call.flag("include_names")
    if effective and filters["group_id"]:
        raise Invalid("Combining effective and group filter will always result in an empty list.")
    if call.flag("include_subtree") and not q.get("scope.project.id"):
        raise Invalid("scope.project.id must be specified if include_subtree is also specified.")
    if not call.ctx.is_admin and call.ctx.domain_id:
        filters["domain_id"] = filters["domain_id"] or call.ctx.domain_id
    enforce(call, "identity:list_role_assignments", {"target": {"domain_id": filters["domain_id"]}})
    async with read(call) as session:
        if q.get("scope.project.id"):
            project_ids = {q["scope.project.id"]}
            if call.flag("include_subtree"):
                project_ids |= await _subtree(session, q["scope.project.id"])
            filters["project_ids"] = project_ids
        found = await assignments.list_grants(session, filters, effective)
        names = await assignments.names(session, found) if include_names else {}
    v = views(call)
    items = [_render(call, g, names) for g in found]
    return JSON(v.collection("role_assignments", items, "role_assignments"))


async def _subtree(session: Any, project_id: str) -> set[str]:
    found: set[str] = set()
    frontier = [project_id]
    while frontier:
        children = [p.id for p in await projects.list_(session, {}) if p.parent_id in frontier]
        frontier = [c for c in children if c not in found]
        found.update(frontier)
    return found


def _named(obj_id: str, names: dict[str, Any], with_domain: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": obj_id}
    row = names.get(obj_id)
    if row is not None:
        out["name"] = row.name
        domain_id = getattr(row, "domain_id", None)
        if with_domain and domain_id:
            domain = names.get(domain_id)
            out["domain"] = {"id": domain_id, **({"name": domain.name} if domain else {})}
    return out


def _render(call: Call, g: Grant, names: dict[str, Any]) -> dict[str, Any]:
    base = views(call).base
    item: dict[str, Any] = {"role": _named(g.role_id, names)}
    if names and item["role"].get("domain") is None:
        item["role"].pop("domain", None)
    item[g.actor] = _named(g.actor_id, names)
    if g.target == "system":
        item["scope"] = {"system": {"all": True}}
    else:
        item["scope"] = {g.target: _named(g.target_id, names) if g.target == "project"
                         else _named(g.target_id, names, with_domain=False)}
    if g.inherited:
        item["scope"]["OS-INHERIT:inherited_to"] = "projects"
    actor_id = g.via_group or g.actor_id
    actor_kind = "groups" if g.via_group else f"{g.actor}s"
    target_id = g.via_target or g.target_id
    target_kind = f"{g.via_target_type or g.target}s"
    role_id = g.via_role or g.role_id
    if g.target == "system":
        link = f"{base}/system/{actor_kind}/{actor_id}/roles/{role_id}"
    else:
        prefix = "OS-INHERIT/" if g.inherited or g.via_target else ""
        link = f"{base}/{prefix}{target_kind}/{target_id}/{actor_kind}/{actor_id}/roles/{role_id}"
        if g.via_target:
            link += "/inherited_to_projects"
    item["links"] = {"assignment": link}
    if g.via_group:
        item["links"]["membership"] = f"{base}/groups/{g.via_group}/users/{g.actor_id}"
    if g.via_role:
        item["links"]["prior_role"] = f"{base}/roles/{g.via_role}"
    return item
