"""The console proxy's Origin rule (Nova's) and the console URLs it hands out."""

from __future__ import annotations

import pytest

from loom.config import ConsoleSettings
from loom.console import urls
from loom.console.proxy import origin_allowed


@pytest.mark.parametrize(("origin", "host", "allowed", "ok"), [
    (None, "127.0.0.1:6080", [], True),  # no Origin: not a browser
    ("http://127.0.0.1:6080", "127.0.0.1:6080", [], True),
    ("https://console.example:443", "console.example", [], True),  # the port does not matter, the name does
    ("http://CONSOLE.example", "console.example:6080", [], True),
    ("http://[::1]:6080", "[::1]:6080", [], True),
    ("http://evil.example", "127.0.0.1:6080", [], False),
    ("http://dashboard.example", "127.0.0.1:6080", ["dashboard.example"], True),
    ("null", "127.0.0.1:6080", [], False),
    ("file:///tmp/page.html", "127.0.0.1:6080", [], False),
    ("http://127.0.0.1", None, [], False),
])
def test_origin_rule(origin: str | None, host: str | None, allowed: list[str], ok: bool) -> None:
    assert origin_allowed(origin, host, allowed) is ok


def test_console_urls() -> None:
    s = ConsoleSettings(host="0.0.0.0", port=6080)
    assert urls.access_url(s, "novnc", "T0k") == "http://127.0.0.1:6080/vnc_lite.html?path=%3Ftoken%3DT0k"
    assert urls.access_url(s, "serial", "T0k") == "ws://127.0.0.1:6080/?token=T0k"
    s = ConsoleSettings(novnc_base_url="https://cloud.example/novnc/vnc_lite.html",
                        serial_base_url="wss://cloud.example/serial/")
    assert urls.access_url(s, "novnc", "T") == "https://cloud.example/novnc/vnc_lite.html?path=%3Ftoken%3DT"
    assert urls.access_url(s, "serial", "T") == "wss://cloud.example/serial/?token=T"
