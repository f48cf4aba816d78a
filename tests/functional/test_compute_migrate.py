"""Cold migration: through the stock CLI to another host (any, or the one
an admin names from 2.56), confirmed or reverted, with placement's
allocations checked at each step; Nova's refusals; failures injected on
the source and on the destination. Three fake hosts."""

from __future__ import annotations

import httpx
import pytest

from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    act,
    admin_fixture,
    allocations,
    boot,
    cloud_fixture,
    demo_image,
    events,
    fake,
    member_compute,
    member_fixture,
    message,
    settled,
    wait_status,
)
from tests.functional.move_support import RUNNING, SHUTDOWN, TINY, guests, migration_of, new_server
from tests.functional.test_identity_support import Member

HOSTS = ("test-host-1", "test-host-2", "test-host-3")
cloud = cloud_fixture(**{"compute.fake_hosts": 3, "compute.fake_memory_mb": 4096})
nova = admin_fixture()
member = member_fixture()


def test_migrate_and_confirm_through_the_cli(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "migrated")
    cloud.openstack("server", "migrate", "--wait", server_id)
    server = settled(nova, server_id, "VERIFY_RESIZE")
    dest = server["OS-EXT-SRV-ATTR:host"]
    assert dest != source and dest in HOSTS
    assert server["flavor"]["original_name"] == "m1.tiny"
    migration = migration_of(cloud, server_id)
    assert (migration.migration_type, migration.status, migration.source_compute, migration.dest_compute) == (
        "migration", "finished", source, dest)
    assert allocations(cloud, nova, server_id) == {dest: TINY}
    assert allocations(cloud, nova, migration.uuid) == {source: TINY}
    assert guests(cloud, server_id) == {dest: ("guest", 512, RUNNING), f"{source}:kept": ("kept", 512, SHUTDOWN)}
    cloud.openstack("server", "resize", "confirm", server_id)
    server = settled(nova, server_id, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == dest
    assert allocations(cloud, nova, server_id) == {dest: TINY}
    assert allocations(cloud, nova, migration.uuid) == {}
    assert guests(cloud, server_id) == {dest: ("guest", 512, RUNNING)}
    assert migration_of(cloud, server_id).status == "confirmed"
    assert [e for e, _ in events(nova, server_id, "migrate")] == [
        "conductor_migrate_server", "compute_prep_resize", "compute_resize_instance", "compute_finish_resize"]
    nova.delete(f"/servers/{server_id}")


def test_migrate_to_a_named_host_and_revert(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "targeted")
    target = next(h for h in reversed(HOSTS) if h != source)
    cloud.openstack("--os-compute-api-version", "2.56", "server", "migrate", "--host", target, "--wait", server_id)
    server = settled(nova, server_id, "VERIFY_RESIZE")
    assert server["OS-EXT-SRV-ATTR:host"] == target
    migration = migration_of(cloud, server_id)
    cloud.openstack("server", "resize", "revert", server_id)
    server = settled(nova, server_id, "ACTIVE")
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-STS:power_state"]) == (source, RUNNING)
    assert migration_of(cloud, server_id).status == "reverted"
    assert allocations(cloud, nova, server_id) == {source: TINY}
    assert allocations(cloud, nova, migration.uuid) == {}
    assert guests(cloud, server_id) == {source: ("guest", 512, RUNNING)}
    nova.delete(f"/servers/{server_id}")


def test_refusals(cloud: Cloud, nova: httpx.Client, member: Member) -> None:
    server_id, source = new_server(cloud, nova, "refused")

    assert message(act(nova, server_id, {"migrate": {"host": "nowhere"}}), 400) == (
        "Compute host nowhere could not be found.")
    assert message(act(nova, server_id, {"migrate": {"host": source}}), 400) == (
        "Cannot migrate to the host where the server exists.")
    assert act(nova, server_id, {"migrate": {"host": source, "force": True}}).status_code == 400
    assert act(nova, server_id, {"migrate": {"host": ""}}).status_code == 400
    # Before 2.56 the body is not looked at.
    with member_compute(cloud, member) as mine:
        assert act(mine, server_id, {"migrate": None}).status_code == 404  # another project's server
        theirs = boot(mine, cloud, name="theirs")
        settled(nova, theirs, "ACTIVE")
        r = act(mine, theirs, {"migrate": None})
        assert r.status_code == 403 and "os-migrate-server:migrate" in r.text
        mine.delete(f"/servers/{theirs}")
    act(nova, server_id, {"pause": None})
    settled(nova, server_id, "PAUSED")
    assert message(act(nova, server_id, {"migrate": None}), 409) == (
        f"Cannot 'migrate' instance {server_id} while it is in vm_state paused")
    act(nova, server_id, {"unpause": None})
    settled(nova, server_id, "ACTIVE")
    with httpx.Client(base_url=str(nova.base_url),
                      headers={**nova.headers, "OpenStack-API-Version": "compute 2.55"}) as older:
        assert act(older, server_id, {"migrate": {"host": "ignored"}}).status_code == 202
    settled(nova, server_id, "VERIFY_RESIZE")
    # A confirmation and a revert sent one after the other: the second finds nothing to do.
    assert act(nova, server_id, {"confirmResize": None}).status_code == 204
    r = act(nova, server_id, {"revertResize": None})
    assert r.status_code in (400, 409), r.text
    settled(nova, server_id, "ACTIVE")
    nova.delete(f"/servers/{server_id}")


def test_no_host_left_puts_everything_back(cloud: Cloud, nova: httpx.Client) -> None:
    """Every other host disabled: the scheduler finds none, the server stays
    ACTIVE where it was, holding its allocation, and the migration errs."""
    server_id, source = new_server(cloud, nova, "stuck")
    others = [h for h in HOSTS if h != source]
    for host in others:
        cloud.openstack("compute", "service", "set", "--disable", host, "nova-compute")
    try:
        assert act(nova, server_id, {"migrate": None}).status_code == 202
        deadline_status = wait_status(nova, server_id, {"ACTIVE"})
        assert deadline_status["OS-EXT-SRV-ATTR:host"] == source
        server = settled(nova, server_id, "ACTIVE")
    finally:
        for host in others:
            cloud.openstack("compute", "service", "set", "--enable", host, "nova-compute")
    migration = migration_of(cloud, server_id)
    assert migration.status == "error"
    assert "fault" not in server
    assert allocations(cloud, nova, server_id) == {source: TINY}
    assert allocations(cloud, nova, migration.uuid) == {}
    assert ("conductor_migrate_server", "Error") in events(nova, server_id, "migrate")
    nova.delete(f"/servers/{server_id}")


@pytest.mark.parametrize(("failing", "operation", "status"), [
    ("dest", "prepare_migration", "ACTIVE"),
    ("source", "migrate_disk_and_power_off", "ERROR"),
    ("dest", "finish_migration", "ERROR"),
])
def test_a_failed_migration_step(cloud: Cloud, nova: httpx.Client, failing: str, operation: str,
                                 status: str) -> None:
    server_id, source = new_server(cloud, nova, f"fails-{operation}")
    dest = next(h for h in HOSTS if h != source)
    driver = fake(cloud, source if failing == "source" else dest)
    driver.fail_operations.add(operation)
    try:
        r = act(nova, server_id, {"migrate": {"host": dest}})
        assert r.status_code == 202, r.text
        server = settled(nova, server_id, status)
    finally:
        driver.fail_operations.discard(operation)
    where = dest if operation == "finish_migration" else source
    migration = migration_of(cloud, server_id)
    assert (server["OS-EXT-SRV-ATTR:host"], migration.status) == (where, "error")
    assert allocations(cloud, nova, server_id) == {where: TINY}
    assert allocations(cloud, nova, migration.uuid) == {}
    assert set(guests(cloud, server_id)) == {where}
    if status == "ERROR":
        assert act(nova, server_id, {"reboot": {"type": "HARD"}}).status_code == 202
        settled(nova, server_id, "ACTIVE")
    nova.delete(f"/servers/{server_id}")
    wait_status(nova, server_id, {"DELETED"})
    assert allocations(cloud, nova, server_id) == {}


def test_a_move_keeps_its_server_group_policy(cloud: Cloud, nova: httpx.Client) -> None:
    """Three anti-affinity members fill the three hosts: a member has
    nowhere to go, so its migration errs and it stays where it was."""
    r = nova.post("/os-server-groups", json={"server_group": {"name": "apart", "policy": "anti-affinity"}})
    assert r.status_code == 200, r.text
    group = r.json()["server_group"]["id"]
    members = []
    for i in range(3):
        r = nova.post("/servers", json={
            "server": {"name": f"apart-{i}", "imageRef": demo_image(nova, cloud), "flavorRef": "1",
                       "networks": "none"},
            "os:scheduler_hints": {"group": group}})
        assert r.status_code == 202, r.text
        members.append(r.json()["server"]["id"])
    hosts = {settled(nova, m, "ACTIVE")["OS-EXT-SRV-ATTR:host"] for m in members}
    assert hosts == set(HOSTS)
    moving = members[0]
    source = nova.get(f"/servers/{moving}").json()["server"]["OS-EXT-SRV-ATTR:host"]
    assert act(nova, moving, {"migrate": None}).status_code == 202
    server = settled(nova, moving, "ACTIVE")
    migration = migration_of(cloud, moving)
    assert (server["OS-EXT-SRV-ATTR:host"], migration.status) == (source, "error")
    assert allocations(cloud, nova, moving) == {source: TINY}
    for m in members:
        nova.delete(f"/servers/{m}")
    for m in members:
        wait_status(nova, m, {"DELETED"})
    assert nova.delete(f"/os-server-groups/{group}").status_code == 204

