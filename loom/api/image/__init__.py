"""The Image API v2, compatible with Glance as the stock clients use it."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from loom.api import http
from loom.api.identity.authn import authenticator
from loom.api.image import errors
from loom.api.image.routes import ENDPOINTS


def build(deps: Any) -> Starlette:
    return Starlette(
        routes=http.routes(ENDPOINTS, deps, authenticate=authenticator(deps.identity), render_error=errors.render),
        exception_handlers={404: http.not_found_handler(deps, errors.render)},
    )
