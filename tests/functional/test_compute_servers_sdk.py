"""Acceptance with openstacksdk: the compute proxy's server, metadata, tag,
flavor and keypair calls against a running cloud."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openstack import exceptions
from openstack.connection import Connection

from tests.functional.cloud import Cloud
from tests.functional.compute_support import cloud_fixture, sdk_connection

cloud = cloud_fixture(**{"compute.fake_hosts": 2})


@pytest.fixture(scope="module")
def conn(cloud: Cloud) -> Iterator[Connection]:
    with sdk_connection(cloud) as c:
        yield c


def test_flavors_and_keypair(conn: Connection) -> None:
    flavors = {f.name: f for f in conn.compute.flavors()}
    assert {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"} <= set(flavors)
    tiny = flavors["m1.tiny"]
    assert (tiny.vcpus, tiny.ram, tiny.disk) == (1, 512, 1)
    key = conn.compute.create_keypair(name="sdk-key")
    try:
        assert key.private_key and "PRIVATE KEY" in key.private_key
        assert conn.compute.get_keypair("sdk-key").fingerprint == key.fingerprint
    finally:
        conn.compute.delete_keypair("sdk-key")
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_keypair("sdk-key")


def test_server_lifecycle(conn: Connection) -> None:
    image = conn.image.find_image("demo", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    server = conn.compute.create_server(
        name="sdk-vm", image_id=image.id, flavor_id=flavor.id, networks="none", metadata={"role": "test"}
    )
    try:
        server = conn.compute.wait_for_server(server, wait=60, interval=0.2)
        assert server.status == "ACTIVE" and server.compute_host and server.metadata == {"role": "test"}

        found = list(conn.compute.servers(details=True, name="^sdk-"))
        assert [s.id for s in found] == [server.id] and found[0].flavor.original_name == "m1.tiny"
        fetched = conn.compute.get_server(server.id)
        assert fetched.name == "sdk-vm" and fetched.image.id == image.id and fetched.addresses == {}

        conn.compute.set_server_metadata(server, a="1", b="2")
        assert conn.compute.fetch_server_metadata(server).metadata == {"role": "test", "a": "1", "b": "2"}
        conn.compute.delete_server_metadata(server, ["a", "role"])
        assert conn.compute.get_server(server.id).metadata == {"b": "2"}

        conn.compute.add_tag_to_server(server, "green")
        assert [s.id for s in conn.compute.servers(tags="green")] == [server.id]
        assert list(conn.compute.servers(tags="purple")) == []
        conn.compute.remove_tag_from_server(server, "green")
        assert conn.compute.get_server(server.id).tags == []

        updated = conn.compute.update_server(server, name="sdk-renamed", description="renamed by the sdk")
        assert updated.name == "sdk-renamed" and updated.description == "renamed by the sdk"
        assert conn.compute.get_server(server.id).name == "sdk-renamed"
    finally:
        conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.2, wait=60)
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_server(server.id)
    assert list(conn.compute.servers(name="^sdk-")) == []


def test_sdk_errors(conn: Connection) -> None:
    image = conn.image.find_image("demo", ignore_missing=False)
    with pytest.raises(exceptions.BadRequestException, match="Flavor nope could not be found"):
        conn.compute.create_server(name="bad", image_id=image.id, flavor_id="nope", networks="none")
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_server("00000000-0000-0000-0000-000000000000")
