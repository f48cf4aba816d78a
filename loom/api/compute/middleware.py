"""Negotiates the microversion of every compute request and echoes it on
every response, errors included."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loom.api.compute import errors
from loom.api.compute.microversion import negotiate, response_headers
from loom.errors import LoomError


class MicroversionMiddleware:
    def __init__(self, app: ASGIApp, deps: Any) -> None:
        self.app = app
        self.deps = deps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        legacy = "/v2/" in path + "/" and "/v2.1" not in path
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        try:
            version = negotiate(headers, legacy)
        except LoomError as exc:
            response = errors.render(exc, self.deps)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["version"] = version
        extra = [(k.encode(), v.encode()) for k, v in response_headers(version).items()]

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_version)
