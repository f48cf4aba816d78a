"""The migrations APIs: ``/os-migrations`` bodies, filters and paging per
microversion (also through ``openstack server migration list``), and
``/servers/{id}/migrations``: list and show of a live migration under
way, abort and force_complete refusals as Nova makes them. Two fake hosts;
one server's live migration is kept copying (slowly) through the module."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loom.objects import migrations as migration_records
from tests.functional.cloud import Cloud
from tests.functional.compute_support import act, admin_fixture, boot, cloud_fixture, fake, message, settled
from tests.functional.live_move_support import other, wait_migration

cloud = cloud_fixture(**{"compute.fake_hosts": 2})
nova = admin_fixture()
BASE_FIELDS = {"created_at", "dest_compute", "dest_host", "dest_node", "id", "instance_uuid", "new_instance_type_id",
               "old_instance_type_id", "source_compute", "source_node", "status", "updated_at"}


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def live(nova: httpx.Client, server_id: str) -> None:
    r = act(nova, server_id, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
    assert r.status_code == 202, r.text


def add_migration(cloud: Cloud, server_id: str, **values: Any) -> int:
    """A migration record written directly (a state the API cannot be caught in)."""

    async def create() -> int:
        assert cloud.runner.db is not None
        async with cloud.runner.db.session.begin() as session:
            row = await migration_records.create(session, instance_uuid=server_id, **values)
            return row.id

    return int(cloud.run(create()))


@pytest.fixture(scope="module")
def moved(cloud: Cloud, nova: httpx.Client) -> dict[str, Any]:
    """A server live migrated once (completed)."""
    server_id = boot(nova, cloud, name="moved")
    settled(nova, server_id, "ACTIVE")
    live(nova, server_id)
    migration = wait_migration(nova, server_id, {"completed"})
    settled(nova, server_id, "ACTIVE")
    return migration


@pytest.fixture(scope="module")
def copying(cloud: Cloud, nova: httpx.Client, moved: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A server whose live migration is running (for a minute, on the fake); aborted at the end."""
    server_id = boot(nova, cloud, name="copying")
    source = settled(nova, server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    fake(cloud, source).live_migration_time = 60
    live(nova, server_id)
    migration = wait_migration(nova, server_id, {"running"})
    yield migration
    fake(cloud, source).live_migration_time = 0
    nova.delete(f"/servers/{server_id}/migrations/{migration['id']}")
    assert settled(nova, server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == source


def test_os_migrations_bodies_per_microversion(nova: httpx.Client, moved: dict[str, Any],
                                               copying: dict[str, Any]) -> None:
    r = nova.get("/os-migrations", headers={"OpenStack-API-Version": "compute 2.1"})
    listed = {m["id"]: m for m in r.json()["migrations"]}
    assert set(listed[moved["id"]]) == BASE_FIELDS
    assert listed[moved["id"]]["old_instance_type_id"] == listed[moved["id"]]["new_instance_type_id"] == 1
    listed = {m["id"]: m for m in nova.get("/os-migrations", headers=mv("2.23")).json()["migrations"]}
    assert set(listed[moved["id"]]) == BASE_FIELDS | {"migration_type"}
    # Only a live migration under way links to its /servers/{id}/migrations/{id}.
    assert set(listed[copying["id"]]) == BASE_FIELDS | {"migration_type", "links"}
    self_link = next(link["href"] for link in listed[copying["id"]]["links"] if link["rel"] == "self")
    assert self_link.endswith(f"/v2.1/servers/{copying['instance_uuid']}/migrations/{copying['id']}")
    listed = {m["id"]: m for m in nova.get("/os-migrations", headers=mv("2.59")).json()["migrations"]}
    assert set(listed[moved["id"]]) == BASE_FIELDS | {"migration_type", "uuid"}
    assert listed[moved["id"]]["uuid"] == moved["uuid"]


def test_os_migrations_filters_and_paging(nova: httpx.Client, moved: dict[str, Any],
                                          copying: dict[str, Any]) -> None:
    def ids(version: str = "2.79", **params: Any) -> list[int]:
        r = nova.get("/os-migrations", params=params, headers=mv(version))
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["migrations"]]

    assert ids() == sorted(ids(), reverse=True)  # newest first
    assert ids(status="running") == [copying["id"]]
    assert ids(instance_uuid=moved["instance_uuid"]) == [moved["id"]]
    assert ids(migration_type="evacuation") == []
    assert ids(host=moved["dest_compute"]) == sorted({moved["id"], copying["id"]}, reverse=True)
    assert moved["id"] in ids(source_compute=moved["source_compute"])
    assert moved["id"] not in ids(source_compute=moved["dest_compute"])
    first = nova.get("/os-migrations", params={"limit": 1}).json()
    assert len(first["migrations"]) == 1
    (link,) = first["migrations_links"]
    assert link["rel"] == "next" and f"marker={first['migrations'][0]['uuid']}" in link["href"]
    after = ids(limit=5, marker=first["migrations"][0]["uuid"])
    assert after == ids()[1:6]
    assert message(nova.get("/os-migrations", params={"marker": "nope"}), 400) == "Marker nope could not be found."
    assert message(nova.get("/os-migrations", params={"foo": "1"}), 400) == (
        "Invalid input for query parameters foo. Additional properties are not allowed ('foo' was unexpected)")
    assert nova.get("/os-migrations", params={"foo": "1"}, headers=mv("2.58")).status_code == 200
    assert ids(**{"changes-since": "2999-01-01T00:00:00Z"}) == []
    assert ids(**{"changes-before": "2000-01-01T00:00:00Z"}) == []
    assert nova.get("/os-migrations", params={"changes-before": "2000-01-01"}, headers=mv("2.65")).status_code == 400
    assert message(nova.get("/os-migrations", params={"changes-since": "2020-01-02T00:00:00",
                                                      "changes-before": "2020-01-01T00:00:00"}), 400) == (
        "The value of changes-since must be less than or equal to changes-before.")


def test_server_migration_list_through_the_cli(cloud: Cloud, moved: dict[str, Any],
                                               copying: dict[str, Any]) -> None:
    everything = cloud.openstack("server", "migration", "list")
    assert {moved["id"], copying["id"]} <= {m["Id"] for m in everything}
    (mine,) = cloud.openstack("server", "migration", "list", "--server", moved["instance_uuid"])
    assert (mine["Status"], mine["Type"], mine["UUID"]) == ("completed", "live-migration", moved["uuid"])
    (running,) = cloud.openstack("server", "migration", "list", "--status", "running")
    assert running["Server UUID"] == copying["instance_uuid"]


def test_server_migrations_list_and_show(nova: httpx.Client, cloud: Cloud, moved: dict[str, Any],
                                         copying: dict[str, Any]) -> None:
    server_id, mid = copying["instance_uuid"], copying["id"]
    assert nova.get(f"/servers/{server_id}/migrations", headers=mv("2.22")).status_code == 404
    (listed,) = nova.get(f"/servers/{server_id}/migrations", headers=mv("2.23")).json()["migrations"]
    assert set(listed) == {"created_at", "dest_compute", "dest_host", "dest_node", "disk_processed_bytes",
                           "disk_remaining_bytes", "disk_total_bytes", "id", "memory_processed_bytes",
                           "memory_remaining_bytes", "memory_total_bytes", "server_uuid", "source_compute",
                           "source_node", "status", "updated_at"}
    shown = nova.get(f"/servers/{server_id}/migrations/{mid}").json()["migration"]
    assert (shown["id"], shown["uuid"], shown["status"], shown["memory_total_bytes"]) == (
        mid, copying["uuid"], "running", 512 << 20)
    assert shown["dest_compute"] == other(shown["source_compute"])
    # Progress moves on while it copies.
    deadline = time.monotonic() + 10
    while nova.get(f"/servers/{server_id}/migrations/{mid}").json()["migration"][
            "memory_processed_bytes"] <= shown["memory_processed_bytes"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    done, moved_server = moved["id"], moved["instance_uuid"]
    assert nova.get(f"/servers/{moved_server}/migrations").json()["migrations"] == []
    assert message(nova.get(f"/servers/{moved_server}/migrations/{done}"), 404) == (
        f"Live migration {done} for server {moved_server} is not in progress.")
    assert message(nova.get(f"/servers/{moved_server}/migrations/999"), 404) == (
        f"In-progress live migration 999 is not found for server {moved_server}.")
    evacuation = add_migration(cloud, moved_server, migration_type="evacuation", status="done")
    assert message(nova.get(f"/servers/{moved_server}/migrations/{evacuation}"), 404) == (
        f"Migration {evacuation} for server {moved_server} is not live-migration.")


def test_abort_and_force_complete_refusals(nova: httpx.Client, cloud: Cloud, moved: dict[str, Any],
                                           copying: dict[str, Any]) -> None:
    server_id, mid = copying["instance_uuid"], copying["id"]
    idle = moved["instance_uuid"]
    assert message(nova.delete(f"/servers/{idle}/migrations/{moved['id']}"), 409) == (
        f"Cannot 'abort live migration' instance {idle} while it is in task_state None")
    assert message(nova.post(f"/servers/{idle}/migrations/{moved['id']}/action", json={"force_complete": None}),
                   409) == f"Cannot 'force_complete' instance {idle} while it is in task_state None"
    assert message(nova.delete(f"/servers/{server_id}/migrations/999"), 404) == (
        f"Migration 999 not found for instance {server_id}")
    assert message(nova.post(f"/servers/{server_id}/migrations/999/action", json={"force_complete": None}),
                   400) == f"Migration 999 not found for instance {server_id}"
    finished = add_migration(cloud, server_id, migration_type="live-migration", status="completed")
    assert message(nova.delete(f"/servers/{server_id}/migrations/{finished}"), 400) == (
        f"Migration {finished} state of instance {server_id} is completed. Cannot abort live migration while the "
        "migration is in this state.")
    assert message(nova.post(f"/servers/{server_id}/migrations/{finished}/action", json={"force_complete": None}),
                   400) == (f"Migration {finished} state of instance {server_id} is completed. Cannot force "
                            "complete while the migration is in this state.")
    queued = add_migration(cloud, server_id, migration_type="live-migration", status="queued")
    assert nova.delete(f"/servers/{server_id}/migrations/{queued}", headers=mv("2.64")).status_code == 400
    assert nova.delete(f"/servers/{server_id}/migrations/{mid}", headers=mv("2.23")).status_code == 404
    assert nova.post(f"/servers/{server_id}/migrations/{mid}/action", headers=mv("2.21"),
                     json={"force_complete": None}).status_code == 404
    for body in ({"force_complete": {}}, {"force_complete": None, "x": 1}, {}):
        assert nova.post(f"/servers/{server_id}/migrations/{mid}/action", json=body).status_code == 400, body
    # None of that touched the migration under way.
    assert nova.get(f"/servers/{server_id}/migrations/{mid}").json()["migration"]["status"] == "running"
