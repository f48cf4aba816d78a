"""os-services and os-hypervisors over HTTP per microversion and through
the stock CLI, against a cloud of three fake compute hosts: disabling or
forcing down a host keeps builds off it, usage comes live from placement,
and deleting a compute service forgets its node and provider."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from loom.db.models import ComputeNode, ResourceProvider, Service
from loom.scheduler.hosts import compute_node_uuid
from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    admin_fixture,
    boot,
    cloud_fixture,
    demo_image,
    fresh_member,
    member_compute,
    sdk_connection,
    wait_status,
)

HOSTS = ("test-host-1", "test-host-2", "test-host-3")


cloud = cloud_fixture(**{"compute.fake_hosts": 3})
nova = admin_fixture(version=None)


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def services(nova: httpx.Client, version: str = "2.79", **params: str) -> list[dict[str, Any]]:
    r = nova.get("/os-services", params=params, headers=mv(version))
    assert r.status_code == 200, r.text
    return list(r.json()["services"])


def compute(nova: httpx.Client, host: str, version: str = "2.79") -> dict[str, Any]:
    (svc,) = services(nova, version, host=host, binary="loom-compute")
    return svc


def message(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    return str(next(iter(r.json().values()))["message"])


def test_service_list_per_microversion(nova: httpx.Client) -> None:
    old = services(nova, "2.1")
    assert {s["binary"] for s in old} == {"loom-conductor", "loom-scheduler", "loom-compute"}
    assert all(isinstance(s["id"], int) and "forced_down" not in s for s in old)
    svc = next(s for s in old if s["host"] == HOSTS[0])
    assert svc["zone"] == "nova" and svc["status"] == "enabled" and svc["state"] == "up" and svc["updated_at"]
    assert {s["zone"] for s in old if s["binary"] != "loom-compute"} == {"internal"}
    assert services(nova, "2.11", host=HOSTS[0])[0]["forced_down"] is False
    new = services(nova, "2.53")
    assert all(uuid.UUID(s["id"]) for s in new)
    # Nova's binary names filter too, so the stock clients' defaults work.
    assert [s["host"] for s in services(nova, binary="nova-compute")] == list(HOSTS)
    assert services(nova, host="nowhere") == []
    assert "'foo' was unexpected" in message(nova.get("/os-services", params={"foo": "1"}, headers=mv("2.79")), 400)
    assert nova.get("/os-services", params={"foo": "1"}, headers=mv("2.74")).status_code == 200


def test_service_updates_before_2_53(nova: httpx.Client) -> None:
    host = HOSTS[1]
    body = {"host": host, "binary": "nova-compute"}
    r = nova.put("/os-services/disable-log-reason", json={**body, "disabled_reason": "maint"}, headers=mv("2.1"))
    assert r.status_code == 200 and r.json()["service"] == {**body, "status": "disabled", "disabled_reason": "maint"}
    assert compute(nova, host)["disabled_reason"] == "maint"
    assert message(nova.put("/os-services/disable-log-reason", json=body, headers=mv("2.1")), 400) == (
        "Missing disabled reason field"
    )
    r = nova.put("/os-services/enable", json=body, headers=mv("2.1"))
    assert r.json()["service"] == {**body, "status": "enabled"}
    assert compute(nova, host)["status"] == "enabled" and compute(nova, host)["disabled_reason"] is None
    # force-down exists from 2.11 only.
    assert (
        nova.put("/os-services/force-down", json={**body, "forced_down": True}, headers=mv("2.10")).status_code == 400
    )
    r = nova.put("/os-services/force-down", json={**body, "forced_down": True}, headers=mv("2.11"))
    assert r.json()["service"] == {**body, "forced_down": True}
    assert compute(nova, host)["state"] == "down"
    nova.put("/os-services/force-down", json={**body, "forced_down": "false"}, headers=mv("2.11"))
    assert compute(nova, host)["state"] == "up"
    assert "Only loom-compute" in message(
        nova.put("/os-services/disable", json={"host": "test-host", "binary": "nova-scheduler"}, headers=mv("2.1")), 400
    )
    assert message(nova.put("/os-services/disable", json={**body, "host": "nowhere"}, headers=mv("2.1")), 404) == (
        "Could not find binary nova-compute on host nowhere."
    )
    assert message(nova.put("/os-services/reboot", json=body, headers=mv("2.1")), 404) == "Unknown action"
    assert nova.put("/os-services/disable", json={"host": host}, headers=mv("2.1")).status_code == 400


def test_service_updates_from_2_53(nova: httpx.Client) -> None:
    svc = compute(nova, HOSTS[1])
    url = f"/os-services/{svc['id']}"
    r = nova.put(url, json={"status": "disabled", "disabled_reason": "x"}, headers=mv("2.53"))
    assert r.status_code == 200, r.text
    shown = r.json()["service"]
    assert shown["status"] == "disabled" and shown["disabled_reason"] == "x" and shown["id"] == svc["id"]
    assert shown["forced_down"] is False and shown["zone"] == "nova"
    assert "disabled_reason" in message(
        nova.put(url, json={"status": "enabled", "disabled_reason": "y"}, headers=mv("2.53")), 400
    )
    assert "No updates were requested" in message(nova.put(url, json={}, headers=mv("2.53")), 400)
    assert (
        nova.put(url, json={"status": "enabled", "forced_down": True}, headers=mv("2.53")).json()["service"]["state"]
        == "down"
    )
    r = nova.put(url, json={"forced_down": False}, headers=mv("2.53"))
    assert r.json()["service"]["state"] == "up" and r.json()["service"]["status"] == "enabled"
    assert message(nova.put("/os-services/enable", json={}, headers=mv("2.53")), 400) == "Invalid uuid enable"
    missing = str(uuid.uuid4())
    assert nova.put(f"/os-services/{missing}", json={"status": "enabled"}, headers=mv("2.53")).status_code == 404
    scheduler = next(s for s in services(nova) if s["binary"] == "loom-scheduler")
    assert nova.put(f"/os-services/{scheduler['id']}", json={"status": "disabled"}, headers=mv("2.53")).status_code == (
        400
    )


def test_services_and_hypervisors_are_for_admins(cloud: Cloud) -> None:
    with member_compute(cloud, fresh_member(cloud), version=None) as other:
        for path in ("/os-services", "/os-hypervisors", "/os-hypervisors/detail", "/os-hypervisors/statistics"):
            assert other.get(path).status_code == 403, path


def test_hypervisors_per_microversion(nova: httpx.Client) -> None:
    r = nova.get("/os-hypervisors/detail", headers=mv("2.1"))
    old = r.json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in old] == list(HOSTS)
    h = old[0]
    assert isinstance(h["id"], int) and isinstance(h["service"]["id"], int)
    assert h["hypervisor_type"] == "fake" and h["vcpus"] == 16 and h["memory_mb"] == 32768
    assert json.loads(h["cpu_info"])["arch"] == "x86_64"  # a string before 2.28
    assert h["free_ram_mb"] == h["memory_mb"] - h["memory_mb_used"] and "hypervisors_links" not in r.json()
    assert nova.get(f"/os-hypervisors/{h['id']}", headers=mv("2.28")).json()["hypervisor"]["cpu_info"]["arch"] == (
        "x86_64"
    )
    assert set(nova.get("/os-hypervisors", headers=mv("2.1")).json()["hypervisors"][0]) == {
        "id",
        "hypervisor_hostname",
        "state",
        "status",
    }
    # 2.33: paging with next links; 2.53: uuids, also as markers.
    page = nova.get("/os-hypervisors", params={"limit": 2}, headers=mv("2.33")).json()
    assert [x["hypervisor_hostname"] for x in page["hypervisors"]] == list(HOSTS[:2])
    nxt = httpx.URL(page["hypervisors_links"][0]["href"])
    assert nxt.params["marker"] == str(page["hypervisors"][1]["id"]) and nxt.params["limit"] == "2"
    rest = nova.get("/os-hypervisors", params={"limit": 2, "marker": nxt.params["marker"]}, headers=mv("2.33"))
    assert [x["hypervisor_hostname"] for x in rest.json()["hypervisors"]] == [HOSTS[2]]
    new = nova.get("/os-hypervisors/detail", params={"limit": 1}, headers=mv("2.53")).json()["hypervisors"][0]
    assert new["id"] == compute_node_uuid(HOSTS[0]) and uuid.UUID(new["service"]["id"])
    after = nova.get("/os-hypervisors", params={"marker": new["id"]}, headers=mv("2.53")).json()["hypervisors"]
    assert [x["hypervisor_hostname"] for x in after] == list(HOSTS[1:])
    assert "marker [nope] not found" in message(
        nova.get("/os-hypervisors", params={"marker": "nope"}, headers=mv("2.53")), 400
    )
    found = nova.get("/os-hypervisors", params={"hypervisor_hostname_pattern": "host-2"}, headers=mv("2.53"))
    assert [x["hypervisor_hostname"] for x in found.json()["hypervisors"]] == [HOSTS[1]]
    assert (
        nova.get("/os-hypervisors", params={"hypervisor_hostname_pattern": "zzz"}, headers=mv("2.53")).status_code
        == 404
    )
    assert (
        nova.get(
            "/os-hypervisors", params={"hypervisor_hostname_pattern": "host", "limit": 1}, headers=mv("2.53")
        ).status_code
        == 400
    )
    # Before 2.53 the search and servers routes; from it they are gone.
    assert len(nova.get("/os-hypervisors/host/search", headers=mv("2.1")).json()["hypervisors"]) == 3
    assert nova.get("/os-hypervisors/zzz/search", headers=mv("2.1")).status_code == 404
    assert nova.get("/os-hypervisors/host/search", headers=mv("2.53")).status_code == 404
    # Show: unknown ids are 404; from 2.53 a non-uuid is 400.
    assert nova.get("/os-hypervisors/999", headers=mv("2.1")).status_code == 404
    assert message(nova.get("/os-hypervisors/999", headers=mv("2.53")), 400) == "Invalid uuid 999"
    assert nova.get(f"/os-hypervisors/{uuid.uuid4()}", headers=mv("2.53")).status_code == 404
    # The uptime of the host the compute service runs on, as `uptime` prints it.
    r = nova.get(f"/os-hypervisors/{h['id']}/uptime", headers=mv("2.1"))
    assert r.status_code == 200, r.text
    shown = r.json()["hypervisor"]
    assert shown["id"] == h["id"] and "load average" in shown["uptime"]
    stats = nova.get("/os-hypervisors/statistics", headers=mv("2.1")).json()["hypervisor_statistics"]
    assert stats["count"] == 3 and stats["vcpus"] == 48 and stats["memory_mb"] == 3 * 32768


def test_usage_is_live_from_placement(nova: httpx.Client, cloud: Cloud) -> None:
    server_id = boot(nova, cloud, flavorRef="2")  # m1.small: 1 vCPU, 2048 MB, 20 GB
    server = wait_status(nova, server_id, {"ACTIVE", "ERROR"})
    assert server["status"] == "ACTIVE", server.get("fault")
    host = server["OS-EXT-SRV-ATTR:host"]
    node = compute_node_uuid(host)
    shown = nova.get(f"/os-hypervisors/{node}", params={"with_servers": "true"}, headers=mv("2.53")).json()
    h = shown["hypervisor"]
    assert (h["vcpus_used"], h["memory_mb_used"], h["local_gb_used"], h["running_vms"]) == (1, 2048, 20, 1)
    assert h["free_ram_mb"] == 32768 - 2048 and h["servers"][0]["uuid"] == server_id
    assert h["servers"][0]["name"].startswith("instance-")
    old = nova.get(f"/os-hypervisors/{host}/servers", headers=mv("2.1")).json()["hypervisors"]
    assert [s["uuid"] for s in old[0]["servers"]] == [server_id]
    listed = nova.get("/os-hypervisors", params={"with_servers": "1"}, headers=mv("2.79")).json()["hypervisors"]
    assert all("servers" in x for x in listed)  # 2.75: an empty list where there are none
    stats = nova.get("/os-hypervisors/statistics", headers=mv("2.1")).json()["hypervisor_statistics"]
    assert stats["running_vms"] == 1 and stats["memory_mb_used"] == 2048
    # A compute service hosting instances cannot be deleted.
    svc = compute(nova, host)
    assert "hosting instances" in message(nova.delete(f"/os-services/{svc['id']}", headers=mv("2.53")), 409)
    assert nova.delete(f"/servers/{server_id}").status_code == 204
    wait_status(nova, server_id, {"DELETED"})
    after = nova.get(f"/os-hypervisors/{node}", headers=mv("2.53")).json()["hypervisor"]
    assert (after["vcpus_used"], after["memory_mb_used"], after["running_vms"]) == (0, 0, 0)


def test_cli_disable_enable_and_force_down(cloud: Cloud, nova: httpx.Client) -> None:
    host = HOSTS[0]
    listed = cloud.openstack("compute", "service", "list")
    assert {(s["Host"], s["Binary"]) for s in listed} >= {(h, "loom-compute") for h in HOSTS}
    cloud.openstack("compute", "service", "set", "--disable", "--disable-reason", "x", host, "nova-compute")
    (row,) = cloud.openstack("compute", "service", "list", "--long", "--host", host)
    assert (row["Status"], row["Disabled Reason"]) == ("disabled", "x")
    r = nova.post(
        "/servers",
        json={
            "server": {
                "name": "spread",
                "imageRef": demo_image(nova, cloud),
                "flavorRef": "1",
                "networks": "none",
                "min_count": 4,
                "max_count": 4,
                "return_reservation_id": True,
            }
        },
    )
    assert r.status_code == 202, r.text
    ids = [
        s["id"] for s in nova.get("/servers", params={"reservation_id": r.json()["reservation_id"]}).json()["servers"]
    ]
    landed = [wait_status(nova, i, {"ACTIVE", "ERROR"})["OS-EXT-SRV-ATTR:host"] for i in ids]
    assert len(landed) == 4 and host not in landed and all(landed), landed
    for i in ids:
        nova.delete(f"/servers/{i}")
    cloud.openstack("compute", "service", "set", "--enable", host, "nova-compute")
    assert compute(nova, host)["status"] == "enabled"
    cloud.openstack("compute", "service", "set", "--down", host, "nova-compute")
    (row,) = cloud.openstack("compute", "service", "list", "--long", "--host", host)
    assert (row["State"], row["Forced Down"]) == ("down", True)
    (hyp,) = [x for x in cloud.openstack("hypervisor", "list") if x["Hypervisor Hostname"] == host]
    assert hyp["State"] == "down"
    cloud.openstack("compute", "service", "set", "--up", host, "nova-compute")
    assert compute(nova, host)["state"] == "up"
    for i in ids:
        wait_status(nova, i, {"DELETED"})


def test_cli_hypervisors(cloud: Cloud) -> None:
    listed = cloud.openstack("hypervisor", "list")
    assert [h["Hypervisor Hostname"] for h in listed] == list(HOSTS)
    shown = cloud.openstack("hypervisor", "show", HOSTS[1])
    assert shown["hypervisor_type"] == "fake" and shown["service_host"] == HOSTS[1] and shown["vcpus"] == 16
    assert shown["cpu_info"]["arch"] == "x86_64"
    # Statistics are gone from 2.88: pin a microversion below it.
    stats = cloud.openstack("hypervisor", "stats", "show", "--os-compute-api-version", "2.79")
    assert stats["count"] == 3 and stats["local_gb"] == 3000


def test_sdk_lists_services_and_hypervisors(cloud: Cloud) -> None:
    with sdk_connection(cloud) as conn:
        assert {s.host for s in conn.compute.services() if s.binary == "loom-compute"} == set(HOSTS)
        hypervisors = list(conn.compute.hypervisors(details=True))
        assert [h.name for h in hypervisors] == list(HOSTS)
        assert all(h.hypervisor_type == "fake" and h.service_details["host"] == h.name for h in hypervisors)


def test_cli_delete_a_stopped_compute_service(cloud: Cloud, nova: httpx.Client) -> None:
    host = HOSTS[2]
    service = next(s for s in cloud.runner.services if s.manager.topic == "compute" and s.manager.host == host)
    cloud.run(service.stop())  # a decommissioned host: it will not report in again
    cloud.runner.services.remove(service)
    svc = compute(nova, host)
    assert nova.delete(f"/os-services/{svc['id']}", headers=mv("2.1")).status_code == 400  # ids are uuids now
    cloud.openstack("compute", "service", "delete", svc["id"], parse=False)
    assert services(nova, host=host) == []
    assert [h["Hypervisor Hostname"] for h in cloud.openstack("hypervisor", "list")] == list(HOSTS[:2])

    async def leftovers() -> tuple[int, int, int]:
        assert cloud.runner.db is not None
        async with cloud.runner.db.session() as session:
            return (
                len(list(await session.scalars(select(Service).where(Service.host == host)))),
                len(list(await session.scalars(select(ComputeNode).where(ComputeNode.host == host)))),
                len(
                    list(
                        await session.scalars(
                            select(ResourceProvider).where(ResourceProvider.uuid == compute_node_uuid(host))
                        )
                    )
                ),
            )

    assert cloud.run(leftovers()) == (0, 0, 0)
    assert nova.delete(f"/os-services/{svc['id']}", headers=mv("2.53")).status_code == 404
