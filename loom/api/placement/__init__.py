"""The Placement API, compatible with OpenStack Placement up to the
microversion in ``microversion.MAX_VERSION``; built on ``loom.placement``."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from loom.api import http
from loom.api.identity.authn import authenticator
from loom.api.placement import errors
from loom.api.placement.microversion import MicroversionMiddleware
from loom.api.placement.routes import ENDPOINTS


def build(deps: Any) -> Starlette:
    return Starlette(
        routes=http.routes(ENDPOINTS, deps, authenticate=authenticator(deps.identity), render_error=errors.render),
        exception_handlers={404: http.not_found_handler(deps, errors.render)},
        middleware=[Middleware(MicroversionMiddleware, render_error=errors.render)],
    )
