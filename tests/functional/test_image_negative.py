"""What the image API refuses, and that a refusal leaves nothing behind:
unsafe or mislabelled disk images (backing files, external data files,
VMDK extents, content that is not its declared format), images of other
projects, roles that may not act, and quotas."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.functional.cloud import Cloud, running_cloud
from tests.functional.test_identity_support import admin_client
from tests.functional.test_image_support import (
    OCTET,
    Tenant,
    active,
    admin_images,
    assert_error,
    create,
    image_client,
    make_qcow2,
    new_tenant,
    patch,
    qemu_img,
    stored_files,
    upload,
    virtual_size,
)

QUOTA_IMAGES = 2
QUOTA_BYTES = 1 << 20


@pytest.fixture(scope="module")
def identity(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_client(cloud) as c:
        yield c


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_images(cloud) as c:
        yield c


@pytest.fixture(scope="module")
def tenant(cloud: Cloud, identity: httpx.Client) -> Iterator[Tenant]:
    t = new_tenant(cloud, identity)
    yield t
    t.http.close()


@pytest.fixture(scope="module")
def other(cloud: Cloud, identity: httpx.Client) -> Iterator[Tenant]:
    t = new_tenant(cloud, identity)
    yield t
    t.http.close()


def refused_upload(cloud: Cloud, tenant: Tenant, data: bytes, disk_format: str, *, contains: str = "") -> str:
    """Upload ``data`` as ``disk_format``: refused, the image is queued
    again, the store holds nothing for it, and a valid upload then works."""
    image = create(tenant.http, disk_format=disk_format)
    iid = image["id"]
    r = tenant.http.put(f"/images/{iid}/file", content=data, headers=OCTET)
    message = assert_error(r, 400, "Bad Request", contains=contains)["message"]
    shown = tenant.http.get(f"/images/{iid}").json()
    assert shown["status"] == "queued" and shown["size"] is None and shown["checksum"] is None
    assert stored_files(cloud, iid) == []
    assert tenant.http.get(f"/images/{iid}/file").status_code == 204
    # The owner can try again: as raw, with raw content.
    r = patch(tenant.http, iid, {"op": "replace", "path": "/disk_format", "value": "raw"})
    assert r.status_code == 200, r.text
    upload(tenant.http, iid, b"\0" * 4096)
    assert tenant.http.get(f"/images/{iid}").json()["status"] == "active"
    assert stored_files(cloud, iid) == [f"data/{iid}"]
    return str(message)


def test_qcow2_with_backing_file_is_refused(cloud: Cloud, tenant: Tenant, tmp_path: Path) -> None:
    path = tmp_path / "backed.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", str(path), "1M")
    message = refused_upload(cloud, tenant, path.read_bytes(), "qcow2", contains="backing file")
    assert "qcow2" in message and "refused" in message


def test_qcow2_with_external_data_file_is_refused(cloud: Cloud, tenant: Tenant, tmp_path: Path) -> None:
    path = tmp_path / "external.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'external.raw'}", str(path), "1M")
    refused_upload(cloud, tenant, path.read_bytes(), "qcow2", contains="data file")


def test_qcow2_declared_raw_is_refused(cloud: Cloud, tenant: Tenant, tmp_path: Path) -> None:
    data = make_qcow2(tmp_path / "disk.qcow2", virtual_mib=4, data_kib=64).read_bytes()
    message = refused_upload(cloud, tenant, data, "raw", contains="disk_format")
    assert "qcow2" in message and "raw" in message


def test_raw_declared_qcow2_is_refused(cloud: Cloud, tenant: Tenant) -> None:
    message = refused_upload(cloud, tenant, os.urandom(65536), "qcow2", contains="disk_format")
    assert "raw" in message and "qcow2" in message


def test_vmdk_referencing_another_file_is_refused(cloud: Cloud, tenant: Tenant, tmp_path: Path) -> None:
    path = tmp_path / "flat.vmdk"
    qemu_img("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", str(path), "1M")
    assert (tmp_path / "flat-flat.vmdk").exists()  # the descriptor names this file
    assert b"flat-flat.vmdk" in path.read_bytes()
    message = refused_upload(cloud, tenant, path.read_bytes(), "vmdk", contains="monolithicFlat")
    assert "flat-flat.vmdk" in message


def test_truncated_qcow2_is_refused(cloud: Cloud, tenant: Tenant, tmp_path: Path) -> None:
    data = make_qcow2(tmp_path / "disk.qcow2", virtual_mib=4, data_kib=64).read_bytes()
    refused_upload(cloud, tenant, data[:48], "qcow2", contains="truncated")


def test_safe_images_of_each_checked_format_are_accepted(cloud: Cloud, tenant: Tenant, tmp_path: Path) -> None:
    for fmt, qemu_fmt in (("qcow2", "qcow2"), ("vmdk", "vmdk"), ("vdi", "vdi"), ("vhdx", "vhdx"), ("vhd", "vpc")):
        path = tmp_path / f"disk.{fmt}"
        qemu_img("create", "-f", qemu_fmt, str(path), "2M")
        image = active(tenant.http, path.read_bytes(), disk_format=fmt)
        assert image["virtual_size"] == virtual_size(path), (fmt, image)


def test_other_projects_cannot_see_or_touch(cloud: Cloud, tenant: Tenant, other: Tenant) -> None:
    private = active(tenant.http, visibility="private")
    shared = active(tenant.http)  # shared, but with nobody
    for image in (private, shared):
        iid = image["id"]
        assert_error(other.http.get(f"/images/{iid}"), 404, "Not Found")
        assert_error(other.http.get(f"/images/{iid}/file"), 404, "Not Found")
        assert_error(patch(other.http, iid, {"op": "add", "path": "/x", "value": "y"}), 404, "Not Found")
        assert_error(other.http.delete(f"/images/{iid}"), 404, "Not Found")
        assert_error(other.http.put(f"/images/{iid}/tags/x"), 404, "Not Found")
        assert_error(other.http.get(f"/images/{iid}/members"), 404, "Not Found")
        assert_error(other.http.post(f"/images/{iid}/members", json={"member": other.project_id}), 404,
                     "Not Found")
        for params in ({}, {"member_status": "all"}, {"visibility": "all"}, {"visibility": "shared"},
                       {"visibility": "private"}, {"id": iid}):
            r = other.http.get("/images", params=params)
            assert iid not in [i["id"] for i in r.json()["images"]], params
    # Nor upload into a queued image of another project, even one shared with it.
    queued = create(tenant.http)
    assert tenant.http.post(f"/images/{queued['id']}/members", json={"member": other.project_id}).status_code == 200
    r = other.http.put(f"/images/{queued['id']}/file", content=b"x" * 512, headers=OCTET)
    assert_error(r, 403, "Forbidden")
    assert tenant.http.get(f"/images/{queued['id']}").json()["status"] == "queued"
    assert stored_files(cloud, queued["id"]) == []


def test_publicize_needs_admin(cloud: Cloud, tenant: Tenant, admin: httpx.Client, other: Tenant) -> None:
    assert_error(tenant.http.post("/images", json={"name": "pub", "visibility": "public"}), 403, "Forbidden")
    image = create(tenant.http)
    iid = image["id"]
    r = patch(tenant.http, iid, {"op": "replace", "path": "/visibility", "value": "public"})
    assert_error(r, 403, "Forbidden")
    assert tenant.http.get(f"/images/{iid}").json()["visibility"] == "shared"
    # Nor give an image away.
    assert_error(patch(tenant.http, iid, {"op": "replace", "path": "/owner", "value": other.project_id}), 403,
                 "Forbidden")
    assert_error(tenant.http.post("/images", json={"owner": other.project_id}), 403, "Forbidden")
    # The admin can.
    r = patch(admin, iid, {"op": "replace", "path": "/visibility", "value": "public"})
    assert r.status_code == 200 and r.json()["visibility"] == "public", r.text
    assert other.http.get(f"/images/{iid}").status_code == 200
    assert iid in [i["id"] for i in other.http.get("/images").json()["images"]]
    # The owner may take it back from public.
    r = patch(tenant.http, iid, {"op": "replace", "path": "/visibility", "value": "private"})
    assert r.status_code == 200 and r.json()["visibility"] == "private"
    assert_error(other.http.get(f"/images/{iid}"), 404, "Not Found")


def test_reader_cannot_create_or_change(cloud: Cloud, identity: httpx.Client, admin: httpx.Client) -> None:
    reader = new_tenant(cloud, identity, role="reader")
    with reader.http:
        assert_error(reader.http.post("/images", json={"name": "nope"}), 403, "Forbidden")
        # An image of the reader's project, made by the admin: readable, not changeable.
        r = admin.post("/images", json={"name": "for-reader", "owner": reader.project_id, "disk_format": "raw",
                                        "container_format": "bare"})
        assert r.status_code == 201, r.text
        iid = r.json()["id"]
        assert reader.http.get(f"/images/{iid}").status_code == 200
        assert iid in [i["id"] for i in reader.http.get("/images").json()["images"]]
        assert_error(reader.http.put(f"/images/{iid}/file", content=b"x" * 512, headers=OCTET), 403, "Forbidden")
        assert_error(patch(reader.http, iid, {"op": "add", "path": "/x", "value": "y"}), 403, "Forbidden")
        assert_error(reader.http.put(f"/images/{iid}/tags/x"), 403, "Forbidden")
        assert_error(reader.http.delete(f"/images/{iid}"), 403, "Forbidden")
        assert stored_files(cloud, iid) == []
        upload(admin, iid, b"admin data")
        assert reader.http.get(f"/images/{iid}/file").content == b"admin data"


@pytest.fixture(scope="module")
def quota_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A cloud of its own, with small image quotas."""
    with running_cloud(tmp_path_factory.mktemp("quota"), **{"image.quota_images": QUOTA_IMAGES,
                                                             "image.quota_bytes": QUOTA_BYTES}) as c:
        yield c


def test_quotas(quota_cloud: Cloud) -> None:
    cloud = quota_cloud
    with admin_client(cloud) as identity:
        t = new_tenant(cloud, identity)
    with t.http:
        first = active(t.http, os.urandom(600 << 10))
        second = create(t.http)
        # The bytes quota: 600 KiB more would exceed 1 MiB.
        r = t.http.put(f"/images/{second['id']}/file", content=os.urandom(600 << 10), headers=OCTET)
        assert_error(r, 413, "Request Entity Too Large")
        assert t.http.get(f"/images/{second['id']}").json()["status"] == "queued"
        assert stored_files(cloud, second["id"]) == []
        # The images quota: two already.
        r = t.http.post("/images", json={"name": "third", "disk_format": "raw", "container_format": "bare"})
        assert_error(r, 413, "Request Entity Too Large")
        listed = [i["id"] for i in t.http.get("/images").json()["images"]]
        assert sorted(listed) == sorted([first["id"], second["id"]])
        # What fits still fits.
        upload(t.http, second["id"], os.urandom(QUOTA_BYTES - (600 << 10)))
        assert t.http.get(f"/images/{second['id']}").json()["status"] == "active"
        # Deleting an image frees its share of both quotas.
        assert t.http.delete(f"/images/{first['id']}").status_code == 204
        third = active(t.http, os.urandom(500 << 10))
        assert stored_files(cloud, third["id"]) == [f"data/{third['id']}"]
    # The quotas are per project: another project has its own.
    with admin_client(cloud) as identity:
        u = new_tenant(cloud, identity)
    with u.http:
        active(u.http, os.urandom(900 << 10))
        active(u.http)
    # Nothing was left in staging by the refused upload.
    assert list((cloud.settings.image_dir / "staging").iterdir()) == []


def test_uuid_of_unknown_image(tenant: Tenant) -> None:
    assert_error(tenant.http.put(f"/images/{uuid.uuid4()}/file", content=b"x", headers=OCTET), 404, "Not Found")


def test_concurrent_uploads_cannot_exceed_the_bytes_quota(quota_cloud: Cloud) -> None:
    cloud = quota_cloud
    with admin_client(cloud) as identity:
        t = new_tenant(cloud, identity)
    token = t.http.headers["X-Auth-Token"]

    def body(both_sent: threading.Barrier) -> Iterator[bytes]:
        # Most of the data, then the last bytes of both uploads at once.
        yield os.urandom(600 << 10)
        both_sent.wait(30)
        time.sleep(0.3)
        yield b"\0" * 512

    def put(image_id: str, both_sent: threading.Barrier) -> int:
        with image_client(cloud, token) as c:
            return c.put(f"/images/{image_id}/file", content=body(both_sent), headers=OCTET).status_code

    with t.http:
        for _ in range(3):
            images = [create(t.http)["id"] for _ in range(2)]
            barrier = threading.Barrier(2)
            with ThreadPoolExecutor(2) as pool:
                statuses = sorted(pool.map(put, images, [barrier, barrier]))
            used = sum(t.http.get(f"/images/{i}").json()["size"] or 0 for i in images)
            assert statuses == [204, 413] and used <= QUOTA_BYTES, (statuses, used)
            for image_id in images:
                assert t.http.delete(f"/images/{image_id}").status_code == 204


def test_upload_in_progress_and_client_disconnect(cloud: Cloud, tenant: Tenant) -> None:
    """While an upload runs, the image cannot be uploaded again, deleted
    or deactivated; when its client goes away the image is queued again and
    the partial data is gone."""
    iid = create(tenant.http)["id"]
    host, port = cloud.url.removeprefix("http://").rsplit(":", 1)
    token = tenant.http.headers["X-Auth-Token"]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall((f"PUT /image/v2/images/{iid}/file HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n"
                      f"Content-Type: application/octet-stream\r\nContent-Length: {64 << 20}\r\n\r\n").encode())
        sock.sendall(os.urandom(6 << 20))
        deadline = time.monotonic() + 30
        while tenant.http.get(f"/images/{iid}").json()["status"] != "saving" or not stored_files(cloud, iid):
            assert time.monotonic() < deadline, "the upload did not start"
            time.sleep(0.05)
        assert [f.split(".")[0] for f in stored_files(cloud, iid)] == [f"staging/{iid}"]
        assert_error(tenant.http.put(f"/images/{iid}/file", content=b"x" * 512, headers=OCTET), 409, "Conflict")
        assert_error(tenant.http.delete(f"/images/{iid}"), 409, "Conflict")
        with admin_images(cloud) as admin:
            assert_error(admin.post(f"/images/{iid}/actions/deactivate"), 409, "Conflict")
        assert tenant.http.get(f"/images/{iid}/file").status_code == 204
    # The client is gone: the upload is rolled back at once, not when its lease runs out.
    deadline = time.monotonic() + 10
    while tenant.http.get(f"/images/{iid}").json()["status"] != "queued" or stored_files(cloud, iid):
        assert time.monotonic() < deadline, (tenant.http.get(f"/images/{iid}").json(), stored_files(cloud, iid))
        time.sleep(0.05)
    upload(tenant.http, iid, b"\0" * 4096)
    assert stored_files(cloud, iid) == [f"data/{iid}"]
