"""The boot path end to end over plain HTTP: api → conductor → scheduler and
placement → compute → fake driver, all over the in-memory bus."""

from __future__ import annotations

import hashlib

import httpx

from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    admin_fixture,
    boot,
    cloud_fixture,
    demo_image,
    driver_of,
    fresh_member,
    member_compute,
    wait_status,
)

cloud = cloud_fixture()
nova = admin_fixture()


def test_boot_show_list_delete(nova: httpx.Client, cloud: Cloud) -> None:
    server_id = boot(nova, cloud, metadata={"role": "web"})
    server = wait_status(nova, server_id, {"ACTIVE", "ERROR"})
    assert server["status"] == "ACTIVE", server.get("fault")
    assert server["OS-EXT-STS:power_state"] == 1 and server["OS-EXT-STS:task_state"] is None
    assert server["OS-EXT-SRV-ATTR:host"] and server["hostId"]
    assert server["flavor"]["original_name"] == "m1.tiny" and server["metadata"] == {"role": "web"}
    listed = nova.get("/servers").json()["servers"]
    assert server_id in {s["id"] for s in listed}
    detail = nova.get("/servers/detail", params={"name": "^vm$"}).json()["servers"]
    assert server_id in {s["id"] for s in detail}
    assert nova.delete(f"/servers/{server_id}").status_code == 204
    wait_status(nova, server_id, {"DELETED"})


def test_bad_requests_name_the_problem(nova: httpx.Client, cloud: Cloud) -> None:
    image = demo_image(nova, cloud)
    r = nova.post("/servers", json={"server": {"name": "x", "imageRef": image, "flavorRef": "nope",
                                               "networks": "none"}})
    assert r.status_code == 400 and "Flavor nope could not be found" in r.json()["badRequest"]["message"]
    r = nova.post("/servers", json={"server": {"name": "x", "imageRef": "0" * 8, "flavorRef": "1",
                                               "networks": "none"}})
    assert r.status_code == 400 and "could not be found" in r.json()["badRequest"]["message"]
    r = nova.post("/servers", json={"server": {"imageRef": image, "flavorRef": "1", "networks": "none"}})
    assert r.status_code == 400 and "name" in r.json()["badRequest"]["message"]
    r = nova.post("/servers", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = nova.get("/servers", headers={"OpenStack-API-Version": "compute 2.1000"})
    assert r.status_code == 406
    assert nova.get("/servers").headers["OpenStack-API-Version"] == "compute 2.79"


def test_no_valid_host_is_an_error_with_a_fault(nova: httpx.Client, cloud: Cloud) -> None:
    # Within the project's RAM quota (51200 MB), beyond any host (32768 MB).
    r = nova.post("/flavors", json={"flavor": {"name": "huge", "ram": 50_000, "vcpus": 1, "disk": 1}})
    assert r.status_code == 200, r.text
    flavor_id = r.json()["flavor"]["id"]
    server_id = boot(nova, cloud, flavorRef=flavor_id)
    server = wait_status(nova, server_id, {"ACTIVE", "ERROR"})
    assert server["status"] == "ERROR"
    assert "No valid host" in server["fault"]["message"]
    assert nova.delete(f"/servers/{server_id}").status_code == 204
    wait_status(nova, server_id, {"DELETED"})


def test_another_projects_server_is_invisible(nova: httpx.Client, cloud: Cloud) -> None:
    server_id = boot(nova, cloud)
    other = member_compute(cloud, fresh_member(cloud), version=None)
    r = other.get(f"/servers/{server_id}")
    assert r.status_code == 404 and "itemNotFound" in r.json()
    assert other.delete(f"/servers/{server_id}").status_code == 404
    nova.delete(f"/servers/{server_id}")
    wait_status(nova, server_id, {"DELETED"})


def test_over_quota_is_403_naming_the_resource(nova: httpx.Client, cloud: Cloud) -> None:
    r = nova.post("/servers", json={"server": {"name": "many", "imageRef": demo_image(nova, cloud),
                                               "flavorRef": "1", "networks": "none", "min_count": 11,
                                               "max_count": 11}})
    assert r.status_code == 403, r.text
    assert "instances" in r.json()["forbidden"]["message"]


def test_the_host_reads_the_image_it_boots(nova: httpx.Client, cloud: Cloud) -> None:
    """The compute host streams the server's image from the image service
    (once per image: later builds use its cache)."""
    image = demo_image(nova, cloud)
    data = httpx.get(f"{cloud.url}/image/v2/images/{image}/file",
                     headers={"X-Auth-Token": nova.headers["X-Auth-Token"]}).content
    assert data
    server_id = boot(nova, cloud)
    assert wait_status(nova, server_id, {"ACTIVE", "ERROR"})["status"] == "ACTIVE"
    guest = driver_of(cloud, nova, server_id).guest(server_id)
    assert (guest.image_sha256, guest.image_size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert nova.delete(f"/servers/{server_id}").status_code == 204
    wait_status(nova, server_id, {"DELETED"})
