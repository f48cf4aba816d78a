"""Acceptance of soft delete (delete, restore, forceDelete, the reclaim
periodic), the usage report (os-simple-tenant-usage), external events,
the instance usage audit log, and the heal-allocations periodic: through
the stock CLI where it has commands, over plain HTTP for bodies and
refusals. Periodic tasks are run by calling them on the compute manager."""

from __future__ import annotations

import datetime as dt
import time
import uuid as uuidlib
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from loom.db.models import Instance
from loom.scheduler.hosts import compute_node_uuid
from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    act,
    admin_fixture,
    allocations,
    boot,
    cloud_fixture,
    compute,
    events,
    member_compute,
    member_fixture,
    settled,
    wait_status,
)
from tests.functional.test_identity_support import Member

cloud = cloud_fixture(**{"compute.reclaim_instance_interval": 3600, "compute.sync_power_state_interval": 0,
                         "compute.heal_allocations_interval": 0})
nova = admin_fixture()
member = member_fixture()

RUNNING, SHUTDOWN = 1, 4


def set_allocation(cloud: Cloud, nova: httpx.Client, consumer: str, resources: dict[str, int] | None) -> None:
    url = f"{cloud.url}/placement/allocations/{consumer}"
    headers = {"X-Auth-Token": nova.headers["X-Auth-Token"], "OpenStack-API-Version": "placement 1.28"}
    if resources is None:
        r = httpx.delete(url, headers=headers)
    else:
        current = httpx.get(url, headers=headers).json()
        body = {"allocations": {compute_node_uuid(compute(cloud).host): {"resources": resources}},
                "project_id": current.get("project_id", "p"), "user_id": current.get("user_id", "u"),
                "consumer_generation": current.get("consumer_generation")}
        r = httpx.put(url, headers=headers, json=body)
    assert r.status_code == 204, r.text


def write(cloud: Cloud, uuid: str, **values: Any) -> None:
    """Change an instance's record behind the API (times the test cannot wait for)."""

    async def run() -> None:
        async with cloud.runner.db.session.begin() as session:
            await session.execute(update(Instance).where(Instance.uuid == uuid).values(**values))

    cloud.run(run())


def actions(nova: httpx.Client, server_id: str) -> list[dict[str, Any]]:
    return list(nova.get(f"/servers/{server_id}/os-instance-actions").json()["instanceActions"])


def tiny(cloud: Cloud) -> dict[str, int]:
    return {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}


def active_server(nova: httpx.Client, cloud: Cloud, name: str) -> str:
    server_id = boot(nova, cloud, name=name)
    settled(nova, server_id, "ACTIVE")
    return server_id


def soft_deleted(client: httpx.Client, server_id: str) -> None:
    assert client.delete(f"/servers/{server_id}").status_code == 204
    settled(client, server_id, "SOFT_DELETED")


def force_deleted(client: httpx.Client, server_id: str) -> None:
    assert act(client, server_id, {"forceDelete": None}).status_code == 202
    wait_status(client, server_id, {"DELETED"})


def instances_used(nova: httpx.Client) -> int:
    return int(nova.get("/limits").json()["limits"]["absolute"]["totalInstancesUsed"])


# Soft delete, restore, forceDelete, reclaim.


def test_delete_soft_deletes_and_restore_brings_the_server_back(cloud: Cloud, nova: httpx.Client) -> None:
    server_id = active_server(nova, cloud, "soft")
    held = allocations(cloud, nova, server_id)
    assert list(held.values()) == [tiny(cloud)]
    used = instances_used(nova)

    cloud.openstack("server", "delete", server_id)
    server = settled(nova, server_id, "SOFT_DELETED")
    assert (server["OS-EXT-STS:vm_state"], server["OS-EXT-STS:power_state"]) == ("soft-delete", SHUTDOWN)
    guest = compute(cloud).driver
    assert cloud.run(guest.get_info(server_id)).power_state == SHUTDOWN
    # The host and the allocation stay while it can come back; its quota is
    # free until then, as in Nova.
    assert server["OS-EXT-SRV-ATTR:host"] == compute(cloud).host
    assert allocations(cloud, nova, server_id) == held
    assert instances_used(nova) == used - 1
    assert events(nova, server_id, "delete") == [("compute_soft_delete_instance", "Success")]

    cloud.openstack("server", "restore", server_id)
    server = settled(nova, server_id, "ACTIVE")
    assert (server["OS-EXT-STS:vm_state"], server["OS-EXT-STS:power_state"]) == ("active", RUNNING)
    assert cloud.run(guest.get_info(server_id)).power_state == RUNNING
    assert allocations(cloud, nova, server_id) == held
    assert instances_used(nova) == used
    assert events(nova, server_id, "restore") == [("compute_restore_instance", "Success")]
    # Restored, it is no longer reclaimable: the periodic leaves it.
    write(cloud, server_id, deleted_at=dt.datetime(2020, 1, 1))
    assert cloud.run(compute(cloud).reclaim_queued_deletes()) is None
    settled(nova, server_id, "ACTIVE")
    force_deleted(nova, server_id)


def test_soft_deleted_servers_are_listed_only_by_status(cloud: Cloud, nova: httpx.Client) -> None:
    server_id = active_server(nova, cloud, "hidden")
    soft_deleted(nova, server_id)
    assert server_id not in {s["id"] for s in nova.get("/servers").json()["servers"]}
    listed = nova.get("/servers/detail", params={"status": "SOFT_DELETED"}).json()["servers"]
    assert server_id in {s["id"] for s in listed}
    force_deleted(nova, server_id)


def test_restore_takes_quota_again(cloud: Cloud, nova: httpx.Client, member: Member) -> None:
    with member_compute(cloud, member) as mine:
        first = active_server(mine, cloud, "first")
        soft_deleted(mine, first)
        project = mine.get(f"/servers/{first}").json()["server"]["tenant_id"]
        r = nova.put(f"/os-quota-sets/{project}", json={"quota_set": {"instances": 1}})
        assert r.status_code == 200, r.text
        try:
            # The soft-deleted server freed its place: another one fits ...
            second = active_server(mine, cloud, "second")
            # ... and the first cannot come back over the limit; nothing changes.
            r = act(mine, first, {"restore": None})
        finally:
            assert nova.delete(f"/os-quota-sets/{project}").status_code == 202
        assert r.status_code == 403, r.text
        assert "Quota exceeded for instances" in r.json()["forbidden"]["message"]
        server = mine.get(f"/servers/{first}").json()["server"]
        assert (server["status"], server["OS-EXT-STS:task_state"]) == ("SOFT_DELETED", None)
        assert "restore" not in {a["action"] for a in actions(mine, first)}
        for server_id in (first, second):
            force_deleted(nova, server_id)


def test_restore_is_refused_unless_soft_deleted(cloud: Cloud, nova: httpx.Client, member: Member) -> None:
    server_id = active_server(nova, cloud, "not-deleted")
    r = act(nova, server_id, {"restore": None})
    assert r.status_code == 409, r.text
    assert r.json() == {"conflictingRequest": {
        "code": 409, "message": f"Cannot 'restore' instance {server_id} while it is in vm_state active"}}
    # Another project's server is not found, as any other action.
    with member_compute(cloud, member) as mine:
        assert act(mine, server_id, {"restore": None}).status_code == 404
        assert act(mine, server_id, {"forceDelete": None}).status_code == 404
    force_deleted(nova, server_id)


def test_force_delete_deletes_a_soft_deleted_server_now(cloud: Cloud, nova: httpx.Client) -> None:
    server_id = active_server(nova, cloud, "forced")
    soft_deleted(nova, server_id)
    assert allocations(cloud, nova, server_id) != {}
    r = act(nova, server_id, {"forceDelete": None})
    assert r.status_code == 202, r.text
    wait_status(nova, server_id, {"DELETED"})
    assert allocations(cloud, nova, server_id) == {}
    assert server_id not in cloud.run(compute(cloud).driver.list_instances())


def test_the_reclaim_periodic_deletes_servers_soft_deleted_long_enough(cloud: Cloud, nova: httpx.Client) -> None:
    old, recent = active_server(nova, cloud, "old"), active_server(nova, cloud, "recent")
    for server_id in (old, recent):
        soft_deleted(nova, server_id)
    write(cloud, old, deleted_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=3700))
    cloud.run(compute(cloud).reclaim_queued_deletes())
    wait_status(nova, old, {"DELETED"})
    assert allocations(cloud, nova, old) == {}
    assert old not in cloud.run(compute(cloud).driver.list_instances())
    reclaimed = next(a for a in actions(nova, old) if a["action"] == "delete" and a["message"])
    assert reclaimed["message"] == "reclaimed after 3600 seconds soft-deleted"
    # Within the interval: kept, with its allocation.
    assert settled(nova, recent, "SOFT_DELETED")["OS-EXT-STS:vm_state"] == "soft-delete"
    assert list(allocations(cloud, nova, recent).values()) == [tiny(cloud)]
    # A restore accepted before the reclaim runs wins over it.
    write(cloud, recent, deleted_at=dt.datetime(2020, 1, 1))
    assert act(nova, recent, {"restore": None}).status_code == 202
    cloud.run(compute(cloud).reclaim_queued_deletes())
    assert settled(nova, recent, "ACTIVE")["OS-EXT-STS:power_state"] == RUNNING
    assert list(allocations(cloud, nova, recent).values()) == [tiny(cloud)]
    force_deleted(nova, recent)


def test_a_server_without_a_host_is_deleted_at_once(cloud: Cloud, nova: httpx.Client) -> None:
    r = nova.post("/flavors", json={"flavor": {"name": "huge", "ram": 40_000, "vcpus": 1, "disk": 1}})
    assert r.status_code == 200, r.text
    try:
        server_id = boot(nova, cloud, name="nowhere", flavorRef=r.json()["flavor"]["id"])
        server = wait_status(nova, server_id, {"ERROR"})
        assert server["OS-EXT-SRV-ATTR:host"] is None
        assert nova.delete(f"/servers/{server_id}").status_code == 204
        assert nova.get(f"/servers/{server_id}").status_code == 404
    finally:
        nova.delete(f"/flavors/{r.json()['flavor']['id']}")


# The instance usage audit.


def test_the_usage_audit_records_each_host_once_per_hour(cloud: Cloud, nova: httpx.Client) -> None:
    host = compute(cloud).host
    before = nova.get("/os-instance_usage_audit_log").json()["instance_usage_audit_logs"]
    begin = dt.datetime.strptime(before["period_beginning"], "%Y-%m-%d %H:%M:%S")
    assert dt.datetime.strptime(before["period_ending"], "%Y-%m-%d %H:%M:%S") - begin == dt.timedelta(hours=1)
    assert {k: before[k] for k in ("num_hosts", "num_hosts_done", "num_hosts_not_run", "hosts_not_run", "log",
                                   "overall_status", "total_instances")} == {
        "num_hosts": 1, "num_hosts_done": 0, "num_hosts_not_run": 1, "hosts_not_run": [host], "log": {},
        "overall_status": "0 of 1 hosts done. 0 errors.", "total_instances": 0}
    # One server ran during the audited hour (launched before it ends).
    server_id = active_server(nova, cloud, "audited")
    write(cloud, server_id, launched_at=begin - dt.timedelta(minutes=10))

    cloud.run(compute(cloud).instance_usage_audit())
    cloud.run(compute(cloud).instance_usage_audit())  # a second run of the hour adds nothing
    after = nova.get("/os-instance_usage_audit_log").json()["instance_usage_audit_logs"]
    assert after["period_beginning"] == before["period_beginning"]
    entry = after["log"][host]
    assert (entry["state"], entry["instances"], entry["errors"]) == ("DONE", 1, 0)
    assert entry["message"].startswith(f"Instance usage audit ran for host {host}, 1 instances in ")
    assert {k: after[k] for k in ("num_hosts", "num_hosts_done", "num_hosts_running", "num_hosts_not_run",
                                  "hosts_not_run", "overall_status", "total_instances", "total_errors")} == {
        "num_hosts": 1, "num_hosts_done": 1, "num_hosts_running": 0, "num_hosts_not_run": 0, "hosts_not_run": [],
        "overall_status": "ALL hosts done. 0 errors.", "total_instances": 1, "total_errors": 0}

    # An earlier hour, by the time before which it ended.
    r = nova.get("/os-instance_usage_audit_log/2026-01-01 00:30:00")
    assert r.status_code == 200, r.text
    earlier = r.json()["instance_usage_audit_log"]
    assert (earlier["period_beginning"], earlier["period_ending"]) == ("2025-12-31 23:00:00", "2026-01-01 00:00:00")
    assert (earlier["log"], earlier["hosts_not_run"]) == ({}, [host])
    r = nova.get("/os-instance_usage_audit_log/yesterday")
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Invalid timestamp for date yesterday"
    force_deleted(nova, server_id)


def test_the_usage_audit_log_is_for_admins(cloud: Cloud, member: Member) -> None:
    with member_compute(cloud, member) as mine:
        assert mine.get("/os-instance_usage_audit_log").status_code == 403


# Usage.


@pytest.fixture(scope="module")
def usage_project(cloud: Cloud, nova: httpx.Client, member: Member) -> dict[str, str]:
    """Two servers of the member's project with known times on 2026-01-01: a
    tiny one running since 06:00, a small one that ran 12:00 to 18:00 and
    was deleted."""
    with member_compute(cloud, member) as mine:
        running = boot(mine, cloud, name="running")
        gone = boot(mine, cloud, name="gone", flavorRef="2")
        for server_id in (running, gone):
            settled(nova, server_id, "ACTIVE")
        assert act(mine, gone, {"forceDelete": None}).status_code == 202
        wait_status(nova, gone, {"DELETED"})
    write(cloud, running, launched_at=dt.datetime(2026, 1, 1, 6))
    write(cloud, gone, launched_at=dt.datetime(2026, 1, 1, 12), terminated_at=dt.datetime(2026, 1, 1, 18))
    return {"running": running, "gone": gone}


def test_usage_through_the_cli(cloud: Cloud, usage_project: dict[str, str], member: Member) -> None:
    shown = cloud.openstack("usage", "show", "--project", member.project_id, "--start", "2026-01-01", "--end",
                            "2026-01-02")
    assert shown["Project"] == member.project_id
    assert len(shown["Servers"]) == 2
    # 18 tiny hours and 6 small ones.
    assert shown["CPU Hours"] == pytest.approx(24.0)
    assert shown["RAM MB-Hours"] == pytest.approx(18 * 512 + 6 * 2048)
    assert shown["Disk GB-Hours"] == pytest.approx(18 * 1 + 6 * 20)

    listed = cloud.openstack("usage", "list", "--start", "2026-01-01", "--end", "2026-01-02")
    assert [(row["Project"], row["CPU Hours"]) for row in listed] == [(member.project_id, pytest.approx(24.0))]
    table = cloud.openstack("usage", "list", "--start", "2026-01-01", "--end", "2026-01-02", parse=False)
    assert "Usage from 2026-01-01 to 2026-01-02" in table
    row = next(line for line in table.splitlines() if member.project in line)
    # The client asks for detailed=True, which Nova reads as not detailed
    # (only "1" is): no server list, so its Servers column stays empty.
    assert [cell.strip() for cell in row.strip("|").split("|")] == [member.project, "", "21504.00", "24.00",
                                                                     "138.00"]


def test_usage_bodies_as_nova_shows_them(cloud: Cloud, nova: httpx.Client, usage_project: dict[str, str],
                                         member: Member) -> None:
    window = {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"}
    r = nova.get(f"/os-simple-tenant-usage/{member.project_id}", params=window)
    assert r.status_code == 200, r.text
    usage = r.json()["tenant_usage"]
    servers = {s["name"]: s for s in usage.pop("server_usages")}
    assert usage == {"tenant_id": member.project_id, "total_hours": 24.0, "total_vcpus_usage": 24.0,
                     "total_memory_mb_usage": 21504.0, "total_local_gb_usage": 138.0,
                     "start": "2026-01-01T00:00:00.000000", "stop": "2026-01-02T00:00:00.000000"}
    assert servers["gone"] == {
        "instance_id": usage_project["gone"], "name": "gone", "tenant_id": member.project_id, "flavor": "m1.small",
        "hours": 6.0, "vcpus": 1, "memory_mb": 2048, "local_gb": 20, "state": "terminated",
        "started_at": "2026-01-01T12:00:00.000000", "ended_at": "2026-01-01T18:00:00.000000", "uptime": 21600}
    running = servers["running"]
    assert (running["hours"], running["state"], running["ended_at"], running["flavor"]) == (
        18.0, "active", None, "m1.tiny")
    assert running["uptime"] > 300 * 24 * 3600  # since January

    # All projects, summaries only unless detailed=1.
    listed = nova.get("/os-simple-tenant-usage", params=window).json()["tenant_usages"]
    assert [(u["tenant_id"], u["total_hours"], "server_usages" in u) for u in listed] == [
        (member.project_id, 24.0, False)]
    detailed = nova.get("/os-simple-tenant-usage", params={**window, "detailed": "1"}).json()["tenant_usages"]
    assert len(detailed[0]["server_usages"]) == 2


def test_usage_pages_from_2_40(cloud: Cloud, nova: httpx.Client, usage_project: dict[str, str],
                               member: Member) -> None:
    window = {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"}
    first_id, second_id = sorted(usage_project.values())
    r = nova.get(f"/os-simple-tenant-usage/{member.project_id}", params={**window, "limit": "1"})
    body = r.json()
    assert [s["instance_id"] for s in body["tenant_usage"]["server_usages"]] == [first_id]
    (link,) = body["tenant_usage_links"]
    assert link["rel"] == "next" and f"marker={first_id}" in link["href"]
    assert link["href"].startswith(f"{cloud.url}/compute/v2.1/os-simple-tenant-usage/{member.project_id}?")
    following = nova.get(link["href"]).json()
    assert [s["instance_id"] for s in following["tenant_usage"]["server_usages"]] == [second_id]
    assert "tenant_usage_links" in following  # a full page always links on, as Nova's
    last = nova.get(f"/os-simple-tenant-usage/{member.project_id}",
                    params={**window, "limit": "1", "marker": second_id}).json()
    assert last == {"tenant_usage": {}}
    # Before 2.40 there is no paging.
    with httpx.Client(base_url=nova.base_url, headers={"X-Auth-Token": nova.headers["X-Auth-Token"],
                                                       "OpenStack-API-Version": "compute 2.39"}) as old:
        body = old.get(f"/os-simple-tenant-usage/{member.project_id}", params={**window, "limit": "1"}).json()
    assert len(body["tenant_usage"]["server_usages"]) == 2 and "tenant_usage_links" not in body
    r = nova.get("/os-simple-tenant-usage", params={**window, "marker": str(uuidlib.uuid4())})
    assert r.status_code == 400 and r.json()["badRequest"]["message"].startswith("Marker ")


def test_usage_refusals(cloud: Cloud, nova: httpx.Client, member: Member) -> None:
    r = nova.get("/os-simple-tenant-usage", params={"start": "yesterday"})
    assert (r.status_code, r.json()["badRequest"]["message"]) == (
        400, "Invalid datetime string: Datetime is in invalid format")
    r = nova.get("/os-simple-tenant-usage", params={"start": "2026-01-02T00:00:00", "end": "2026-01-01T00:00:00"})
    assert (r.status_code, r.json()["badRequest"]["message"]) == (
        400, "Invalid start time. The start time cannot occur after the end time.")
    with member_compute(cloud, member) as mine:
        assert mine.get(f"/os-simple-tenant-usage/{member.project_id}").status_code == 200
        assert mine.get("/os-simple-tenant-usage").status_code == 403
        assert mine.get("/os-simple-tenant-usage/someone-else").status_code == 403


# External events.


def post_events(client: httpx.Client, events: list[dict[str, Any]], version: str = "2.79") -> httpx.Response:
    return client.post("/os-server-external-events", json={"events": events},
                       headers={"OpenStack-API-Version": f"compute {version}"})


def test_external_events_codes(cloud: Cloud, nova: httpx.Client, member: Member) -> None:
    server_id = active_server(nova, cloud, "evented")
    r = nova.post("/flavors", json={"flavor": {"name": "too-big", "ram": 40_000, "vcpus": 1, "disk": 1}})
    flavor_id = r.json()["flavor"]["id"]
    hostless = boot(nova, cloud, name="hostless", flavorRef=flavor_id)
    wait_status(nova, hostless, {"ERROR"})
    unknown = str(uuidlib.uuid4())

    r = post_events(nova, [{"name": "network-changed", "server_uuid": server_id}])
    assert r.status_code == 200, r.text
    assert r.json() == {"events": [{"name": "network-changed", "server_uuid": server_id, "status": "completed",
                                    "code": 200}]}
    r = post_events(nova, [
        {"name": "network-vif-plugged", "server_uuid": server_id, "tag": "port-1", "status": "completed"},
        {"name": "network-vif-unplugged", "server_uuid": unknown, "tag": "port-2"},
        {"name": "network-vif-deleted", "server_uuid": hostless, "tag": "port-3"},
        {"name": "volume-extended", "server_uuid": server_id},
    ])
    assert r.status_code == 207, r.text
    assert r.json() == {"events": [
        {"name": "network-vif-plugged", "server_uuid": server_id, "tag": "port-1", "status": "completed",
         "code": 200},
        {"name": "network-vif-unplugged", "server_uuid": unknown, "tag": "port-2", "status": "failed", "code": 404},
        {"name": "network-vif-deleted", "server_uuid": hostless, "tag": "port-3", "status": "failed", "code": 422},
        {"name": "volume-extended", "server_uuid": server_id, "status": "failed", "code": 400},
    ]}
    r = post_events(nova, [{"name": "volume-extended", "server_uuid": server_id, "tag": str(uuidlib.uuid4())}])
    assert r.status_code == 200
    deadline = time.monotonic() + 10
    while events(nova, server_id, "extend_volume") != [("compute_extend_volume", "Success")]:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    with member_compute(cloud, member) as mine:
        assert post_events(mine, [{"name": "network-changed", "server_uuid": server_id}]).status_code == 403
    assert nova.delete(f"/servers/{hostless}").status_code == 204
    nova.delete(f"/flavors/{flavor_id}")
    assert act(nova, server_id, {"forceDelete": None}).status_code == 202


def test_power_update_events_sync_the_power_state(cloud: Cloud, nova: httpx.Client) -> None:
    server_id = active_server(nova, cloud, "powered")
    r = post_events(nova, [{"name": "power-update", "server_uuid": server_id, "tag": "POWER_OFF"}])
    assert r.status_code == 200, r.text
    server = settled(nova, server_id, "SHUTOFF")
    assert server["OS-EXT-STS:power_state"] == SHUTDOWN
    assert cloud.run(compute(cloud).driver.get_info(server_id)).power_state == SHUTDOWN
    assert events(nova, server_id, "stop") == [("compute_power_update", "Success")]
    assert post_events(nova, [{"name": "power-update", "server_uuid": server_id, "tag": "POWER_ON"}],
                       "2.76").status_code == 200
    assert settled(nova, server_id, "ACTIVE")["OS-EXT-STS:power_state"] == RUNNING
    # Already running: a no-op, still answered.
    assert post_events(nova, [{"name": "power-update", "server_uuid": server_id, "tag": "POWER_ON"}]
                       ).status_code == 200
    deadline = time.monotonic() + 10
    while len([a for a in actions(nova, server_id) if a["action"] == "start"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert settled(nova, server_id, "ACTIVE")["OS-EXT-STS:power_state"] == RUNNING
    assert act(nova, server_id, {"forceDelete": None}).status_code == 202


@pytest.mark.parametrize(("events_body", "version", "message"), [
    ([{"name": "power-update", "server_uuid": "a5ddc2e9-5a3e-4b31-a8d2-2d3a0c4c2b1a", "tag": "POWER_ON"}], "2.75",
     "Invalid input for field/attribute name. Value: power-update. 'power-update' is not one of "
     "['network-changed', 'network-vif-plugged', 'network-vif-unplugged', 'network-vif-deleted', "
     "'volume-extended']"),
    ([{"name": "volume-reimaged", "server_uuid": "a5ddc2e9-5a3e-4b31-a8d2-2d3a0c4c2b1a"}], "2.79",
     "Invalid input for field/attribute name. Value: volume-reimaged. 'volume-reimaged' is not one of "
     "['network-changed', 'network-vif-plugged', 'network-vif-unplugged', 'network-vif-deleted', "
     "'volume-extended', 'power-update']"),
    ([{"name": "network-changed", "server_uuid": "not-a-uuid"}], "2.79",
     "Invalid input for field/attribute server_uuid. Value: not-a-uuid. 'not-a-uuid' is not a 'uuid'"),
    ([{"name": "network-changed", "server_uuid": "a5ddc2e9-5a3e-4b31-a8d2-2d3a0c4c2b1a", "status": "done"}],
     "2.79", "Invalid input for field/attribute status. Value: done. 'done' is not one of "
     "['failed', 'completed', 'in-progress']"),
    ([], "2.79", "Invalid input for field/attribute events. Value: []. [] is too short"),
])
def test_malformed_external_events_are_a_400(nova: httpx.Client, events_body: list[dict[str, Any]],
                                             version: str, message: str) -> None:
    r = post_events(nova, events_body, version)
    assert (r.status_code, r.json()["badRequest"]["message"]) == (400, message)


# Healing allocations.


def test_heal_allocations_restores_a_lost_allocation(cloud: Cloud, nova: httpx.Client) -> None:
    manager = compute(cloud)
    host = manager.host
    lost, resized, moving, offloaded = (active_server(nova, cloud, name)
                                        for name in ("lost", "resized", "moving", "offloaded"))
    set_allocation(cloud, nova, lost, None)
    set_allocation(cloud, nova, resized, {"VCPU": 2, "MEMORY_MB": 512, "DISK_GB": 1})
    for server_id in (moving, offloaded):
        set_allocation(cloud, nova, server_id, None)
    write(cloud, offloaded, vm_state="shelved_offloaded")

    async def migrate() -> int:
        from loom.objects import migrations

        async with cloud.runner.db.session.begin() as session:
            row = await migrations.create(session, instance_uuid=moving, migration_type="migration",
                                          status="migrating", source_compute=manager.host)
            return row.id

    migration_id = cloud.run(migrate())

    cloud.run(manager.heal_allocations())
    assert allocations(cloud, nova, lost) == {host: tiny(cloud)}
    assert allocations(cloud, nova, resized) == {host: {"VCPU": 2, "MEMORY_MB": 512, "DISK_GB": 1}}
    assert allocations(cloud, nova, moving) == {}
    assert allocations(cloud, nova, offloaded) == {}

    async def finish() -> None:
        from loom.objects import migrations

        async with cloud.runner.db.session.begin() as session:
            await migrations.set_fields(session, migration_id, {"status": "error"})

    cloud.run(finish())
    cloud.run(manager.heal_allocations())
    assert allocations(cloud, nova, moving) == {host: tiny(cloud)}
    assert allocations(cloud, nova, offloaded) == {}
    write(cloud, offloaded, vm_state="active")
    set_allocation(cloud, nova, resized, tiny(cloud))
    cloud.run(manager.heal_allocations())
    for server_id in (lost, resized, moving, offloaded):
        assert allocations(cloud, nova, server_id) == {host: tiny(cloud)}
        force_deleted(nova, server_id)
        assert allocations(cloud, nova, server_id) == {}
