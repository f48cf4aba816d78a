"""Version discovery, as Glance serves it."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import JSON, Call

# The newest first, as Glance lists them.
VERSIONS = ("2.16", "2.15", "2.9", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")


async def versions(call: Call) -> Response:
    href = call.url("/image/v2/")
    values = [{"id": f"v{v}", "status": "CURRENT" if i == 0 else "SUPPORTED",
               "links": [{"rel": "self", "href": href}]} for i, v in enumerate(VERSIONS)]
    return JSON({"versions": values}, status_code=300 if call.request.url.path.rstrip("/").endswith("image")
                else 200)
