"""A request id follows a request across RPC hops, into every log line."""

from __future__ import annotations

import io
import logging

from loom import context as ctxmod
from loom import log
from loom.bus.rpc import Bus, expose
from loom.config import LogSettings
from loom.context import RequestContext

LOG = logging.getLogger("loom.test.hops")


class Front:
    def __init__(self, bus: Bus) -> None:
        self.back = bus.client("back")

    @expose
    async def handle(self, ctx: RequestContext) -> str:
        LOG.info("front handling")
        # No context passed: the current one travels on by itself.
        return await self.back.call(None, "handle")


class Back:
    @expose
    async def handle(self, ctx: RequestContext) -> str:
        LOG.info("back handling")
        return ctx.request_id


async def test_request_id_follows_rpc_hops(bus: Bus) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    log.setup(LogSettings(level="INFO"), stream=stream)
    try:
        await bus.server("front", "h", Front(bus)).start()
        await bus.server("back", "h", Back()).start()
        ctx = RequestContext()
        token = ctxmod.bind(ctx)
        try:
            LOG.info("api received")
            assert await bus.client("front").call(ctx, "handle") == ctx.request_id
        finally:
            ctxmod.unbind(token)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = [line for line in stream.getvalue().splitlines() if "loom.test.hops" in line]
    assert len(lines) == 3
    assert all(f"[{ctx.request_id}]" in line for line in lines)
