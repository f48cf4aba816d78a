"""Live migration: through the stock CLI to the scheduler's choice and to a
named host, with placement's allocations and the fake hosts' guests
checked; a slow fake migration watched, aborted and forced to finish; a
failure injected in the copy rolls back to the source; Nova's refusals.
Two fake hosts."""

from __future__ import annotations

import time

import httpx

from loom.objects import instances
from loom.objects import migrations as migration_records
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
    host_of,
    member_compute,
    member_fixture,
    message,
    settled,
)
from tests.functional.live_move_support import migrations, other, wait_migration
from tests.functional.move_support import RUNNING, TINY, new_server, restart_compute
from tests.functional.test_identity_support import Member

cloud = cloud_fixture(**{"compute.fake_hosts": 2})
nova = admin_fixture()
member = member_fixture()
MIB = 1 << 20


def live(nova: httpx.Client, server_id: str, host: str | None = None, **extra: object) -> httpx.Response:
    return act(nova, server_id, {"os-migrateLive": {"host": host, "block_migration": "auto", **extra}})


def test_live_migration_through_the_cli(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "moved")
    dest = other(source)
    cloud.openstack("server", "migrate", "--live-migration", "--wait", server_id)
    server = settled(nova, server_id, "ACTIVE")
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-STS:power_state"]) == (dest, RUNNING)
    assert server_id in fake(cloud, dest)._guests and server_id not in fake(cloud, source)._guests
    (migration,) = migrations(nova, server_id)
    assert (migration["migration_type"], migration["status"]) == ("live-migration", "completed")
    assert (migration["source_compute"], migration["dest_compute"]) == (source, dest)
    assert allocations(cloud, nova, server_id) == {dest: TINY}
    assert allocations(cloud, nova, migration["uuid"]) == {}
    assert events(nova, server_id, "live-migration") == [("conductor_live_migrate_instance", "Success"),
                                                         ("compute_live_migration", "Success")]
    # Back again, to a named host this time.
    cloud.openstack("server", "migrate", "--live-migration", "--host", source, "--wait", server_id)
    assert host_of(nova, server_id) == source
    assert allocations(cloud, nova, server_id) == {source: TINY}
    listed = cloud.openstack("server", "migration", "list", "--server", server_id, "--status", "completed")
    assert {(m["Source Compute"], m["Dest Compute"], m["Type"]) for m in listed} == {
        (source, dest, "live-migration"), (dest, source, "live-migration")}
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_a_paused_server_moves_paused(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "paused")
    assert act(nova, server_id, {"pause": None}).status_code == 202
    settled(nova, server_id, "PAUSED")
    assert live(nova, server_id).status_code == 202
    server = settled(nova, server_id, "PAUSED")
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-STS:power_state"]) == (other(source), 3)
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def _slow(cloud: Cloud, nova: httpx.Client, name: str) -> tuple[str, str, dict[str, object]]:
    """A server whose live migration is copying (30 s on the fake) and that migration."""
    server_id, source = new_server(cloud, nova, name)
    fake(cloud, source).live_migration_time = 30
    assert live(nova, server_id).status_code == 202
    assert nova.get(f"/servers/{server_id}").json()["server"]["status"] == "MIGRATING"
    deadline = time.monotonic() + 10
    while True:
        (migration,) = nova.get(f"/servers/{server_id}/migrations").json()["migrations"]
        if migration["status"] == "running" and migration["memory_processed_bytes"]:
            return server_id, source, migration
        assert time.monotonic() < deadline, migration
        time.sleep(0.05)


def test_a_slow_migration_shows_its_progress_and_can_be_aborted(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source, migration = _slow(cloud, nova, "aborted")
    dest = other(source)
    try:
        assert migration["memory_total_bytes"] == 512 * MIB
        assert migration["memory_processed_bytes"] + migration["memory_remaining_bytes"] == 512 * MIB
        assert (migration["source_compute"], migration["dest_compute"], migration["server_uuid"]) == (
            source, dest, server_id)
        # While it copies, both hosts hold the server: the source by the migration.
        assert allocations(cloud, nova, server_id) == {dest: TINY}
        assert allocations(cloud, nova, str(migration["uuid"])) == {source: TINY}
        # By uuid: this openstackclient swaps server and id when showing by id.
        shown = cloud.openstack("server", "migration", "show", server_id, str(migration["uuid"]))
        assert (shown["Status"], shown["Memory Total Bytes"]) == ("running", 512 * MIB)
        cloud.openstack("server", "migration", "abort", server_id, str(migration["id"]))
        server = settled(nova, server_id, "ACTIVE")
    finally:
        fake(cloud, source).live_migration_time = 0
    assert server["OS-EXT-SRV-ATTR:host"] == source
    assert wait_migration(nova, server_id, {"cancelled"})["id"] == migration["id"]
    assert allocations(cloud, nova, server_id) == {source: TINY}
    assert allocations(cloud, nova, str(migration["uuid"])) == {}
    assert server_id in fake(cloud, source)._guests and server_id not in fake(cloud, dest)._incoming
    assert nova.get(f"/servers/{server_id}/migrations").json()["migrations"] == []
    assert [a["action"] for a in nova.get(f"/servers/{server_id}/os-instance-actions").json()[
        "instanceActions"]][:2] == ["live_migration_cancel", "live-migration"]
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_a_slow_migration_can_be_forced_to_complete(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source, migration = _slow(cloud, nova, "forced")
    try:
        cloud.openstack("server", "migration", "force", "complete", server_id, str(migration["id"]))
        server = settled(nova, server_id, "ACTIVE", timeout=10)  # well before the 30 s the copy takes
    finally:
        fake(cloud, source).live_migration_time = 0
    assert server["OS-EXT-SRV-ATTR:host"] == other(source)
    done = wait_migration(nova, server_id, {"completed"})
    assert done["id"] == migration["id"]
    assert allocations(cloud, nova, server_id) == {other(source): TINY}
    assert allocations(cloud, nova, done["uuid"]) == {}
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_a_failed_copy_leaves_the_server_on_its_source(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "failing")
    fake(cloud, source).fail_operations.add("live_migration")
    try:
        assert live(nova, server_id).status_code == 202
        failed = wait_migration(nova, server_id, {"error"})
        server = settled(nova, server_id, "ACTIVE")
    finally:
        fake(cloud, source).fail_operations.discard("live_migration")
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-STS:power_state"]) == (source, RUNNING)
    assert allocations(cloud, nova, server_id) == {source: TINY}
    assert allocations(cloud, nova, failed["uuid"]) == {}
    assert server_id not in fake(cloud, other(source))._incoming
    assert events(nova, server_id, "live-migration")[-1] == ("compute_live_migration", "Error")
    # It can move once the hypervisor lets it.
    assert live(nova, server_id).status_code == 202
    assert wait_migration(nova, server_id, {"completed"})
    assert host_of(nova, server_id) == other(source)
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_refusals_as_nova_makes_them(cloud: Cloud, nova: httpx.Client, member: Member) -> None:
    server_id, source = new_server(cloud, nova, "refused")
    # A destination that is the source: refused by the conductor, answered
    # at once before 2.34, seen in the migration from it.
    old = {"OpenStack-API-Version": "compute 2.30"}
    r = nova.post(f"/servers/{server_id}/action", headers=old,
                  json={"os-migrateLive": {"host": source, "block_migration": False}})
    assert message(r, 400) == f"Unable to migrate instance ({server_id}) to current host ({source})."
    assert live(nova, server_id, source).status_code == 202
    assert wait_migration(nova, server_id, {"error"})["dest_compute"] is None
    settled(nova, server_id, "ACTIVE")
    assert allocations(cloud, nova, server_id) == {source: TINY}
    assert message(live(nova, server_id, "nowhere"), 400) == "Compute host nowhere could not be found."
    cloud.openstack("compute", "service", "set", "--down", source, "nova-compute")
    try:
        r = nova.post(f"/servers/{server_id}/action", headers=old,
                      json={"os-migrateLive": {"host": None, "block_migration": False}})
        assert message(r, 400) == f"Compute service of {source} is unavailable at this time."
    finally:
        cloud.openstack("compute", "service", "set", "--up", source, "nova-compute")
    r = nova.post(f"/servers/{server_id}/action", headers=old,
                  json={"os-migrateLive": {"host": None, "block_migration": False, "force": True}})
    assert message(r, 400) == "Can't force to a non-provided destination"
    for body in ({"host": None}, {"block_migration": True}, {"host": None, "block_migration": "maybe"},
                 {"host": None, "block_migration": True, "force": False},  # no force from 2.68
                 {"host": None, "block_migration": True, "disk_over_commit": False}):
        assert act(nova, server_id, {"os-migrateLive": body}).status_code == 400, body
    # Before 2.25 disk_over_commit is required and "auto" is no boolean.
    v21 = {"OpenStack-API-Version": "compute 2.1"}
    r = nova.post(f"/servers/{server_id}/action", headers=v21,
                  json={"os-migrateLive": {"host": None, "block_migration": "auto", "disk_over_commit": False}})
    assert r.status_code == 400
    assert act(nova, server_id, {"os-stop": None}).status_code == 202
    settled(nova, server_id, "SHUTOFF")
    assert message(live(nova, server_id), 409) == (
        f"Cannot 'os-migrateLive' instance {server_id} while it is in vm_state stopped")
    with member_compute(cloud, member) as mine:
        theirs = boot(mine, cloud, name="theirs")
        settled(nova, theirs, "ACTIVE")
        assert live(mine, theirs).status_code == 403
        assert mine.get("/os-migrations").status_code == 403
        assert mine.delete(f"/servers/{theirs}").status_code == 204
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_a_restart_of_the_source_rolls_an_interrupted_migration_back(cloud: Cloud, nova: httpx.Client) -> None:
    """As if the source's compute service died while copying: its
    migration is running and the server migrating when it starts again."""
    server_id, source = new_server(cloud, nova, "interrupted")

    async def interrupt() -> int:
        assert cloud.runner.db is not None
        async with cloud.runner.db.session.begin() as session:
            await instances.set_fields(session, server_id, {"task_state": "migrating"})
            row = await migration_records.create(
                session, instance_uuid=server_id, migration_type="live-migration", status="running",
                source_compute=source, source_node=source, dest_compute=other(source), dest_node=other(source))
            return row.id

    migration_id = cloud.run(interrupt())
    restart_compute(cloud, source)
    server = settled(nova, server_id, "ACTIVE")
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-STS:power_state"]) == (source, RUNNING)
    assert wait_migration(nova, server_id, {"error"})["id"] == migration_id
    assert allocations(cloud, nova, server_id) == {source: TINY}
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_a_forced_host_skips_the_filters_a_named_one_does_not(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "forced-host")
    dest = other(source)
    cloud.openstack("compute", "service", "set", "--disable", dest, "nova-compute")
    try:
        # Named (2.68 and later never force): the scheduler's filters refuse a disabled host.
        assert live(nova, server_id, dest).status_code == 202
        refused = wait_migration(nova, server_id, {"error"})
        assert settled(nova, server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == source
        assert allocations(cloud, nova, server_id) == {source: TINY}
        assert allocations(cloud, nova, refused["uuid"]) == {}
        # Forced (2.30 to 2.67): no filters, as in Nova; placement still claims.
        r = nova.post(f"/servers/{server_id}/action", headers={"OpenStack-API-Version": "compute 2.30"},
                      json={"os-migrateLive": {"host": dest, "block_migration": "auto", "force": True}})
        assert r.status_code == 202, r.text
        assert wait_migration(nova, server_id, {"completed"})["dest_compute"] == dest
    finally:
        cloud.openstack("compute", "service", "set", "--enable", dest, "nova-compute")
    assert allocations(cloud, nova, server_id) == {dest: TINY}
    assert nova.delete(f"/servers/{server_id}").status_code == 204


def test_a_server_deleted_while_it_moves_leaves_nothing_behind(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "deleted")
    dest = other(source)
    fake(cloud, source).live_migration_time = 1.5
    try:
        assert live(nova, server_id).status_code == 202
        migration = wait_migration(nova, server_id, {"running"})
        assert nova.delete(f"/servers/{server_id}").status_code == 204
        deadline = time.monotonic() + 15
        while nova.get(f"/servers/{server_id}").status_code != 404 or any(
                server_id in fake(cloud, h)._guests for h in (source, dest)):
            assert time.monotonic() < deadline, "the server or a guest of it stayed"
            time.sleep(0.05)
    finally:
        fake(cloud, source).live_migration_time = 0
    assert allocations(cloud, nova, server_id) == {}
    assert allocations(cloud, nova, migration["uuid"]) == {}


def test_anti_affinity_holds_on_a_move(cloud: Cloud, nova: httpx.Client) -> None:
    r = nova.post("/os-server-groups", json={"server_group": {"name": "apart", "policy": "anti-affinity"}})
    assert r.status_code == 200, r.text
    group = r.json()["server_group"]["id"]
    members = []
    for name in ("apart-1", "apart-2"):
        r = nova.post("/servers", json={"server": {"name": name, "imageRef": demo_image(nova, cloud),
                                                   "flavorRef": "1", "networks": "none"},
                                        "os:scheduler_hints": {"group": group}})
        assert r.status_code == 202, r.text
        members.append(str(r.json()["server"]["id"]))
    hosts = {settled(nova, m, "ACTIVE")["OS-EXT-SRV-ATTR:host"] for m in members}
    assert len(hosts) == 2
    source = host_of(nova, members[0])
    assert live(nova, members[0]).status_code == 202
    assert wait_migration(nova, members[0], {"error"})
    assert settled(nova, members[0], "ACTIVE")["OS-EXT-SRV-ATTR:host"] == source
    assert allocations(cloud, nova, members[0]) == {source: TINY}
    for m in members:
        assert nova.delete(f"/servers/{m}").status_code == 204
