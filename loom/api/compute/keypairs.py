"""``/os-keypairs``: a user's keypairs (import, generate, list, show, delete)."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from loom.api.compute.base import base_url, enforce, int_param
from loom.api.http import JSON, Call, empty
from loom.errors import Invalid
from loom.objects import keypairs, quotas
from loom.timeutils import isotime

_NAME = re.compile(r"^[\w\- .@]{1,255}$")


def _user(call: Call) -> str:
    """Whose keypairs: one's own, or (2.10+, admins) another user's."""
    user_id = call.query.get("user_id")
    if user_id and call.version.at_least("2.10") and user_id != call.ctx.user_id:
        enforce(call, "os_compute_api:os-keypairs:index", {"user_id": user_id})
        return user_id
    return call.ctx.user_id or ""


def _summary(call: Call, k: Any) -> dict[str, Any]:
    extra = {"type": k.type} if call.version.at_least("2.2") else {}
    return keypairs.view(k, **extra)


async def list_(call: Call) -> Response:
    enforce(call, "os_compute_api:os-keypairs:index", {"user_id": call.ctx.user_id})
    paged = call.version.at_least("2.35")
    limit = int_param(call, "limit") if paged else None
    async with call.deps.db.session() as session:
        rows = await keypairs.list_(session, _user(call), limit, call.query.get("marker") if paged else None)
    body: dict[str, Any] = {"keypairs": [{"keypair": _summary(call, k)} for k in rows]}
    if paged and limit and len(rows) == limit:
        body["keypairs_links"] = [{"rel": "next",
                                   "href": f"{base_url(call)}/os-keypairs?limit={limit}&marker={rows[-1].name}"}]
    return JSON(body)


async def show(call: Call) -> Response:
    user_id = _user(call)
    enforce(call, "os_compute_api:os-keypairs:show", {"user_id": user_id})
    async with call.deps.db.session() as session:
        k = await keypairs.get(session, user_id, call.params["name"])
    body = keypairs.view(k, user_id=k.user_id, created_at=isotime(k.created_at), deleted=False,
                         deleted_at=None, updated_at=isotime(k.updated_at), id=k.id)
    if call.version.at_least("2.2"):
        body["type"] = k.type
    return JSON({"keypair": body})


async def create(call: Call) -> Response:
    body = await call.json_object("keypair")
    name = body.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name.strip() != name:
        raise Invalid(f"Invalid input for field/attribute name. Value: {name!r}. Keypair names may only contain "
                      "letters, digits, spaces, '-', '_', '.' and '@', 1 to 255 characters.")
    key_type = body.get("type", "ssh")
    if key_type != "ssh" and not call.version.at_least("2.2"):
        raise Invalid("Invalid input for field/attribute keypair. Additional properties are not allowed "
                      "('type' was unexpected)")
    if key_type not in ("ssh", "x509"):
        raise Invalid(f"Invalid input for field/attribute type. Value: {key_type}. must be one of ssh, x509")
    user_id = call.ctx.user_id or ""
    if body.get("user_id") and call.version.at_least("2.10"):
        user_id = str(body["user_id"])
    enforce(call, "os_compute_api:os-keypairs:create", {"user_id": user_id})
    public_key = body.get("public_key")
    private_key = None
    if public_key is None:
        private_key, public_key = keypairs.generate(key_type)
    elif not isinstance(public_key, str):
        raise Invalid("Invalid input for field/attribute public_key: must be a string.")
    async with call.deps.db.session.begin() as session:
        # Counted after the insert, under the user's lock (race-safe), not before.
        k = await keypairs.create(session, user_id=user_id, name=name, public_key=public_key, key_type=key_type)
        await quotas.check_key_pairs(session, call.deps.settings.quota, call.ctx.project_id or "", user_id)
    out = keypairs.view(k, user_id=k.user_id)
    if call.version.at_least("2.2"):
        out["type"] = k.type
    if private_key is not None:
        out["private_key"] = private_key
    return JSON({"keypair": out}, status_code=201 if call.version.at_least("2.2") else 200)


async def delete(call: Call) -> Response:
    user_id = _user(call)
    enforce(call, "os_compute_api:os-keypairs:delete", {"user_id": user_id})
    async with call.deps.db.session.begin() as session:
        await keypairs.delete(session, user_id, call.params["name"])
    return empty(204 if call.version.at_least("2.2") else 202)
