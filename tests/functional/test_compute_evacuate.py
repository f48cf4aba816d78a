"""Evacuation: with the stock CLI, a server whose host's compute service is
forced down is rebuilt on the other host; when the source's compute
service starts again it removes the guest left there and the source's
allocation is released. A stopped server comes back stopped; with no host
to go to the server is ERROR on its source, holding its allocation there;
Nova's refusals and bodies per microversion. Two fake hosts."""

from __future__ import annotations

import httpx
import pytest

from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    act,
    admin_fixture,
    allocations,
    cloud_fixture,
    events,
    fake,
    host_of,
    message,
    settled,
)
from tests.functional.live_move_support import migrations, other, wait_migration
from tests.functional.move_support import RUNNING, SHUTDOWN, TINY, new_server, restart_compute

cloud = cloud_fixture(**{"compute.fake_hosts": 2})
nova = admin_fixture()


def set_down(cloud: Cloud, host: str, down: bool) -> None:
    cloud.openstack("compute", "service", "set", "--down" if down else "--up", host, "nova-compute")


@pytest.fixture
def down_host(cloud: Cloud) -> object:
    """Hosts a test forces down; they are brought up again after it."""
    downed: list[str] = []

    def down(host: str) -> str:
        set_down(cloud, host, True)
        downed.append(host)
        return host

    yield down
    for host in downed:
        set_down(cloud, host, False)


def test_evacuate_through_the_cli_then_the_source_comes_back(cloud: Cloud, nova: httpx.Client,
                                                             down_host: object) -> None:
    server_id, source = new_server(cloud, nova, "evacuated")
    dest = other(source)
    r = act(nova, server_id, {"evacuate": {}})
    assert message(r, 400) == f"Compute service of {source} is still in use."
    assert nova.get(f"/servers/{server_id}").json()["server"]["OS-EXT-STS:task_state"] is None

    down_host(source)  # type: ignore[operator]
    # Without --wait: this openstackclient waits for "ACTIVE" among lowercased statuses, forever.
    cloud.openstack("server", "evacuate", server_id)
    server = settled(nova, server_id, "ACTIVE")
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-STS:power_state"]) == (dest, RUNNING)
    assert server_id in fake(cloud, dest)._guests
    (migration,) = migrations(nova, server_id)
    assert (migration["migration_type"], migration["status"]) == ("evacuation", "done")
    assert (migration["source_compute"], migration["dest_compute"]) == (source, dest)
    # Until the source is cleaned, it holds the server too (through the migration).
    assert allocations(cloud, nova, server_id) == {dest: TINY}
    assert allocations(cloud, nova, migration["uuid"]) == {source: TINY}
    assert server_id in fake(cloud, source)._guests  # the stale guest: its host was "down"
    assert events(nova, server_id, "evacuate") == [("rebuild_server", "Success"),
                                                   ("compute_rebuild_instance", "Success")]

    restart_compute(cloud, source)
    assert server_id not in fake(cloud, source)._guests
    assert wait_migration(nova, server_id, {"completed"})["id"] == migration["id"]
    assert allocations(cloud, nova, migration["uuid"]) == {}
    assert allocations(cloud, nova, server_id) == {dest: TINY}
    assert host_of(nova, server_id) == dest
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_a_stopped_server_comes_back_stopped(cloud: Cloud, nova: httpx.Client, down_host: object) -> None:
    server_id, source = new_server(cloud, nova, "stopped")
    assert act(nova, server_id, {"os-stop": None}).status_code == 202
    settled(nova, server_id, "SHUTOFF")
    down_host(source)  # type: ignore[operator]
    # Before 2.14 the password comes back; onSharedStorage is required.
    v213 = {"OpenStack-API-Version": "compute 2.13"}
    r = nova.post(f"/servers/{server_id}/action", headers=v213, json={"evacuate": {}})
    assert r.status_code == 400
    r = nova.post(f"/servers/{server_id}/action", headers=v213,
                  json={"evacuate": {"onSharedStorage": True, "adminPass": "secret"}})
    assert message(r, 400) == "admin password can't be changed on existing disk"
    r = nova.post(f"/servers/{server_id}/action", headers=v213,
                  json={"evacuate": {"onSharedStorage": "False", "adminPass": "s3cret"}})
    assert (r.status_code, r.json()) == (200, {"adminPass": "s3cret"})
    server = settled(nova, server_id, "SHUTOFF")
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-STS:power_state"]) == (other(source), SHUTDOWN)
    assert fake(cloud, other(source)).guest(server_id).power_state == SHUTDOWN
    restart_compute(cloud, source)
    assert wait_migration(nova, server_id, {"completed"})
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_with_no_host_to_go_to_the_server_is_error_on_its_source(cloud: Cloud, nova: httpx.Client,
                                                                   down_host: object) -> None:
    server_id, source = new_server(cloud, nova, "stranded")
    dest = other(source)
    down_host(source)  # type: ignore[operator]
    cloud.openstack("compute", "service", "set", "--disable", dest, "nova-compute")
    try:
        r = act(nova, server_id, {"evacuate": {}})
        assert (r.status_code, r.content) == (200, b"")
        failed = wait_migration(nova, server_id, {"error"})
        server = settled(nova, server_id, "ERROR")
    finally:
        cloud.openstack("compute", "service", "set", "--enable", dest, "nova-compute")
    assert server["OS-EXT-SRV-ATTR:host"] == source
    assert "No valid host" in server["fault"]["message"]
    assert allocations(cloud, nova, server_id) == {source: TINY}
    assert allocations(cloud, nova, failed["uuid"]) == {}
    # An ERROR server may be evacuated (once a host will take it).
    assert act(nova, server_id, {"evacuate": {"host": dest}}).status_code == 200
    server = settled(nova, server_id, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == dest
    assert allocations(cloud, nova, server_id) == {dest: TINY}
    restart_compute(cloud, source)
    assert wait_migration(nova, server_id, {"completed"})
    assert allocations(cloud, nova, wait_migration(nova, server_id, {"completed"})["uuid"]) == {}
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_a_failed_spawn_leaves_the_server_error_on_its_source(cloud: Cloud, nova: httpx.Client,
                                                             down_host: object) -> None:
    server_id, source = new_server(cloud, nova, "unlucky")
    dest = other(source)
    down_host(source)  # type: ignore[operator]
    fake(cloud, dest).fail_spawn = 1
    assert act(nova, server_id, {"evacuate": {}}).status_code == 200
    failed = wait_migration(nova, server_id, {"failed"})
    server = settled(nova, server_id, "ERROR")
    assert server["OS-EXT-SRV-ATTR:host"] == source and "injected failure" in server["fault"]["message"]
    assert allocations(cloud, nova, server_id) == {source: TINY}
    assert allocations(cloud, nova, failed["uuid"]) == {}
    assert server_id not in fake(cloud, dest)._guests
    assert events(nova, server_id, "evacuate")[-1] == ("compute_rebuild_instance", "Error")
    # The failed evacuation is not cleaned up on the source: its guest stays.
    restart_compute(cloud, source)
    assert server_id in fake(cloud, source)._guests
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_refusals_as_nova_makes_them(cloud: Cloud, nova: httpx.Client, down_host: object) -> None:
    server_id, source = new_server(cloud, nova, "refused")
    assert message(act(nova, server_id, {"evacuate": {"host": "nowhere"}}), 404) == "Compute host nowhere not found."
    assert message(act(nova, server_id, {"evacuate": {"host": source}}), 400) == (
        "The target host can't be the same one.")
    for body in ({"onSharedStorage": False}, {"host": ""}, {"host": "a b"}, {"force": True}, None):
        assert act(nova, server_id, {"evacuate": body}).status_code == 400, body
    v229 = {"OpenStack-API-Version": "compute 2.29"}
    r = nova.post(f"/servers/{server_id}/action", headers=v229, json={"evacuate": {"force": True}})
    assert message(r, 400) == "Can't force to a non-provided destination"
    assert act(nova, server_id, {"pause": None}).status_code == 202
    settled(nova, server_id, "PAUSED")
    down_host(source)  # type: ignore[operator]
    assert message(act(nova, server_id, {"evacuate": {}}), 409) == (
        f"Cannot 'evacuate' instance {server_id} while it is in vm_state paused")
    assert nova.delete(f"/servers/{server_id}").status_code == 204
