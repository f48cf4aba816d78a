"""Keystone's error format: ``{"error": {"code", "title", "message"}}``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.http import JSON
from loom.errors import LoomError

TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 413: "Request Entity Too Large",
    500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout",
}


def render(exc: LoomError, deps: Any) -> Response:
    status = exc.status
    body = {"error": {"code": status, "title": TITLES.get(status, "Error"), "message": exc.message}}
    return JSON(body, status_code=status)
