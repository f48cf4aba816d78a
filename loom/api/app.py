"""The one ASGI application serving every HTTP API Loom offers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

import loom
from loom.api import compute, identity, image, placement
from loom.api.middleware import RequestIdMiddleware
from loom.bus.rpc import Bus
from loom.config import Settings
from loom.db.engine import Database
from loom.identity.service import IdentityService
from loom.image.service import ImageService
from loom.policy import Enforcer


@dataclass
class ApiDeps:
    """What every API handler may use, built once per API process."""

    settings: Settings
    db: Database
    bus: Bus
    identity: IdentityService
    enforcer: Enforcer
    images: ImageService


def make_deps(settings: Settings, db: Database, bus: Bus) -> ApiDeps:
    from loom.api.compute.policies import RULES as COMPUTE_RULES
    from loom.api.identity.policies import RULES as IDENTITY_RULES
    from loom.api.image.policies import RULES as IMAGE_RULES
    from loom.api.placement.policies import RULES as PLACEMENT_RULES

    policy_file = Path(settings.identity.policy_file) if settings.identity.policy_file else None
    enforcer = Enforcer([*IDENTITY_RULES, *IMAGE_RULES, *PLACEMENT_RULES, *COMPUTE_RULES], policy_file)
    return ApiDeps(settings, db, bus, IdentityService(settings, db, bus), enforcer, ImageService(settings, db))


def build_app(deps: ApiDeps) -> Starlette:
    async def root(request: Request) -> JSONResponse:
        return JSONResponse({"loom": {"version": loom.__version__, "links": [
            {"rel": "self", "href": deps.settings.public_url + "/"},
        ]}})

    async def healthz(request: Request) -> JSONResponse:
        checks = {}
        try:
            async with deps.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"failed: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "failed", "checks": checks},
                            status_code=200 if ok else 503)

    async def metrics_page(request: Request) -> Response:
        # The process's services, and with several API workers all of theirs summed.
        from loom.metrics import workers as worker_metrics

        body, content_type = await worker_metrics.render()
        return Response(body, media_type=content_type)

    app = Starlette(routes=[
        Route("/", root),
        Route("/healthz", healthz),
        Route("/metrics", metrics_page),
        Mount("/identity", app=identity.build(deps)),
        Mount("/image", app=image.build(deps)),
        Mount("/compute", app=compute.build(deps)),
        Mount("/placement", app=placement.build(deps)),
    ])
    app.state.deps = deps
    app.add_middleware(RequestIdMiddleware)
    return app
