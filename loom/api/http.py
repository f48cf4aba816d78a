"""Request and response plumbing shared by every API: JSON in and out,
the route table, authentication and error mapping in one place."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from loom.context import RequestContext
from loom.errors import Invalid, LoomError, NotFound, Unauthorized

LOG = logging.getLogger(__name__)


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers=headers)


@dataclass
class Call:
    """One API request as a handler sees it."""

    request: Request
    ctx: RequestContext
    deps: Any
    auth: Any = None  # the validated token's TokenInfo, when there is one
    params: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> Any:
        """The negotiated microversion, on APIs that have them."""
        return self.request.scope["state"].get("version")

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params)

    def query_list(self, name: str) -> list[str]:
        return self.request.query_params.getlist(name)

    def flag(self, name: str) -> bool:
        """A query flag present without a value, or with a true one."""
        if name not in self.request.query_params:
            return False
        return self.request.query_params[name].lower() not in ("0", "false", "no", "off")

    async def body(self) -> Any:
        raw = await self.request.body()
        if not raw:
            raise Invalid("The request body is empty; a JSON document is required.")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Invalid(f"Malformed request body: {exc}") from None

    async def json_object(self, key: str | None = None) -> dict[str, Any]:
        """The body as an object, or its ``key`` member (``{"user": {...}}``)."""
        body = await self.body()
        if not isinstance(body, dict):
            raise Invalid("The request body must be a JSON object.")
        if key is None:
            return body
        inner = body.get(key)
        if not isinstance(inner, dict):
            raise Invalid(f"'{key}' is a required property and must be an object.")
        return inner

    async def validated(self, model: type[BaseModel], key: str | None = None) -> Any:
        return validate(model, await self.json_object(key), key)

    def url(self, path: str) -> str:
        return self.deps.settings.public_url + path


def validate(model: type[BaseModel], data: Any, where: str | None = None) -> Any:
    """Validate with a pydantic model; errors name the offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in (where, *err["loc"]) if p not in (None, ""))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "Additional properties are not allowed"
        raise Invalid(f"Invalid input for field '{loc}': {msg}", field=loc) from None


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Handler = Callable[[Call], Awaitable[Response]]
Authenticator = Callable[[Request, RequestContext], Awaitable[tuple[RequestContext, Any]]]
ErrorRenderer = Callable[[LoomError, Any], Response]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    auth: bool = True


def routes(endpoints: list[Endpoint], deps: Any, *, authenticate: Authenticator,
           render_error: ErrorRenderer) -> list[Route]:
    """Starlette routes for a table of endpoints, grouping methods per path.
    Errors are mapped to the API's own format here, in one place."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for ep in endpoints:
        by_path.setdefault(ep.path, {})[ep.method] = ep
    out = []
    for path, methods in by_path.items():
        # Every method reaches the dispatcher, so a 405 too is in the API's format.
        out.append(Route(path, _dispatcher(methods, deps, authenticate, render_error),
                         methods=ALL_METHODS))
    return out


def not_found_handler(deps: Any, render_error: ErrorRenderer) -> Callable[..., Awaitable[Response]]:
    """Unknown paths answer in the API's own error format too."""

    async def handle(request: Request, exc: Exception) -> Response:
        return render_error(NotFound(f"The resource could not be found: {request.url.path}"), deps)

    return handle


def _dispatcher(methods: dict[str, Endpoint], deps: Any, authenticate: Authenticator,
                render_error: ErrorRenderer) -> Callable[[Request], Awaitable[Response]]:
    async def dispatch(request: Request) -> Response:
        ep = methods.get(request.method) or (methods.get("GET") if request.method == "HEAD" else None)
        ctx: RequestContext = request.scope["state"]["ctx"]
        try:
            if ep is None:
                raise MethodNotAllowed(request.method, sorted(methods))
            auth = None
            if ep.auth:
                ctx, auth = await authenticate(request, ctx)
            return await ep.handler(Call(request, ctx, deps, auth, dict(request.path_params)))
        except LoomError as exc:
            response = render_error(exc, deps)
            if exc.status == 401:
                # Every API tells clients where to authenticate, as
                # keystonemiddleware does.
                response.headers["WWW-Authenticate"] = f'Keystone uri="{deps.settings.public_url}/identity"'
            return response
        except Exception:
            LOG.exception("unexpected error handling %s %s", request.method, request.url.path)
            return render_error(LoomError("An unexpected error prevented the server from fulfilling "
                                          "your request."), deps)

    return dispatch


class MethodNotAllowed(LoomError):
    """The resource does not support this method."""

    status = 405

    def __init__(self, method: str = "", allowed: list[str] | None = None) -> None:
        super().__init__(f"The method {method} is not allowed for this resource.", allowed=allowed or [])


def require_token(request: Request) -> str:
    token = request.headers.get("x-auth-token")
    if not token:
        raise Unauthorized("The request you have made requires authentication.")
    return token
