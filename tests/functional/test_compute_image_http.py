"""A compute host without the database reaches images over the Image API,
served over real HTTP, as the service user: a build reads a member's
private image through it and a snapshot is uploaded through it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loom.cmd.runner import Runner
from loom.image.remote import HttpImageClient
from loom.virt.fake import FakeDriver
from tests.functional.cloud import Cloud, running_cloud
from tests.functional.compute_support import act, fresh_member, member_compute, member_token, settled
from tests.functional.test_compute_snapshot_shelve import eventually

SERVICE_PASSWORD = "service-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """The controllers with the database in one process, and no compute."""
    with running_cloud(tmp_path_factory.mktemp("cloud"), roles=("conductor", "scheduler", "api"),
                       **{"service_user.password": SERVICE_PASSWORD}) as c:
        yield c


@pytest.fixture(scope="module")
def compute_host(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    """A compute process's runner: the same bus, no database URL of its
    own data directory, the service user's password and nothing else."""
    settings = cloud.settings.replace(data_dir=str(tmp_path_factory.mktemp("compute")))
    runner = Runner(settings, roles=("compute",), compute_hosts=("http-host",))
    cloud.run(runner.start())
    try:
        assert runner.db is None
        yield runner
    finally:
        cloud.run(runner.stop())


def upload_image(cloud: Cloud, token: str, data: bytes) -> str:
    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": token}, timeout=30) as glance:
        r = glance.post("/images", json={"name": "private", "disk_format": "raw", "container_format": "bare"})
        assert r.status_code == 201, r.text
        image_id = str(r.json()["id"])
        r = glance.put(f"/images/{image_id}/file", content=data,
                       headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
    return image_id


def test_build_reads_and_snapshot_uploads_over_http(cloud: Cloud, compute_host: Runner) -> None:
    client = compute_host.image_client
    assert isinstance(client, HttpImageClient)
    (service,) = compute_host.services
    driver = service.manager.driver  # type: ignore[attr-defined]
    assert isinstance(driver, FakeDriver)

    member = fresh_member(cloud)
    token = member_token(cloud, member)
    data = b"loom private image " + uuid.uuid4().bytes * 1000
    image_id = upload_image(cloud, token, data)

    with member_compute(cloud, member) as nova:
        r = nova.post("/servers", json={"server": {"name": "vm", "imageRef": image_id, "flavorRef": "1",
                                                   "networks": "none"}})
        assert r.status_code == 202, r.text
        server_id = r.json()["server"]["id"]
        settled(nova, server_id, "ACTIVE")
        # The guest was made from the image's bytes, read through the Image API.
        guest = driver._guests[server_id]
        assert guest.image_sha256 == hashlib.sha256(data).hexdigest()
        assert client.endpoint == cloud.url + "/image"  # found in the catalog

        r = act(nova, server_id, {"createImage": {"name": "snap"}})
        assert r.status_code == 202, r.text
        snapshot_id = r.json()["image_id"]
        settled(nova, server_id, "ACTIVE")

    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": token}, timeout=30) as glance:
        image = eventually(lambda: (r := glance.get(f"/images/{snapshot_id}").json())["status"] == "active" and r,
                           "the snapshot is active")
        assert image["owner"] == member.project_id
        assert image["disk_format"] == "raw"
        snapshot = glance.get(f"/images/{snapshot_id}/file").content
    assert snapshot.startswith(b"{")
    assert server_id.encode() in snapshot and hashlib.sha256(data).hexdigest().encode() in snapshot
    # One token served every call.
    assert client.session.issued == 1


def test_a_compute_host_without_the_service_password_has_no_image_client(cloud: Cloud, tmp_path: Path) -> None:
    settings = cloud.settings.replace(**{"data_dir": str(tmp_path), "service_user.password": ""})
    runner = Runner(settings, roles=("compute",), compute_hosts=("no-images",))
    cloud.run(runner.start())
    try:
        (service,) = runner.services
        assert service.manager.images is None  # type: ignore[attr-defined]
    finally:
        cloud.run(runner.stop())


def test_a_wrong_service_password_is_refused_clearly(cloud: Cloud, tmp_path: Path) -> None:
    from loom.errors import Unauthorized
    from loom.identity.session import ServiceSession

    settings = cloud.settings.replace(**{"service_user.password": "wrong"})
    session = ServiceSession.from_settings(settings)
    with pytest.raises(Unauthorized, match="refused the service user's credential"):
        cloud.run(session.token())
    cloud.run(session.close())
