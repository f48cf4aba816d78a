"""``/v3/auth``: issue, validate, check and revoke tokens, and what a token
gives access to (catalog, projects, domains, system)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.identity.base import enforce, read, views
from loom.errors import Forbidden, Invalid, NotFound, Unauthorized
from loom.identity import assignments, domains, projects
from loom.identity.auth import TokenInfo

SUBJECT = "X-Subject-Token"


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ref(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name}


def token_body(info: TokenInfo, catalog_entries: list[dict[str, Any]] | None) -> dict[str, Any]:
    p = info.payload
    token: dict[str, Any] = {
        "methods": list(p.methods),
        "user": {"id": info.user.id, "name": info.user.name, "domain": _ref(info.user_domain),
                 "password_expires_at": None},
        "audit_ids": list(p.audit_ids),
        "expires_at": _time(p.expires_at),
        "issued_at": _time(p.issued_at),
    }
    if info.project is not None and info.project_domain is not None:
        token["project"] = {**_ref(info.project), "domain": _ref(info.project_domain)}
        token["is_domain"] = False
    elif info.domain is not None:
        token["domain"] = _ref(info.domain)
    elif p.system:
        token["system"] = {p.system: True}
    if p.project_id or p.domain_id or p.system:
        token["roles"] = [{"id": r.id, "name": r.name} for r in info.roles]
        if catalog_entries is not None:
            token["catalog"] = catalog_entries
    if info.app_cred is not None:
        token["application_credential"] = {"id": info.app_cred.id, "name": info.app_cred.name,
                                           "restricted": not info.app_cred.unrestricted}
    return {"token": token}


async def issue(call: Call) -> Response:
    body = await call.json_object()
    auth = body.get("auth")
    if not isinstance(auth, dict):
        raise Invalid("'auth' is a required property and must be an object.")
    token, info = await call.deps.identity.issue(auth)
    entries = None if call.flag("nocatalog") else await call.deps.identity.catalog()
    return JSON(token_body(info, entries), status_code=201, headers={SUBJECT: token})


async def _subject(call: Call) -> TokenInfo:
    token = call.request.headers.get(SUBJECT)
    if not token:
        raise Invalid("X-Subject-Token is required.")
    try:
        info: TokenInfo = await call.deps.identity.validate(token)
    except Unauthorized:
        raise NotFound("Could not find token.") from None
    enforce(call, "identity:validate_token", {"target": {"token": {"user_id": info.user.id}}})
    return info


async def validate(call: Call) -> Response:
    info = await _subject(call)
    if call.request.method == "HEAD":
        return empty(200, {SUBJECT: call.request.headers[SUBJECT]})
    entries = None if call.flag("nocatalog") else await call.deps.identity.catalog()
    return JSON(token_body(info, entries), headers={SUBJECT: call.request.headers[SUBJECT]})


async def revoke(call: Call) -> Response:
    token = call.request.headers.get(SUBJECT)
    if not token:
        raise Invalid("X-Subject-Token is required.")
    try:
        info: TokenInfo = await call.deps.identity.validate(token)
    except Unauthorized:
        raise NotFound("Could not find token.") from None
    enforce(call, "identity:revoke_token", {"target": {"token": {"user_id": info.user.id}}})
    await call.deps.identity.revoke(info.payload)
    return empty()


async def auth_catalog(call: Call) -> Response:
    if not (call.ctx.project_id or call.ctx.domain_id or call.ctx.system_scope):
        raise Forbidden("A scoped token is required to get the catalog.")
    entries = await call.deps.identity.catalog()
    return JSON({"catalog": entries, "links": {"self": views(call).base + "/auth/catalog"}})


async def auth_projects(call: Call) -> Response:
    v = views(call)
    async with read(call) as session:
        ids = await assignments.project_ids_for_user(session, call.ctx.user_id or "")
        rows = await projects.list_(session, {"ids": list(ids), "enabled": True}) if ids else []
        enabled_domains = {d.id for d in await domains.list_(session, {"enabled": True})}
    items = [v.project(p) for p in rows if p.domain_id in enabled_domains]
    return JSON(v.collection("projects", items, "auth/projects"))


async def auth_domains(call: Call) -> Response:
    v = views(call)
    async with read(call) as session:
        ids = await assignments.domain_ids_for_user(session, call.ctx.user_id or "")
        rows = [d for d in await domains.list_(session, {"enabled": True}) if d.id in ids]
    return JSON(v.collection("domains", [v.domain(d) for d in rows], "auth/domains"))


async def auth_system(call: Call) -> Response:
    async with read(call) as session:
        role_ids = await assignments.effective_role_ids(session, call.ctx.user_id or "", system=True)
    system = [{"all": True}] if role_ids else []
    return JSON({"system": system, "links": {"self": views(call).base + "/auth/system"}})

