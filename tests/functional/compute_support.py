"""What the compute acceptance tests (test_compute_*.py) share: a cloud per
test module, compute API clients for admin and for fresh members, the demo
image, an openstacksdk connection, booting a server and waiting for its
status; acting on it and reading what it shows, its action events, its
placement allocations and the fake driver holding it. There are no tests
here."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest
from openstack.connection import Connection

from loom.compute.manager import ComputeManager
from loom.scheduler.hosts import compute_node_uuid
from loom.virt.fake import FakeDriver
from tests.functional.cloud import Cloud, running_cloud
from tests.functional.test_identity_support import Member, admin_client, issue, new_member, password_auth

LATEST = "2.79"


def admin_token(cloud: Cloud) -> str:
    return issue(cloud, password_auth("admin", cloud.admin_password, "admin"))


def fresh_member(cloud: Cloud) -> Member:
    """A new user with the member role on a new project."""
    with admin_client(cloud) as admin:
        return new_member(admin)


def member_token(cloud: Cloud, member: Member) -> str:
    return issue(cloud, password_auth(member.name, member.password, member.project))


def compute_client(cloud: Cloud, token: str, version: str | None = LATEST, timeout: float = 30) -> httpx.Client:
    """A compute API client; with no ``version`` it sends no microversion
    header and so gets the API's oldest, 2.1."""
    headers = {"X-Auth-Token": token}
    if version is not None:
        headers["OpenStack-API-Version"] = f"compute {version}"
    return httpx.Client(base_url=cloud.url + "/compute/v2.1", timeout=timeout, headers=headers)


def member_compute(cloud: Cloud, member: Member, version: str | None = LATEST) -> httpx.Client:
    """A compute API client as ``member``, in its own project."""
    return compute_client(cloud, member_token(cloud, member), version)


# Fixture factories: a test module assigns what they return to the fixture's
# name, e.g. ``cloud = cloud_fixture()``.


def cloud_fixture(**overrides: Any) -> Any:
    """A module-scoped cloud with the demo image and these settings."""

    @pytest.fixture(scope="module")
    def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
        with running_cloud(tmp_path_factory.mktemp("cloud"), **{"image.demo_image": True, **overrides}) as c:
            yield c

    return cloud


def admin_fixture(version: str | None = LATEST) -> Any:
    """A module-scoped compute API client as admin."""

    @pytest.fixture(scope="module")
    def admin(cloud: Cloud) -> Iterator[httpx.Client]:
        with compute_client(cloud, admin_token(cloud), version) as c:
            yield c

    return admin


def member_fixture(scope: Literal["module", "function"] = "module") -> Any:
    """A fresh member (see ``fresh_member``) per module, or per test."""

    @pytest.fixture(scope=scope)
    def member(cloud: Cloud) -> Member:
        return fresh_member(cloud)

    return member


def sdk_connection(cloud: Cloud) -> Connection:
    """An openstacksdk connection as admin, from arguments alone (no
    clouds.yaml, no OS_* variables)."""
    return Connection(
        auth_url=cloud.auth_url,
        username="admin",
        password=cloud.admin_password,
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
        interface="public",
    )


def demo_image(nova: httpx.Client, cloud: Cloud) -> str:
    token = nova.headers["X-Auth-Token"]
    r = httpx.get(cloud.url + "/image/v2/images", params={"name": "demo"}, headers={"X-Auth-Token": token})
    return str(r.json()["images"][0]["id"])


def wait_status(nova: httpx.Client, server_id: str, wanted: set[str], timeout: float = 20) -> dict[str, Any]:
    """The server once its status is one of ``wanted``; "DELETED" waits
    until it is gone."""
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
    """Ask for an m1.tiny server of the demo image; its id."""
    body = {"server": {"name": "vm", "imageRef": demo_image(nova, cloud), "flavorRef": "1", "networks": "none",
                       **extra}}
    r = nova.post("/servers", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["server"]["id"])


def act(client: httpx.Client, server_id: str, body: Any) -> httpx.Response:
    return client.post(f"/servers/{server_id}/action", json=body)


def act_at_once(client: httpx.Client, server_id: str, *bodies: dict[str, Any]) -> dict[str, int]:
    """Send the actions ``bodies`` at the same moment, a thread each: each
    action's name → its answer's status code."""
    barrier = threading.Barrier(len(bodies))
    answers: dict[str, int] = {}

    def send(body: dict[str, Any]) -> None:
        barrier.wait()
        answers[next(iter(body))] = act(client, server_id, body).status_code

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def settled(nova: httpx.Client, server_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
    """The server once it shows ``status`` and is in no task state."""
    deadline = time.monotonic() + timeout
    while True:
        r = nova.get(f"/servers/{server_id}")
        assert r.status_code == 200, r.text
        server = r.json()["server"]
        if server["status"] == status and server["OS-EXT-STS:task_state"] is None:
            return dict(server)
        assert time.monotonic() < deadline, f"server stayed {server['status']}/{server['OS-EXT-STS:task_state']}"
        time.sleep(0.05)


def states(server: dict[str, Any]) -> tuple[str, str | None, int]:
    return server["OS-EXT-STS:vm_state"], server["OS-EXT-STS:task_state"], server["OS-EXT-STS:power_state"]


def host_of(nova: httpx.Client, server_id: str) -> str:
    return str(nova.get(f"/servers/{server_id}").json()["server"]["OS-EXT-SRV-ATTR:host"])


def message(r: httpx.Response, status: int) -> str:
    """Nova's error message of a response that must have ``status``."""
    assert r.status_code == status, r.text
    (body,) = r.json().values()
    return str(body["message"])


def events(nova: httpx.Client, server_id: str, action: str) -> list[tuple[str, str]]:
    """(event, result) of the server's latest ``action``."""
    actions = nova.get(f"/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    request_id = next(a["request_id"] for a in actions if a["action"] == action)
    r = nova.get(f"/servers/{server_id}/os-instance-actions/{request_id}")
    return [(e["event"], e["result"]) for e in r.json()["instanceAction"]["events"]]


def hosts(cloud: Cloud) -> list[str]:
    return [s.manager.host for s in cloud.runner.services if isinstance(s.manager, ComputeManager)]


def compute(cloud: Cloud, host: str | None = None) -> ComputeManager:
    """``host``'s compute manager; with no host, the cloud's only one."""
    (manager,) = (s.manager for s in cloud.runner.services
                  if isinstance(s.manager, ComputeManager) and host in (None, s.manager.host))
    return manager


def fake(cloud: Cloud, host: str) -> FakeDriver:
    driver = compute(cloud, host).driver
    assert isinstance(driver, FakeDriver)
    return driver


def driver_of(cloud: Cloud, nova: httpx.Client, server_id: str) -> FakeDriver:
    """The fake driver of the server's host."""
    return fake(cloud, host_of(nova, server_id))


def allocations(cloud: Cloud, nova: httpx.Client, consumer: str) -> dict[str, dict[str, int]]:
    """host (provider uuid if not a compute node's) → what ``consumer``
    holds there, from placement's API."""
    r = httpx.get(f"{cloud.url}/placement/allocations/{consumer}",
                  headers={"X-Auth-Token": nova.headers["X-Auth-Token"], "OpenStack-API-Version": "placement 1.28"})
    assert r.status_code == 200, r.text
    by_provider = {compute_node_uuid(h): h for h in hosts(cloud)}
    return {by_provider.get(rp, rp): dict(a["resources"]) for rp, a in r.json()["allocations"].items()}
