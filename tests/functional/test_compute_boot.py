"""The boot path end to end over plain HTTP: api → conductor → scheduler and
placement → compute → fake driver, all over the in-memory bus."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.functional.cloud import Cloud, running_cloud
from tests.functional.test_identity_support import admin_client, issue, new_member, password_auth


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("cloud"), **{"image.demo_image": True}) as c:
        yield c


@pytest.fixture(scope="module")
def nova(cloud: Cloud) -> Iterator[httpx.Client]:
    token = issue(cloud, password_auth("admin", cloud.admin_password, "admin"))
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", timeout=30,
                      headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.79"}) as c:
        yield c


def demo_image(nova: httpx.Client, cloud: Cloud) -> str:
    token = nova.headers["X-Auth-Token"]
    r = httpx.get(cloud.url + "/image/v2/images", params={"name": "demo"}, headers={"X-Auth-Token": token})
    return str(r.json()["images"][0]["id"])


def wait_status(nova: httpx.Client, server_id: str, wanted: set[str], timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = nova.get(f"/servers/{server_id}")
        if r.status_code == 404 and "DELETED" in wanted:
            return {"status": "DELETED"}
        assert r.status_code == 200, r.text
        server = r.json()["server"]
        if server["status"] in wanted:
            return dict(server)
        assert time.monotonic() < deadline, f"server stayed {server['status']}"
        time.sleep(0.05)


def boot(nova: httpx.Client, cloud: Cloud, **extra: Any) -> str:
    body = {"server": {"name": "vm", "imageRef": demo_image(nova, cloud), "flavorRef": "1", "networks": "none",
                       **extra}}
    r = nova.post("/servers", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["server"]["id"])


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
    with admin_client(cloud) as admin:
        member = new_member(admin)
    token = issue(cloud, password_auth(member.name, member.password, member.project))
    other = httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": token}, timeout=30)
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
