"""A resize on a cloud of one host, where ``compute.allow_resize_to_same_host``
lets it stay: both copies live on the host (and in its placement usage)
until the resize is confirmed or reverted. A cold migration still needs
another host."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.functional.cloud import Cloud, running_cloud
from tests.functional.compute_support import act, admin_fixture, allocations, boot, settled
from tests.functional.move_support import RUNNING, SHUTDOWN, SMALL, TINY, guests, migration_of, used_memory

nova = admin_fixture()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("cloud"), **{
            "image.demo_image": True, "compute.allow_resize_to_same_host": True,
            "compute.fake_memory_mb": 4096}) as c:
        yield c


def test_a_resize_may_stay_on_its_host(cloud: Cloud, nova: httpx.Client) -> None:
    server_id = boot(nova, cloud, name="stays")
    host = settled(nova, server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    assert act(nova, server_id, {"resize": {"flavorRef": "2"}}).status_code == 202
    server = settled(nova, server_id, "VERIFY_RESIZE")
    assert server["OS-EXT-SRV-ATTR:host"] == host
    migration = migration_of(cloud, server_id)
    assert allocations(cloud, nova, server_id) == {host: SMALL}
    assert allocations(cloud, nova, migration.uuid) == {host: TINY}
    assert guests(cloud, server_id) == {host: ("guest", 2048, RUNNING), f"{host}:kept": ("kept", 512, SHUTDOWN)}
    assert used_memory(cloud, host) == 2048 + 512
    assert act(nova, server_id, {"revertResize": None}).status_code == 202
    server = settled(nova, server_id, "ACTIVE")
    assert (server["OS-EXT-SRV-ATTR:host"], server["flavor"]["original_name"]) == (host, "m1.tiny")
    assert allocations(cloud, nova, server_id) == {host: TINY}
    assert guests(cloud, server_id) == {host: ("guest", 512, RUNNING)}
    assert act(nova, server_id, {"resize": {"flavorRef": "2"}}).status_code == 202
    settled(nova, server_id, "VERIFY_RESIZE")
    assert act(nova, server_id, {"confirmResize": None}).status_code == 204
    settled(nova, server_id, "ACTIVE")
    assert allocations(cloud, nova, server_id) == {host: SMALL}
    assert guests(cloud, server_id) == {host: ("guest", 2048, RUNNING)}
    assert used_memory(cloud, host) == 2048
    # A cold migration never stays: with no other host it finds none, and
    # the server stays where it was with its allocation.
    assert act(nova, server_id, {"migrate": None}).status_code == 202
    server = settled(nova, server_id, "ACTIVE")
    assert migration_of(cloud, server_id).status == "error"
    assert allocations(cloud, nova, server_id) == {host: SMALL}
