"""Helpers every placement handler uses: policy, versions, responses."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime
from typing import Any

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.identity.base import credentials
from loom.api.placement.microversion import version
from loom.timeutils import utcnow

PREFIX = "/placement"


def enforce(call: Call, rule: str) -> None:
    call.deps.enforcer.enforce(f"placement:{rule}", credentials(call), {})


def at_least(call: Call, minor: int) -> bool:
    return version(call) >= (1, minor)


def params(call: Call) -> list[tuple[str, str]]:
    return list(call.request.query_params.multi_items())


def respond(call: Call, body: Any, status: int = 200, last_modified: dt.datetime | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """JSON, with ``Last-Modified`` and ``Cache-Control`` from 1.15."""
    response = JSON(body, status_code=status, headers=headers)
    if at_least(call, 15):
        stamp = (last_modified or utcnow()).replace(tzinfo=dt.UTC)
        response.headers["last-modified"] = format_datetime(stamp, usegmt=True)
        response.headers["cache-control"] = "no-cache"
    return response


def no_content(headers: dict[str, str] | None = None) -> Response:
    return empty(204, headers)


def newest(*stamps: dt.datetime | None) -> dt.datetime | None:
    return max((s for s in stamps if s is not None), default=None)


def rp_path(rp_uuid: str) -> str:
    return f"{PREFIX}/resource_providers/{rp_uuid}"
