"""Nova's error format: ``{"itemNotFound": {"code": 404, "message": ...}}``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.http import JSON
from loom.errors import LoomError

FAULTS = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
          409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
          501: "notImplemented", 503: "serviceUnavailable"}


def render(exc: LoomError, deps: Any) -> Response:
    status = exc.status
    return JSON({FAULTS.get(status, "computeFault"): {"code": status, "message": exc.message}}, status_code=status)
