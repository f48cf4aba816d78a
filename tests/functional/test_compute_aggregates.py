"""os-aggregates and os-availability-zone over HTTP and the stock CLI, and
the scheduler working from them: a server booted in a zone lands on that
zone's hosts, an unknown zone is refused, and hosts' aggregates and
capabilities reach the filters from the database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loom.scheduler.context import SchedulingContext
from loom.scheduler.filters import AggregateInstanceExtraSpecsFilter
from loom.scheduler.host_info import DbHostInfo
from loom.scheduler.hosts import HostState, compute_node_uuid
from loom.scheduler.request import FlavorSpec, RequestSpec
from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    admin_token,
    boot,
    cloud_fixture,
    compute_client,
    demo_image,
    fresh_member,
    member_compute,
    sdk_connection,
    wait_status,
)

HOSTS = ("test-host-1", "test-host-2", "test-host-3")


cloud = cloud_fixture(**{"compute.fake_hosts": 3})


@pytest.fixture(scope="module")
def token(cloud: Cloud) -> str:
    return admin_token(cloud)


@pytest.fixture(scope="module")
def nova(cloud: Cloud, token: str) -> Iterator[httpx.Client]:
    with compute_client(cloud, token, version=None) as c:
        yield c


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def message(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    return str(next(iter(r.json().values()))["message"])


def create(nova: httpx.Client, name: str, zone: str | None = None, version: str = "2.79") -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, **({"availability_zone": zone} if zone else {})}
    r = nova.post("/os-aggregates", json={"aggregate": body}, headers=mv(version))
    assert r.status_code == 200, r.text
    return dict(r.json()["aggregate"])


def act(nova: httpx.Client, agg_id: int, action: str, args: dict[str, Any]) -> httpx.Response:
    return nova.post(f"/os-aggregates/{agg_id}/action", json={action: args}, headers=mv("2.79"))


def provider_aggregates(cloud: Cloud, token: str, host: str) -> list[str]:
    r = httpx.get(
        f"{cloud.url}/placement/resource_providers/{compute_node_uuid(host)}/aggregates",
        headers={"X-Auth-Token": token, "OpenStack-API-Version": "placement 1.19"},
    )
    assert r.status_code == 200, r.text
    return list(r.json()["aggregates"])


def zones(nova: httpx.Client, detail: bool = False) -> dict[str, Any]:
    r = nova.get("/os-availability-zone" + ("/detail" if detail else ""))
    assert r.status_code == 200, r.text
    return {z["zoneName"]: z for z in r.json()["availabilityZoneInfo"]}


def test_aggregate_lifecycle(nova: httpx.Client, cloud: Cloud, token: str) -> None:
    old = create(nova, "plain", version="2.1")
    assert "uuid" not in old and "hosts" not in old and old["availability_zone"] is None and old["deleted"] is False
    assert message(nova.post("/os-aggregates", json={"aggregate": {"name": "plain"}}), 409) == (
        "Aggregate plain already exists."
    )
    assert nova.post("/os-aggregates", json={"aggregate": {"name": " sp "}}).status_code == 400
    assert nova.post("/os-aggregates", json={"aggregate": {"name": "x", "availability_zone": "a:b"}}).status_code == 400
    agg = create(nova, "rack1", "zone-a")
    assert agg["uuid"] and agg["availability_zone"] == "zone-a"
    shown = nova.get(f"/os-aggregates/{agg['id']}", headers=mv("2.41")).json()["aggregate"]
    assert shown["hosts"] == [] and shown["metadata"] == {"availability_zone": "zone-a"}
    assert nova.get("/os-aggregates/abc").status_code == 400
    assert message(nova.get("/os-aggregates/9999"), 404) == "Aggregate 9999 could not be found."

    # Hosts: only known compute hosts, once each; mirrored into placement.
    assert (
        message(act(nova, agg["id"], "add_host", {"host": "nowhere"}), 404)
        == "Compute host nowhere could not be found."
    )
    r = act(nova, agg["id"], "add_host", {"host": HOSTS[2]})
    assert r.status_code == 200 and r.json()["aggregate"]["hosts"] == [HOSTS[2]]
    assert provider_aggregates(cloud, token, HOSTS[2]) == [agg["uuid"]]
    assert act(nova, agg["id"], "add_host", {"host": HOSTS[2]}).status_code == 409
    # A host cannot be in two zones.
    other = create(nova, "rack2", "zone-b")
    assert "already in availability zone(s) ['zone-a']" in message(
        act(nova, other["id"], "add_host", {"host": HOSTS[2]}), 409
    )
    r = act(nova, old["id"], "add_host", {"host": HOSTS[2]})
    assert r.status_code == 200  # an aggregate without a zone: no conflict
    old = r.json()["aggregate"]
    assert sorted(provider_aggregates(cloud, token, HOSTS[2])) == sorted([agg["uuid"], old["uuid"]])

    # Metadata: set, and null deletes; the zone cannot be emptied.
    r = act(nova, agg["id"], "set_metadata", {"metadata": {"ssd": "true", "gpu": "no"}})
    assert r.json()["aggregate"]["metadata"] == {"availability_zone": "zone-a", "ssd": "true", "gpu": "no"}
    r = act(nova, agg["id"], "set_metadata", {"metadata": {"gpu": None, "missing": None}})
    assert r.json()["aggregate"]["metadata"] == {"availability_zone": "zone-a", "ssd": "true"}
    assert "empty named availability zone" in message(
        act(nova, agg["id"], "set_metadata", {"metadata": {"availability_zone": None}}), 400
    )
    assert act(nova, agg["id"], "set_metadata", {"metadata": {"bad/key": "x"}}).status_code == 400
    assert act(nova, agg["id"], "reboot", {}).status_code == 400

    # Update: rename and re-zone; a name in use is a conflict.
    r = nova.put(f"/os-aggregates/{agg['id']}", json={"aggregate": {"name": "rack1b", "availability_zone": "zone-c"}})
    assert r.status_code == 200 and (r.json()["aggregate"]["name"], r.json()["aggregate"]["availability_zone"]) == (
        "rack1b",
        "zone-c",
    )
    assert nova.put(f"/os-aggregates/{agg['id']}", json={"aggregate": {"name": "rack2"}}).status_code == 409
    assert nova.put(f"/os-aggregates/{agg['id']}", json={"aggregate": {}}).status_code == 400

    # Delete: not while hosts are in it (Nova's 400).
    assert "not empty" in message(nova.delete(f"/os-aggregates/{agg['id']}"), 400)
    r = act(nova, agg["id"], "remove_host", {"host": HOSTS[2]})
    assert r.status_code == 200 and r.json()["aggregate"]["hosts"] == []
    assert provider_aggregates(cloud, token, HOSTS[2]) == [old["uuid"]]
    assert message(act(nova, agg["id"], "remove_host", {"host": HOSTS[2]}), 404) == (
        f"Cannot remove host {HOSTS[2]} in aggregate {agg['id']}"
    )
    act(nova, old["id"], "remove_host", {"host": HOSTS[2]})
    for a in (agg, old, other):
        r = nova.delete(f"/os-aggregates/{a['id']}")
        assert r.status_code == 200 and not r.content
    assert nova.get("/os-aggregates").json()["aggregates"] == []


def test_aggregates_are_for_admins_zones_for_everyone(cloud: Cloud) -> None:
    with member_compute(cloud, fresh_member(cloud), version=None) as other:
        assert other.get("/os-aggregates").status_code == 403
        assert other.post("/os-aggregates", json={"aggregate": {"name": "mine"}}).status_code == 403
        assert other.get("/os-availability-zone/detail").status_code == 403
        listed = other.get("/os-availability-zone").json()["availabilityZoneInfo"]
        assert {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None} in listed
        assert "internal" not in {z["zoneName"] for z in listed}


def test_boot_in_a_zone(nova: httpx.Client, cloud: Cloud) -> None:
    agg = create(nova, "east", "az-east")
    assert "az-east" not in zones(nova)  # a zone without hosts is no zone yet
    assert (
        message(
            nova.post(
                "/servers",
                json={
                    "server": {
                        "name": "vm",
                        "imageRef": demo_image(nova, cloud),
                        "flavorRef": "1",
                        "networks": "none",
                        "availability_zone": "az-east",
                    }
                },
            ),
            400,
        )
        == "The requested availability zone is not available"
    )
    act(nova, agg["id"], "add_host", {"host": HOSTS[1]})
    assert zones(nova)["az-east"]["zoneState"] == {"available": True}
    detail = zones(nova, detail=True)
    assert set(detail["az-east"]["hosts"]) == {HOSTS[1]}
    assert detail["az-east"]["hosts"][HOSTS[1]]["loom-compute"]["available"] is True
    assert set(detail["nova"]["hosts"]) == {HOSTS[0], HOSTS[2]}
    assert set(detail["internal"]["hosts"]["test-host"]) == {"loom-conductor", "loom-scheduler"}
    ids = [boot(nova, cloud, availability_zone="az-east") for _ in range(2)]
    for server_id in ids:
        server = wait_status(nova, server_id, {"ACTIVE", "ERROR"})
        assert server["status"] == "ACTIVE", server.get("fault")
        assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-AZ:availability_zone"]) == (HOSTS[1], "az-east")
    # The zone of a host running instances keeps its name.
    assert "contain instances" in message(
        nova.put(f"/os-aggregates/{agg['id']}", json={"aggregate": {"availability_zone": "az-west"}}), 400
    )
    for server_id in ids:
        nova.delete(f"/servers/{server_id}")
    for server_id in ids:
        wait_status(nova, server_id, {"DELETED"})
    act(nova, agg["id"], "remove_host", {"host": HOSTS[1]})
    nova.delete(f"/os-aggregates/{agg['id']}")


def test_capabilities_reach_the_filters(nova: httpx.Client, cloud: Cloud) -> None:
    def flavor(name: str, specs: dict[str, str]) -> str:
        r = nova.post("/flavors", json={"flavor": {"name": name, "ram": 256, "vcpus": 1, "disk": 1}})
        assert r.status_code == 200, r.text
        flavor_id = str(r.json()["flavor"]["id"])
        assert nova.post(f"/flavors/{flavor_id}/os-extra_specs", json={"extra_specs": specs}).status_code == 200
        return flavor_id

    fits = boot(nova, cloud, flavorRef=flavor("cap-fake", {"capabilities:hypervisor_type": "s== fake"}))
    misses = boot(nova, cloud, flavorRef=flavor("cap-arm", {"capabilities:cpu_info:arch": "s== aarch64"}))
    assert wait_status(nova, fits, {"ACTIVE", "ERROR"})["status"] == "ACTIVE"
    server = wait_status(nova, misses, {"ACTIVE", "ERROR"})
    assert server["status"] == "ERROR" and "No valid host" in server["fault"]["message"]
    for server_id in (fits, misses):
        nova.delete(f"/servers/{server_id}")


def test_db_host_info_feeds_aggregate_filters(nova: httpx.Client, cloud: Cloud) -> None:
    agg = create(nova, "fast", "az-fast")
    act(nova, agg["id"], "add_host", {"host": HOSTS[0]})
    act(nova, agg["id"], "set_metadata", {"metadata": {"ssd": "true"}})
    assert cloud.runner.db is not None
    infos = cloud.run(DbHostInfo(cloud.runner.db).host_info(list(HOSTS)))
    (fast,) = infos[HOSTS[0]].aggregates
    assert (fast.name, fast.uuid, dict(fast.metadata)) == (
        "fast",
        agg["uuid"],
        {"availability_zone": "az-fast", "ssd": "true"},
    )
    assert infos[HOSTS[1]].aggregates == [] and infos[HOSTS[1]].capabilities["hypervisor_type"] == "fake"
    spec = RequestSpec(
        project_id="p",
        user_id="u",
        flavor=FlavorSpec(
            flavorid="x",
            name="x",
            vcpus=1,
            memory_mb=64,
            root_gb=1,
            extra_specs={"aggregate_instance_extra_specs:ssd": "true"},
        ),
    )
    passing = [
        h
        for h in HOSTS
        if AggregateInstanceExtraSpecsFilter().host_passes(
            HostState(host=h, nodename=h, provider_uuid=compute_node_uuid(h), aggregates=list(infos[h].aggregates)),
            spec,
            SchedulingContext(),
        )
    ]
    assert passing == [HOSTS[0]]
    act(nova, agg["id"], "remove_host", {"host": HOSTS[0]})
    nova.delete(f"/os-aggregates/{agg['id']}")


def test_cli_aggregates_and_zones(cloud: Cloud, nova: httpx.Client) -> None:
    created = cloud.openstack("aggregate", "create", "--zone", "az1", "agg")
    assert (created["name"], created["availability_zone"]) == ("agg", "az1")
    cloud.openstack("aggregate", "add", "host", "agg", HOSTS[2])
    cloud.openstack("aggregate", "set", "--property", "k=v", "agg")
    shown = cloud.openstack("aggregate", "show", "agg")
    assert shown["hosts"] == [HOSTS[2]] and shown["properties"] == {"k": "v"} and shown["availability_zone"] == "az1"
    listed = {z["Zone Name"]: z["Zone Status"] for z in cloud.openstack("availability", "zone", "list", "--compute")}
    assert listed["az1"] == "available" and listed["nova"] == "available"
    long = cloud.openstack("availability", "zone", "list", "--compute", "--long")
    assert {(z["Zone Name"], z["Host Name"]) for z in long if z["Service Name"] == "loom-compute"} == {
        ("az1", HOSTS[2]),
        ("nova", HOSTS[0]),
        ("nova", HOSTS[1]),
    }
    created = cloud.openstack(
        "server",
        "create",
        "--image",
        "demo",
        "--flavor",
        "m1.tiny",
        "--nic",
        "none",
        "--availability-zone",
        "az1",
        "vm-az1",
    )
    server = wait_status(nova, created["id"], {"ACTIVE", "ERROR"})
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-AZ:availability_zone"]) == (HOSTS[2], "az1")
    nova.delete(f"/servers/{created['id']}")

    with sdk_connection(cloud) as conn:
        (agg,) = [a for a in conn.compute.aggregates() if a.name == "agg"]
        assert agg.hosts == [HOSTS[2]] and agg.availability_zone == "az1" and agg.metadata["k"] == "v"
        assert {z.name for z in conn.compute.availability_zones()} >= {"az1", "nova"}
