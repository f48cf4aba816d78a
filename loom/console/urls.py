"""The console URLs handed to users: a base per console type (configured,
or derived from where the proxy listens) and the token in its query."""

from __future__ import annotations

from urllib.parse import urlencode

from loom.config import ConsoleSettings


def _host(s: ConsoleSettings) -> str:
    host = s.host if s.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def novnc_base(s: ConsoleSettings) -> str:
    return s.novnc_base_url or f"http://{_host(s)}:{s.port}/vnc_lite.html"


def serial_base(s: ConsoleSettings) -> str:
    return s.serial_base_url or f"ws://{_host(s)}:{s.port}/"


def access_url(s: ConsoleSettings, console_type: str, token: str) -> str:
    """Nova's: noVNC takes the websocket's path (with the token) in its
    ``path`` parameter (noVNC 1.1 dropped a top-level ``token``); a serial
    client connects to the websocket URL itself."""
    if console_type == "novnc":
        return f"{novnc_base(s)}?{urlencode({'path': f'?token={token}'})}"
    return f"{serial_base(s)}?token={token}"
