"""ASGI middleware shared by every API: the request id, and each request counted and timed."""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loom import context as ctxmod
from loom import metrics
from loom.context import RequestContext, new_request_id

LOG = logging.getLogger("loom.api")

# Clients may pass their own id (OpenStack's global request id) to stitch
# logs across clouds; only well-formed ones are trusted.
_GLOBAL_ID = re.compile(r"^req-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")


_APIS = frozenset({"identity", "image", "compute", "placement", "healthz", "metrics"})


def _api_of(path: str) -> str:
    """The API a path belongs to: a short, fixed list of label values."""
    first = path.lstrip("/").split("/", 1)[0]
    return first if first in _APIS else "other"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        global_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-openstack-request-id":
                candidate = value.decode("latin-1")
                if _GLOBAL_ID.match(candidate):
                    global_id = candidate
        ctx = RequestContext(request_id=request_id, global_request_id=global_id)
        scope.setdefault("state", {})["ctx"] = ctx
        token = ctxmod.bind(ctx)
        started = time.perf_counter()
        status = 500
        header = (b"x-openstack-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            LOG.info('"%s %s" status: %d time: %.4f', scope["method"], scope["path"], status, elapsed)
            metrics.API_REQUEST.labels(_api_of(scope["path"]), scope["method"], str(status)).observe(elapsed)
            ctxmod.unbind(token)
