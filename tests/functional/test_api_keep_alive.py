"""Idle keep-alive connections: the API keeps them open for
``api.keep_alive_timeout`` seconds, well past the stock CLI's 5 s polling,
so a poll never lands on a connection the server is closing."""

from __future__ import annotations

import http.client
import time
from pathlib import Path

from loom.config import ApiSettings
from tests.functional.cloud import running_cloud


def _second_request_after(port: int, idle: float) -> bool:
    """Whether a second request on one connection, ``idle`` s after the
    first, is answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        time.sleep(idle)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status == 200
        except (http.client.RemoteDisconnected, ConnectionError):
            return False
    finally:
        conn.close()


def test_the_default_outlasts_the_clis_polling() -> None:
    assert ApiSettings().keep_alive_timeout > 5 * 2


def test_the_setting_reaches_the_server(tmp_path: Path) -> None:
    (tmp_path / "short").mkdir()
    (tmp_path / "long").mkdir()
    with running_cloud(tmp_path / "short", roles=("api",), **{"api.keep_alive_timeout": 0.2}) as cloud:
        assert not _second_request_after(cloud.settings.api.port, 1.0)
    with running_cloud(tmp_path / "long", roles=("api",), **{"api.keep_alive_timeout": 30}) as cloud:
        assert _second_request_after(cloud.settings.api.port, 1.0)
