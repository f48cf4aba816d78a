"""``GET /placement/``: the version document (no authentication)."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import JSON, Call
from loom.api.placement.microversion import MAX_VERSION, MIN_VERSION, text


async def versions(call: Call) -> Response:
    return JSON({"versions": [{
        "id": "v1.0", "max_version": text(MAX_VERSION), "min_version": text(MIN_VERSION), "status": "CURRENT",
        "links": [{"rel": "self", "href": ""}],
    }]})
