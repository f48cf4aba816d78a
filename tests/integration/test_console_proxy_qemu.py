"""Remote consoles of a real guest: a whole cloud in one process on the
qemu driver, its console proxy serving noVNC (installed from npm by
scripts/novnc.sh). The serial websocket carries the guest's marker line,
and headless Chromium (Debian's) opens the noVNC page through the proxy,
reaches the Connected state and sees the guest's screen."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.functional.cloud import Cloud, running_cloud
from tests.functional.compute_support import admin_token, compute_client
from tests.integration import browser
from tests.integration.test_qemu_api import qemu_state  # noqa: F401  (module fixture)
from tests.integration.test_qemu_driver import accelerator, guest_image  # noqa: F401  (session fixtures)

ROOT = Path(__file__).resolve().parents[2]
READY = b"LOOM-GUEST-READY"
# The canvas counts as showing something once this many pixels differ from its first one.
DRAWN_PIXELS = 200


@pytest.fixture(scope="module")
def novnc() -> Path:
    if shutil.which("npm") is None and not (ROOT / ".loom" / "novnc" / "core" / "rfb.js").is_file():
        pytest.skip("npm is not installed and noVNC is not in .loom/novnc (make test installs it)")
    out = subprocess.run([str(ROOT / "scripts" / "novnc.sh")], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path, accelerator: str,  # noqa: F811
          qemu_state: Path, novnc: Path) -> Iterator[Cloud]:  # noqa: F811
    with running_cloud(tmp_path_factory.mktemp("cloud"), **{
            "image.demo_image": True, "compute.driver": "qemu", "compute.qemu_state_dir": str(qemu_state),
            "compute.qemu_accelerator": accelerator, "compute.qemu_fallback_image": str(guest_image),
            "console.novnc_dir": str(novnc)}) as c:
        yield c


@pytest.fixture(scope="module")
def nova(cloud: Cloud) -> Iterator[httpx.Client]:
    with compute_client(cloud, admin_token(cloud), timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def server(cloud: Cloud, nova: httpx.Client) -> Iterator[str]:
    flavor = nova.post("/flavors", json={"flavor": {"name": "console.tiny", "ram": 128, "vcpus": 1, "disk": 1}})
    assert flavor.status_code == 200, flavor.text
    image = httpx.get(cloud.url + "/image/v2/images", params={"name": "demo"},
                      headers={"X-Auth-Token": nova.headers["X-Auth-Token"]}).json()["images"][0]["id"]
    r = nova.post("/servers", json={"server": {"name": "console-vm", "imageRef": image,
                                               "flavorRef": flavor.json()["flavor"]["id"], "networks": "none"}})
    assert r.status_code == 202, r.text
    server_id = str(r.json()["server"]["id"])
    wait_active(nova, server_id)
    yield server_id
    nova.delete(f"/servers/{server_id}")
    deadline = time.monotonic() + 120
    while nova.get(f"/servers/{server_id}").status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.5)


def wait_active(nova: httpx.Client, server_id: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        shown = nova.get(f"/servers/{server_id}").json()["server"]
        if shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None:
            return
        assert shown["status"] != "ERROR", json.dumps(shown)
        assert time.monotonic() < deadline, f"server stayed {shown['status']}"
        time.sleep(0.5)


def console_url(nova: httpx.Client, server_id: str, protocol: str, kind: str) -> str:
    r = nova.post(f"/servers/{server_id}/remote-consoles",
                  json={"remote_console": {"protocol": protocol, "type": kind}})
    assert r.status_code == 200, r.text
    return str(r.json()["remote_console"]["url"])


def test_the_serial_websocket_reads_the_guests_marker(nova: httpx.Client, server: str) -> None:
    """The socket carries what the guest prints from the moment one is
    connected: a hard reboot makes it print its marker again."""
    with connect(console_url(nova, server, "serial", "serial"), open_timeout=30) as ws:
        r = nova.post(f"/servers/{server}/action", json={"reboot": {"type": "HARD"}})
        assert r.status_code == 202, r.text
        seen, deadline = b"", time.monotonic() + 180
        while READY not in seen or not seen.split(READY, 1)[1].count(b"\n"):
            assert time.monotonic() < deadline, f"no marker on the serial websocket in 180s:\n{seen[-2000:]!r}"
            chunk = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            seen += chunk if isinstance(chunk, bytes) else chunk.encode()
    line = seen.split(READY, 1)[1].split(b"\n", 1)[0].decode()
    assert f"uuid={server}" in line  # (no config drive: the guest keeps its own hostname)
    wait_active(nova, server)


@pytest.mark.skipif(not browser.available(), reason="chromium is not installed (make test installs Debian's)")
def test_chromium_sees_the_guests_screen_through_novnc(nova: httpx.Client, server: str, tmp_path: Path) -> None:
    url = console_url(nova, server, "vnc", "novnc")
    with browser.Browser() as chromium:
        chromium.open(url)
        assert chromium.wait_for("window.loomConsole && window.loomConsole.state !== 'connecting' "
                                 "&& window.loomConsole.state") == "connected"
        assert chromium.evaluate("document.getElementById('status').textContent").startswith("Connected to ")
        # The guest's display (SeaBIOS, SYSLINUX and kernel text on the VGA
        # console) drawn on noVNC's canvas: not one flat colour.
        drawn = chromium.wait_for(f"""(() => {{
            const canvas = document.querySelector('#screen canvas');
            if (!canvas || !canvas.width) return 0;
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let differing = 0;
            for (let i = 0; i < pixels.length; i += 4) {{
              if (pixels[i] !== pixels[0] || pixels[i + 1] !== pixels[1] || pixels[i + 2] !== pixels[2]) differing++;
            }}
            return differing > {DRAWN_PIXELS} ? [canvas.width, canvas.height, differing] : 0;
        }})()""", timeout=60)
        width, height, _differing = drawn
        assert width >= 320 and height >= 200  # a VGA mode's size, not an empty canvas
        shot = chromium.screenshot(tmp_path / "console.png")
        assert shot.stat().st_size > 1000
        assert server in chromium.evaluate("window.loomConsole.name")  # QEMU's display: "QEMU (loom-<uuid>)"
    # The token was spent: the same URL is refused now.
    spent = url.replace("http://", "ws://").split("vnc_lite.html")[0] + "?token=" + url.split("token%3D")[1]
    with pytest.raises(InvalidStatus, match="403"), connect(spent, open_timeout=10):
        pass
