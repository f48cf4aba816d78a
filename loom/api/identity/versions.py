"""Version discovery documents, as Keystone serves them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.http import JSON, Call

VERSION = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"


def _v3(call: Call) -> dict[str, Any]:
    return {
        "id": VERSION, "status": "stable", "updated": UPDATED,
        "links": [{"rel": "self", "href": call.url("/identity/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


async def root(call: Call) -> Response:
    return JSON({"versions": {"values": [_v3(call)]}}, status_code=300)


async def v3(call: Call) -> Response:
    return JSON({"version": _v3(call)})
