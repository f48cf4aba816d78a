"""The image API through openstacksdk, in-process: create from a file and
wait, list (following the API's next links), update, download with the
SDK's checksum check, share, and delete."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import openstack.connection
import pytest

from tests.functional.cloud import Cloud
from tests.functional.test_identity_support import admin_client, unique
from tests.functional.test_image_support import Tenant, make_qcow2, new_tenant, stored_files, virtual_size

# The SDK's own notices about its future releases, not about Loom.
pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning",
                                        "ignore::openstack.warnings.RemovedInSDK60Warning")


@pytest.fixture(scope="module")
def identity(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_client(cloud) as c:
        yield c


def connect(cloud: Cloud, t: Tenant) -> openstack.connection.Connection:
    return openstack.connection.Connection(
        auth_url=cloud.auth_url, username=t.member.name, password=t.member.password, project_name=t.member.project,
        user_domain_name="Default", project_domain_name="Default", region_name="RegionOne")


def test_create_list_download_delete(cloud: Cloud, identity: httpx.Client, tmp_path: Path) -> None:
    t = new_tenant(cloud, identity)
    source = make_qcow2(tmp_path / "disk.qcow2", virtual_mib=16, data_kib=768)
    data = source.read_bytes()
    conn = connect(cloud, t)
    try:
        name = unique("sdk")
        created = conn.image.create_image(name, filename=str(source), disk_format="qcow2",
                                          container_format="bare", wait=True, timeout=60)
        # (With a plain upload the SDK returns the image as it was created.)
        image = conn.image.get_image(created.id)
        assert image.status == "active" and image.name == name
        assert image.size == len(data) and image.virtual_size == virtual_size(source)
        assert image.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert image.hash_algo == "sha512" and image.hash_value == hashlib.sha512(data).hexdigest()
        assert image.owner_id == t.project_id

        # More images, then a listing that pages two at a time through next links.
        more = [conn.image.create_image(unique("sdk"), data=b"\0" * 1024, disk_format="raw",
                                        container_format="bare", wait=True, timeout=60) for _ in range(3)]
        listed = [i.id for i in conn.image.images(limit=2)]
        assert sorted(listed) == sorted([image.id, *(m.id for m in more)])
        assert [i.id for i in conn.image.images(name=name)] == [image.id]
        assert {i.id for i in conn.image.images(disk_format="raw")} == {m.id for m in more}

        conn.image.update_image(image, min_ram=256, os_distro="debian")
        conn.image.add_tag(image, "sdk-tag")
        fetched = conn.image.get_image(image.id)
        assert fetched.min_ram == 256 and fetched.os_distro == "debian" and fetched.tags == ["sdk-tag"]

        # The SDK checks the download against os_hash_value.
        out = tmp_path / "out.qcow2"
        conn.image.download_image(image, output=str(out))
        assert out.read_bytes() == data
        streamed = conn.image.download_image(image, stream=True)
        assert b"".join(streamed.iter_content(65536)) == data

        conn.image.delete_image(image)
        assert conn.image.find_image(image.id) is None
        assert stored_files(cloud, image.id) == []
        for m in more:
            conn.image.delete_image(m, ignore_missing=False)
        assert list(conn.image.images()) == []
    finally:
        conn.close()
        t.http.close()


def test_share_through_the_sdk(cloud: Cloud, identity: httpx.Client) -> None:
    owner, other = new_tenant(cloud, identity), new_tenant(cloud, identity)
    owner_conn, other_conn = connect(cloud, owner), connect(cloud, other)
    try:
        image = owner_conn.image.create_image(unique("sdk"), data=b"shared" * 100, disk_format="raw",
                                              container_format="bare", wait=True, timeout=60)
        member = owner_conn.image.add_member(image, member_id=other.project_id)
        assert member.status == "pending"
        assert [m.member_id for m in owner_conn.image.members(image)] == [other.project_id]
        assert image.id not in [i.id for i in other_conn.image.images()]
        other_conn.image.update_member(other.project_id, image, status="accepted")
        assert image.id in [i.id for i in other_conn.image.images()]
        assert other_conn.image.download_image(image).content == b"shared" * 100
        owner_conn.image.remove_member(other.project_id, image)
        assert other_conn.image.find_image(image.id) is None
    finally:
        owner_conn.close()
        other_conn.close()
        owner.http.close()
        other.http.close()
