"""Placement microversions: ``OpenStack-API-Version: placement 1.N`` in,
the version served echoed back (with ``Vary``) on every response.

What each version adds is listed in docs/placement.md; handlers ask
``version(call) >= (1, N)``.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loom.api.http import Call
from loom.errors import LoomError
from loom.placement.errors import PlacementInvalid

MIN_VERSION = (1, 0)
MAX_VERSION = (1, 39)
SCOPE_KEY = "placement.version"
HEADER = "openstack-api-version"
_VALUE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


class NotAcceptable(LoomError):
    """The requested microversion is not supported."""

    status = 406
    code = "placement.undefined_code"


def text(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def parse(header: str | None) -> tuple[int, int]:
    """The version a request asks for: the placement entry of the header,
    ``latest``, or 1.0 when it names none. Raises ``Invalid`` or
    ``NotAcceptable``."""
    if not header:
        return MIN_VERSION
    wanted = None
    for part in header.split(","):
        service, _, value = part.strip().partition(" ")
        if service.lower() == "placement":
            wanted = value.strip()
    if wanted is None:
        return MIN_VERSION
    if wanted == "latest":
        return MAX_VERSION
    match = _VALUE.match(wanted)
    if not match:
        raise PlacementInvalid(f"invalid version string: {wanted}")
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise NotAcceptable(f"Unacceptable version header: {wanted}")
    return version


def version(call: Call) -> tuple[int, int]:
    return call.request.scope.get(SCOPE_KEY, MIN_VERSION)  # type: ignore[no-any-return]


class MicroversionMiddleware:
    """Parses the request's version into the scope and adds the version
    headers to the response. A bad version header is answered here."""

    def __init__(self, app: ASGIApp, render_error: object) -> None:
        self.app = app
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = None
        for name, value in scope.get("headers", ()):
            if name == HEADER.encode():
                raw = value.decode("latin-1")
        try:
            wanted = parse(raw)
        except LoomError as exc:
            response = self.render_error(exc, None)  # type: ignore[operator]
            _add_headers(response.headers, MIN_VERSION)
            await response(scope, receive, send)
            return
        scope[SCOPE_KEY] = wanted

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"openstack-api-version", f"placement {text(wanted)}".encode()),
                                      (b"vary", b"openstack-api-version")]
            await send(message)

        await self.app(scope, receive, send_with_version)


def _add_headers(headers: object, v: tuple[int, int]) -> None:
    headers["openstack-api-version"] = f"placement {text(v)}"  # type: ignore[index]
    headers["vary"] = "openstack-api-version"  # type: ignore[index]
