"""Remote consoles on the fake driver: the URLs each microversion hands
out (``remote-consoles`` from 2.6, the ``os-get*Console`` actions before),
Nova's refusals, and the console proxy: a token lets one connection
through, once, before it expires, from no foreign Origin, and the serial
and VNC websockets carry the fake guest's bytes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from loom.console import tokens
from loom.virt.driver import ConsoleEndpoint
from loom.virt.fake import BOOT_MARKER
from tests.functional.cloud import Cloud, running_cloud
from tests.functional.compute_support import (
    act,
    admin_token,
    boot,
    compute_client,
    message,
    settled,
)

NOVNC_MODULE = "export default class RFB {}\n"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    novnc = tmp_path_factory.mktemp("novnc")
    (novnc / "core").mkdir()
    (novnc / "core" / "rfb.js").write_text(NOVNC_MODULE)
    with running_cloud(tmp_path_factory.mktemp("cloud"), **{"image.demo_image": True,
                                                            "console.novnc_dir": str(novnc)}) as c:
        yield c


def nova_at(cloud: Cloud, version: str | None) -> httpx.Client:
    return compute_client(cloud, admin_token(cloud), version)


@pytest.fixture(scope="module")
def nova(cloud: Cloud) -> Iterator[httpx.Client]:
    with nova_at(cloud, "2.79") as client:
        yield client


@pytest.fixture(scope="module")
def server(cloud: Cloud, nova: httpx.Client) -> str:
    server_id = boot(nova, cloud)
    settled(nova, server_id, "ACTIVE")
    return server_id


def remote_console(nova: httpx.Client, server_id: str, protocol: str, kind: str) -> httpx.Response:
    return nova.post(f"/servers/{server_id}/remote-consoles",
                     json={"remote_console": {"protocol": protocol, "type": kind}})


def console_url(nova: httpx.Client, server_id: str, protocol: str = "serial", kind: str = "serial") -> str:
    r = remote_console(nova, server_id, protocol, kind)
    assert r.status_code == 200, r.text
    return str(r.json()["remote_console"]["url"])


def websocket_url(cloud: Cloud, url: str) -> str:
    """The websocket a console URL leads to (noVNC's page takes it in ``path``)."""
    parts = urlsplit(url)
    if parts.scheme == "ws":
        return url
    path = parse_qs(parts.query)["path"][0]
    return f"ws://{parts.netloc}/{path}"


def open_console(url: str, **options: Any) -> ClientConnection:
    return connect(url, open_timeout=10, **options)


def refused(url: str, **options: Any) -> int:
    """The HTTP status of a websocket handshake that must fail."""
    with pytest.raises(InvalidStatus) as exc, open_console(url, **options):
        pass
    return int(exc.value.response.status_code)


def read_until(ws: ClientConnection, wanted: bytes, timeout: float = 10) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while wanted not in data:
        chunk = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        data += chunk if isinstance(chunk, bytes) else chunk.encode()
    return data


# The URLs.


def test_remote_consoles_hand_out_novnc_and_serial_urls(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    port = cloud.settings.console.port
    r = remote_console(nova, server, "vnc", "novnc")
    assert r.status_code == 200, r.text
    body = r.json()["remote_console"]
    assert (body["protocol"], body["type"]) == ("vnc", "novnc")
    parts = urlsplit(body["url"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"http://127.0.0.1:{port}/vnc_lite.html"
    (path,) = parse_qs(parts.query)["path"]
    assert path.startswith("?token=") and len(path) > 40  # Nova's: noVNC's path parameter holds the token

    body = remote_console(nova, server, "serial", "serial").json()["remote_console"]
    assert (body["protocol"], body["type"]) == ("serial", "serial")
    assert body["url"].startswith(f"ws://127.0.0.1:{port}/?token=")
    assert console_url(nova, server) != body["url"]  # a new token each time


def test_remote_consoles_refusals(nova: httpx.Client, server: str) -> None:
    assert message(remote_console(nova, server, "vnc", "serial"), 400) == "Invalid console type serial"
    assert message(remote_console(nova, server, "serial", "novnc"), 400) == "Invalid console type novnc"
    assert message(remote_console(nova, server, "vnc", "xvpvnc"), 400) == "Unavailable console type xvpvnc."
    assert "is not one of" in message(remote_console(nova, server, "telnet", "serial"), 400)
    for protocol, kind in (("spice", "spice-html5"), ("rdp", "rdp-html5"), ("mks", "webmks")):
        assert message(remote_console(nova, server, protocol, kind), 501) == (
            "The requested functionality is not supported.")
    r = nova.post(f"/servers/{server}/remote-consoles", json={"remote_console": {"protocol": "vnc"}})
    assert "'type' is a required property" in message(r, 400)
    r = nova.post(f"/servers/{server}/remote-consoles",
                  json={"remote_console": {"protocol": "vnc", "type": "novnc", "x": 1}})
    assert "Additional properties are not allowed" in message(r, 400)
    assert message(remote_console(nova, "00000000-0000-0000-0000-000000000000", "vnc", "novnc"), 404)


def test_microversions(cloud: Cloud, server: str) -> None:
    with nova_at(cloud, "2.5") as old:
        assert remote_console(old, server, "vnc", "novnc").status_code == 404
    with nova_at(cloud, "2.6") as v26:
        assert "is not one of" in message(remote_console(v26, server, "mks", "webmks"), 400)  # mks is 2.8's
        assert remote_console(v26, server, "vnc", "novnc").status_code == 200
    with nova_at(cloud, "2.8") as v28:
        assert message(remote_console(v28, server, "mks", "webmks"), 501)


def test_the_older_console_actions(cloud: Cloud, server: str) -> None:
    with nova_at(cloud, None) as old:  # 2.1
        r = act(old, server, {"os-getVNCConsole": {"type": "novnc"}})
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"console"} and r.json()["console"]["type"] == "novnc"
        port = cloud.settings.console.port
        assert r.json()["console"]["url"].startswith(f"http://127.0.0.1:{port}/vnc_lite.html?path=%3Ftoken%3D")
        r = act(old, server, {"os-getSerialConsole": {"type": "serial"}})
        assert r.json() == {"console": {"type": "serial", "url": r.json()["console"]["url"]}}
        assert r.json()["console"]["url"].startswith(f"ws://127.0.0.1:{port}/?token=")
        assert message(act(old, server, {"os-getSPICEConsole": {"type": "spice-html5"}}), 501)
        assert message(act(old, server, {"os-getRDPConsole": {"type": "rdp-html5"}}), 501)
        assert "is not one of ['novnc', 'xvpvnc']" in message(act(old, server, {"os-getVNCConsole": {"type": "x"}}),
                                                               400)
        assert "'type' is a required property" in message(act(old, server, {"os-getSerialConsole": {}}), 400)
    with nova_at(cloud, "2.6") as new:
        assert act(new, server, {"os-getVNCConsole": {"type": "novnc"}}).status_code == 404


def test_a_stopped_server_has_no_console(cloud: Cloud, nova: httpx.Client) -> None:
    server_id = boot(nova, cloud)
    settled(nova, server_id, "ACTIVE")
    assert act(nova, server_id, {"os-stop": None}).status_code == 202
    settled(nova, server_id, "SHUTOFF")
    assert remote_console(nova, server_id, "serial", "serial").status_code == 409
    assert "it is SHUTDOWN" in message(remote_console(nova, server_id, "vnc", "novnc"), 409)


# The proxy.


def test_the_serial_websocket_carries_the_guests_bytes(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    with open_console(console_url(nova, server)) as ws:
        assert BOOT_MARKER.encode() in read_until(ws, BOOT_MARKER.encode() + b" ")
        ws.send(b"hello console\r")
        assert b"hello console" in read_until(ws, b"hello console")  # the fake's terminal echoes
        ws.send("typed text")  # a text frame goes through as its UTF-8 bytes
        read_until(ws, b"typed text")


def test_the_vnc_websocket_speaks_rfb_in_binary_frames(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    url = websocket_url(cloud, console_url(nova, server, "vnc", "novnc"))
    with open_console(url, subprotocols=["binary"]) as ws:  # as noVNC asks
        assert ws.subprotocol == "binary"
        assert read_until(ws, b"\n") == b"RFB 003.008\n"


def test_a_token_is_good_for_one_connection(nova: httpx.Client, server: str) -> None:
    url = console_url(nova, server)
    with open_console(url) as ws:
        read_until(ws, BOOT_MARKER.encode())
        assert refused(url) == 403  # while the first is open
    assert refused(url) == 403  # and after
    assert refused(url.split("?")[0] + "?token=made-up") == 403
    assert refused(url.split("?")[0]) == 403


def test_an_expired_token_is_refused(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    assert cloud.runner.db is not None
    endpoint = ConsoleEndpoint("serial", path="/nonexistent")
    stale = cloud.run(tokens.issue(cloud.runner.db, console_type="serial", instance_uuid=server, host="test-host",
                                   endpoint=endpoint, ttl=600, now=time.time() - 601))
    assert refused(f"ws://127.0.0.1:{cloud.settings.console.port}/?token={stale}") == 403


def test_a_foreign_origin_is_refused_and_spends_nothing(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    url = console_url(nova, server)
    port = cloud.settings.console.port
    assert refused(url, origin="http://evil.example") == 403
    assert refused(url, origin="null") == 403
    with open_console(url, origin=f"http://127.0.0.1:{port}") as ws:  # the page the proxy served
        read_until(ws, BOOT_MARKER.encode())


def test_the_proxy_serves_the_novnc_page(nova: httpx.Client, server: str) -> None:
    url = console_url(nova, server, "vnc", "novnc")
    r = httpx.get(url)
    assert r.status_code == 200 and 'import RFB from "./core/rfb.js"' in r.text
    assert httpx.get(url.split("vnc_lite.html")[0] + "core/rfb.js").text == NOVNC_MODULE
    assert httpx.get(url.split("vnc_lite.html")[0] + "core/absent.js").status_code == 404


def test_the_openstack_cli_shows_console_urls(cloud: Cloud, server: str) -> None:
    port = cloud.settings.console.port
    shown = cloud.openstack("console", "url", "show", "--novnc", server)
    assert shown["type"] == "novnc" and shown["url"].startswith(f"http://127.0.0.1:{port}/vnc_lite.html?path=")
    shown = cloud.openstack("console", "url", "show", "--serial", server)
    assert shown["type"] == "serial" and shown["url"].startswith(f"ws://127.0.0.1:{port}/?token=")
    with open_console(shown["url"]) as ws:
        read_until(ws, BOOT_MARKER.encode())
