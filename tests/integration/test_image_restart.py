"""``loom up`` killed in the middle of an image upload: once it is back on
the same data directory, the dead upload's lease runs out, the image is
``queued`` again (its owner can see it and retry), nothing of the partial
upload remains in the store, and a fresh upload succeeds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
LEASE = 2  # seconds: an upload's lease, and so how soon a dead one is rolled back
CHUNK = 1 << 20
UPLOAD_MIB = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``loom up`` as its own process; returns once it answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOM_", "OS_"))}
    env.update({"LOOM_DATA_DIR": str(data_dir), "LOOM_IMAGE__UPLOAD_LEASE": str(LEASE),
                "LOOM_IDENTITY__PASSWORD_HASH_ROUNDS": "4", "LOOM_LOG__LEVEL": "WARNING",
                "LOOM_IMAGE__DEMO_IMAGE": "false"})
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "loom.cmd.main", "up", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"loom up did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def token(url: str, password: str) -> str:
    r = httpx.post(url + "/identity/v3/auth/tokens?nocatalog", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def qcow2(path: Path) -> bytes:
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(path), "16M"], check=True, capture_output=True)
    return path.read_bytes()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "data"
    d.mkdir()
    yield d


def test_upload_killed_mid_stream_is_rolled_back_after_restart(data_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "loom.log"
    images_dir = data_dir / "images"
    proc = start(data_dir, port, log)
    try:
        password = (data_dir / "admin-password").read_text().strip()
        headers = {"X-Auth-Token": token(url, password)}
        api = httpx.Client(base_url=url + "/image/v2", headers=headers, timeout=30)
        r = api.post("/images", json={"name": "big", "disk_format": "raw", "container_format": "bare"})
        assert r.status_code == 201, r.text
        image_id = r.json()["id"]

        # A 200 MiB upload, generated as it goes and slowed down so that it
        # is clearly in progress when the server dies.
        block = os.urandom(CHUNK)
        sent = [0]

        def body() -> Iterator[bytes]:
            for _ in range(UPLOAD_MIB):
                yield block
                sent[0] += 1
                time.sleep(0.01)

        outcome: list[object] = []

        def run_upload() -> None:
            try:
                with httpx.Client(timeout=120) as c:
                    outcome.append(c.put(f"{url}/image/v2/images/{image_id}/file", content=body(),
                                         headers={**headers, "Content-Type": "application/octet-stream"}))
            except httpx.HTTPError as exc:
                outcome.append(exc)

        uploader = threading.Thread(target=run_upload, daemon=True)
        uploader.start()
        staged: list[Path] = []
        deadline = time.monotonic() + 60
        while not (staged and sent[0] >= 20):
            staged = [p for p in (images_dir / "staging").glob(f"{image_id}.*") if p.stat().st_size > 0]
            assert time.monotonic() < deadline, "the upload never reached the staging area"
            time.sleep(0.05)
        assert api.get(f"/images/{image_id}").json()["status"] == "saving"
        # Mid-upload, as a crash would.
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        uploader.join(60)
        assert not uploader.is_alive()
        assert sent[0] < UPLOAD_MIB, "the upload finished before the kill"
        assert outcome and isinstance(outcome[0], httpx.HTTPError), outcome
        # What the dead process left: the partial staging file, no data file.
        assert [p.name for p in (images_dir / "staging").glob(f"{image_id}.*")] == [p.name for p in staged]
        assert not (images_dir / "data" / image_id).exists()

        proc = start(data_dir, port, log)
        api.headers["X-Auth-Token"] = token(url, password)
        # The lease runs out and the upload is rolled back within seconds.
        restarted = time.monotonic()
        while True:
            shown = api.get(f"/images/{image_id}")
            assert shown.status_code == 200, shown.text
            if shown.json()["status"] == "queued":
                break
            assert shown.json()["status"] == "saving", shown.text
            assert time.monotonic() - restarted < 3 * LEASE + 5, "the dead upload was not rolled back"
            time.sleep(0.1)
        image = shown.json()
        assert image["size"] is None and image["checksum"] is None
        assert image_id in [i["id"] for i in api.get("/images").json()["images"]]
        assert list((images_dir / "staging").glob(f"{image_id}*")) == []
        assert list((images_dir / "data").glob(f"{image_id}*")) == []

        # The owner retries, with a small valid image.
        data = qcow2(tmp_path / "small.qcow2")
        r = api.patch(f"/images/{image_id}", content=b'[{"op": "replace", "path": "/disk_format", "value": "qcow2"}]',
                      headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert r.status_code == 200, r.text
        r = api.put(f"/images/{image_id}/file", content=data, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        image = api.get(f"/images/{image_id}").json()
        assert image["status"] == "active" and image["size"] == len(data) and image["virtual_size"] == 16 << 20
        assert api.get(f"/images/{image_id}/file").content == data
        assert [p.name for p in (images_dir / "data").iterdir()] == [image_id]
        assert list((images_dir / "staging").iterdir()) == []
        api.close()
    finally:
        stop(proc)
