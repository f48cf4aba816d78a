"""``/v3/users/{user_id}/application_credentials``."""

from __future__ import annotations

import datetime as dt

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.identity import schemas
from loom.api.identity.base import enforce, read, views, write
from loom.errors import Forbidden, Invalid, NotFound
from loom.identity import app_creds, assignments, projects, roles
from loom.identity.passwords import generate_secret
from loom.timeutils import utcnow


def _target(user_id: str) -> dict[str, object]:
    return {"target": {"user": {"id": user_id}}}


def _parse_expiry(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"Invalid expires_at {value!r}: use ISO 8601.") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    if parsed <= utcnow():
        raise Invalid("expires_at must be in the future.")
    return parsed


async def create(call: Call) -> Response:
    user_id = call.params["user_id"]
    enforce(call, "identity:create_application_credential", _target(user_id))
    info = call.auth
    _refuse_restricted(call, "create")
    if not call.ctx.project_id:
        raise Forbidden("A project-scoped token is required to create an application credential.")
    body = await call.validated(schemas.AppCredentialCreate, "application_credential")
    if body.access_rules:
        raise Invalid("Access rules are not supported.")
    expires = _parse_expiry(body.expires_at)
    secret = body.secret or generate_secret()
    secret_hash = await call.deps.identity.hash(secret)
    async with write(call) as session:
        project = await projects.get(session, call.ctx.project_id)
        held = await assignments.effective_role_ids(session, user_id, project=project)
        if info is not None and info.app_cred is not None:
            held &= await roles.expand(session, info.app_cred.roles)
        wanted = await _wanted_roles(session, body.roles, held)
        cred = await app_creds.create(
            session, user_id=user_id, project_id=project.id, name=body.name, secret_hash=secret_hash,
            role_ids=sorted(wanted), description=body.description, expires_at=expires,
            unrestricted=body.unrestricted)
        role_rows = await roles.by_ids(session, cred.roles)
    out = views(call).app_cred(cred, role_rows)
    out["secret"] = secret
    return JSON({"application_credential": out}, status_code=201)


def _refuse_restricted(call: Call, what: str) -> None:
    """A restricted application credential must not manage credentials:
    a leaked one could otherwise mint or wipe the others."""
    info = call.auth
    if info is not None and info.app_cred is not None and not info.app_cred.unrestricted:
        raise Forbidden(f"A restricted application credential cannot {what} application credentials.")


async def _wanted_roles(session: object, refs: list[schemas.RoleRef] | None, held: set[str]) -> set[str]:
    if not refs:
        return held
    wanted: set[str] = set()
    for ref in refs:
        try:
            role = await (roles.get(session, ref.id) if ref.id  # type: ignore[arg-type]
                          else roles.get_by_name(session, ref.name or ""))  # type: ignore[arg-type]
        except NotFound:
            raise Invalid(f"Role {ref.id or ref.name} does not exist.") from None
        if role.id not in held:
            raise Forbidden(f"You cannot delegate role {role.name}: you do not hold it on this project.")
        wanted.add(role.id)
    return wanted


async def list_(call: Call) -> Response:
    user_id = call.params["user_id"]
    enforce(call, "identity:list_application_credentials", _target(user_id))
    v = views(call)
    async with read(call) as session:
        creds = await app_creds.list_(session, user_id, call.query)
        items = [v.app_cred(c, await roles.by_ids(session, c.roles)) for c in creds]
    return JSON(v.collection("application_credentials", items, f"users/{user_id}/application_credentials"))


async def show(call: Call) -> Response:
    user_id = call.params["user_id"]
    enforce(call, "identity:get_application_credential", _target(user_id))
    async with read(call) as session:
        cred = await app_creds.get(session, user_id, call.params["cred_id"])
        role_rows = await roles.by_ids(session, cred.roles)
    return JSON({"application_credential": views(call).app_cred(cred, role_rows)})


async def delete(call: Call) -> Response:
    user_id = call.params["user_id"]
    enforce(call, "identity:delete_application_credential", _target(user_id))
    _refuse_restricted(call, "delete")
    async with write(call) as session:
        await app_creds.delete(session, user_id, call.params["cred_id"])
    return empty()
