"""Glance's error format: ``{"message", "code": "404 Not Found", "title"}``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from loom.api.http import JSON
from loom.errors import LoomError


def render(exc: LoomError, deps: Any) -> Response:
    status = exc.status
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return JSON({"message": exc.message, "code": f"{status} {title}", "title": title}, status_code=status)
