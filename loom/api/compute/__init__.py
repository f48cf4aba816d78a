"""The Compute API v2.1 with microversions (and v2.0), compatible with Nova
as the stock clients use it."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from loom.api import http
from loom.api.compute import errors
from loom.api.compute.middleware import MicroversionMiddleware
from loom.api.compute.routes import ENDPOINTS
from loom.api.identity.authn import authenticator


def build(deps: Any) -> Starlette:
    return Starlette(
        routes=http.routes(ENDPOINTS, deps, authenticate=authenticator(deps.identity), render_error=errors.render),
        exception_handlers={404: http.not_found_handler(deps, errors.render)},
        middleware=[Middleware(MicroversionMiddleware, deps=deps)],
    )
