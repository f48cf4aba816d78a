"""The console proxy: one listener, two jobs.

- A websocket at any path, with ``?token=...``: the Origin is checked
  (none, as from a non-browser client, or one naming this proxy's host or
  an allowed origin; else 403), the token is spent (unknown, used or
  expired: 403), and the connection is bridged to the console the token
  names: raw bytes both ways, binary frames (the ``binary`` subprotocol
  when the client offers it, as noVNC does). For VNC that is the guest's
  RFB stream, which noVNC speaks; for serial, the guest's serial port.
- noVNC: ``/vnc_lite.html`` (loom.console.page) and noVNC's ``/core`` and
  ``/vendor`` modules, as scripts/novnc.sh installed them from npm.

The proxy reaches consoles by their unix sockets (or host and port), so
it runs where the compute host's sockets are: with ``loom up`` that is the
one machine. It opens the database (the tokens) but not the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from loom.config import Settings
from loom.console import tokens
from loom.console.page import VNC_LITE
from loom.db.engine import Database
from loom.errors import Invalid
from loom.virt.driver import ConsoleEndpoint

LOG = logging.getLogger(__name__)
# A websocket close code before accepting: uvicorn answers the upgrade with 403.
POLICY_VIOLATION = 1008
CHUNK = 64 << 10


def novnc_dir(settings: Settings) -> Path:
    return Path(settings.console.novnc_dir) if settings.console.novnc_dir else settings.data_dir / "novnc"


def origin_allowed(origin: str | None, host_header: str | None, allowed: list[str]) -> bool:
    """Nova's rule: no Origin (a non-browser client) passes; else its host
    name must be the one the client reached this proxy by, or an allowed one."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    expected = {name.lower() for name in allowed}
    if host_header:
        expected.add((urlsplit(f"//{host_header}").hostname or "").lower())
    return parts.hostname.lower() in expected


async def _open(endpoint: ConsoleEndpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if endpoint.path:
        return await asyncio.open_unix_connection(endpoint.path)
    return await asyncio.open_connection(endpoint.host, endpoint.port)


async def _relay(websocket: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes both ways until either side closes."""

    async def to_console() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode()
            writer.write(data)
            await writer.drain()

    async def to_client() -> None:
        while data := await reader.read(CHUNK):
            await websocket.send_bytes(data)

    tasks = [asyncio.create_task(to_console()), asyncio.create_task(to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, WebSocketDisconnect, RuntimeError):
                await task


def build_app(settings: Settings, db: Database) -> Starlette:
    novnc = novnc_dir(settings)
    allowed = list(settings.console.allowed_origins)

    async def console(websocket: WebSocket) -> None:
        if not origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host"), allowed):
            LOG.info("console connection refused: Origin %s does not match this host",
                     websocket.headers.get("origin"))
            await websocket.close(POLICY_VIOLATION)
            return
        try:
            target = await tokens.use(db, websocket.query_params.get("token", ""))
        except tokens.TokenRefused as exc:
            LOG.info("console connection refused: %s", exc.message)
            await websocket.close(POLICY_VIOLATION)
            return
        try:
            reader, writer = await _open(target.endpoint)
        except OSError as exc:
            LOG.warning("the %s console of %s is unreachable: %s", target.console_type, target.instance_uuid, exc)
            await websocket.close(POLICY_VIOLATION)
            return
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol="binary" if "binary" in offered else None)
        LOG.info("%s console of %s opened", target.console_type, target.instance_uuid)
        try:
            await _relay(websocket, reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            with contextlib.suppress(RuntimeError):
                await websocket.close()
            LOG.info("%s console of %s closed", target.console_type, target.instance_uuid)

    async def page(request: Request) -> Response:
        if not (novnc / "core" / "rfb.js").is_file():
            return PlainTextResponse(f"noVNC is not installed in {novnc}: run scripts/novnc.sh", status_code=503)
        return HTMLResponse(VNC_LITE, headers={"Cache-Control": "no-store"})

    return Starlette(routes=[
        WebSocketRoute("/{path:path}", console),
        Route("/vnc_lite.html", page),
        Route("/vnc_auto.html", page),  # the page name of Nova's older default URL
        Mount("/core", StaticFiles(directory=novnc / "core", check_dir=False)),
        Mount("/vendor", StaticFiles(directory=novnc / "vendor", check_dir=False)),
    ])


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the runner owns signal handling


def _listen(host: str, port: int) -> socket.socket:
    """A bound socket, or Invalid: uvicorn, binding its own, would exit the
    process instead, and the API's proxy failing must not stop the API."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise Invalid(f"the console proxy could not listen on {host}:{port}: {exc.strerror}") from None
    return sock


class ConsoleProxy:
    """The proxy's listener, started and stopped with its process's services."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.config = uvicorn.Config(build_app(settings, db), host=settings.console.host,
                                     port=settings.console.port, log_config=None, access_log=False,
                                     lifespan="off", server_header=False)
        self.server = _Server(self.config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port listened on (the chosen one when configured as 0)."""
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    async def start(self) -> None:
        sock = _listen(self.config.host, self.config.port)
        self._task = asyncio.create_task(self.server.serve([sock]), name="console-proxy")
        while not self.server.started:
            if self._task.done():
                sock.close()
                await self._task
                raise Invalid(f"the console proxy could not start on {self.config.host}:{self.config.port}")
            await asyncio.sleep(0.01)
        LOG.info("console proxy on %s:%d (noVNC from %s)", self.config.host, self.port,
                 novnc_dir(self.settings))

    async def stop(self) -> None:
        if self._task is not None:
            self.server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
