"""Placement's error format:
``{"errors": [{"status", "title", "detail", "code", "request_id"}]}``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from loom import context
from loom.api.http import JSON
from loom.errors import LoomError
from loom.placement.errors import code_of

# What webob (which Placement answers through) says before the detail.
EXPLANATIONS = {
    400: "The server could not comply with the request since it is either malformed or otherwise incorrect.",
    401: "This server could not verify that you are authorized to access the document you requested.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method specified is not allowed for this resource.",
    406: "The resource could not be generated that was acceptable to your browser (content of type "
         "application/json).",
    409: "There was a conflict when trying to complete your request.",
    500: "The server has either erred or is incapable of performing the requested operation.",
}


def render(exc: LoomError, deps: Any) -> Response:
    status = exc.status
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    explanation = EXPLANATIONS.get(status, "")
    detail = f"{explanation}\n\n {exc.message}  " if explanation else exc.message
    ctx = context.current()
    error = {"status": status, "title": title, "detail": detail, "code": code_of(exc),
             "request_id": ctx.request_id if ctx else None}
    response = JSON({"errors": [error]}, status_code=status)
    if status == 405 and exc.details.get("allowed"):
        response.headers["Allow"] = ", ".join(exc.details["allowed"])
    return response
