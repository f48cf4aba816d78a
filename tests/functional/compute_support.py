"""What the compute acceptance tests (test_compute_*.py) share: a cloud per
test module, compute API clients for admin and for fresh members, the demo
image, an openstacksdk connection, booting a server and waiting for its
status. There are no tests here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest
from openstack.connection import Connection

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
