"""Version documents exactly as Nova serves them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.compute.microversion import LEGACY, MAXIMUM, MINIMUM
from loom.api.http import JSON, Call

MEDIA = "application/vnd.openstack.compute+json;version="


def _versions(call: Call) -> list[dict[str, Any]]:
    root = call.deps.settings.public_url + "/compute"
    return [
        {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
         "links": [{"rel": "self", "href": f"{root}/v2/"}]},
        {"id": "v2.1", "status": "CURRENT", "version": str(MAXIMUM), "min_version": str(MINIMUM),
         "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": f"{root}/v2.1/"}]},
    ]


async def root(call: Call) -> Response:
    return JSON({"versions": _versions(call)})


async def show(call: Call) -> Response:
    legacy = call.version == LEGACY
    version = _versions(call)[0 if legacy else 1]
    version["links"].append({"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"})
    version["media-types"] = [{"base": "application/json", "type": MEDIA + ("2" if legacy else "2.1")}]
    return JSON({"version": version})
