"""Helpers every identity handler uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from loom.api.http import Call
from loom.api.identity.views import Views
from loom.identity.common import DEFAULT_DOMAIN_ID


def enforce(call: Call, rule: str, target: dict[str, Any] | None = None) -> None:
    call.deps.enforcer.enforce(rule, credentials(call), target or {})


def credentials(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    return {
        "user_id": ctx.user_id, "project_id": ctx.project_id, "domain_id": ctx.domain_id,
        "project_domain_id": ctx.project_domain_id, "user_domain_id": ctx.user_domain_id,
        "system_scope": ctx.system_scope, "roles": ctx.roles, "is_admin": ctx.is_admin,
    }


def views(call: Call) -> Views:
    return Views(call.deps.settings.public_url)


def default_domain(call: Call) -> str:
    """Where a new resource goes when the request names no domain: the
    token's domain, else its project's domain, else the default one."""
    return call.ctx.domain_id or call.ctx.project_domain_id or DEFAULT_DOMAIN_ID


def read(call: Call) -> Any:
    return call.deps.db.session()


@asynccontextmanager
async def write(call: Call) -> AsyncIterator[AsyncSession]:
    """A transaction; once it commits, cached tokens are checked afresh."""
    async with call.deps.db.session.begin() as session:
        yield session
    await call.deps.identity.changed()
