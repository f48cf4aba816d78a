"""Token authentication for API requests: X-Auth-Token in, request
context out. Every API uses this; only the error format differs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from loom.api.http import require_token
from loom.context import RequestContext
from loom.identity.service import context_for


def authenticator(identity: Any):  # type: ignore[no-untyped-def]
    async def authenticate(request: Request, ctx: RequestContext) -> tuple[RequestContext, Any]:
        info = await identity.validate(require_token(request))
        return context_for(info, ctx.request_id, ctx.global_request_id), info

    return authenticate
