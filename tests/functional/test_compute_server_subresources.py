"""A server's metadata, tags and addresses over plain HTTP: bodies, status
codes and messages as Nova gives them, policy, locks and server states."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loom.objects import instances
from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    admin_fixture,
    boot,
    cloud_fixture,
    compute_client,
    member_compute,
    member_fixture,
    wait_status,
)
from tests.functional.test_identity_support import Member, admin_client, grant, issue, new_member, password_auth

cloud = cloud_fixture()
nova = admin_fixture()
member = member_fixture()


@pytest.fixture(scope="module")
def mine(cloud: Cloud, member: Member) -> Iterator[httpx.Client]:
    with member_compute(cloud, member) as c:
        yield c


@pytest.fixture(scope="module")
def server(nova: httpx.Client, mine: httpx.Client, cloud: Cloud) -> str:
    """An ACTIVE server of the member's project."""
    server_id = boot(mine, cloud)
    assert wait_status(nova, server_id, {"ACTIVE", "ERROR"})["status"] == "ACTIVE"
    return server_id


def set_fields(cloud: Cloud, server_id: str, **values: Any) -> None:
    async def change() -> None:
        async with cloud.runner.db.session.begin() as session:
            assert await instances.update_fields(session, server_id, values)

    cloud.run(change())


def error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    (fault,) = r.json().values()
    assert fault["code"] == status
    return str(fault["message"])


def test_metadata_merge_replace_and_items(mine: httpx.Client, server: str) -> None:
    url = f"/servers/{server}/metadata"
    assert mine.get(url).json() == {"metadata": {}}
    r = mine.post(url, json={"metadata": {"a": "1", "b": "2"}})
    assert r.status_code == 200 and r.json() == {"metadata": {"a": "1", "b": "2"}}
    r = mine.post(url, json={"metadata": {"b": "3", "c": "4"}})
    assert r.json() == {"metadata": {"a": "1", "b": "3", "c": "4"}}
    r = mine.put(url, json={"metadata": {"only": "x"}})
    assert r.status_code == 200 and r.json() == {"metadata": {"only": "x"}}
    assert mine.get(f"{url}/only").json() == {"meta": {"only": "x"}}
    r = mine.put(f"{url}/new key", json={"meta": {"new key": "y"}})
    assert r.status_code == 200 and r.json() == {"meta": {"new key": "y"}}
    assert mine.get(url).json()["metadata"] == {"only": "x", "new key": "y"}
    assert mine.get(f"/servers/{server}").json()["server"]["metadata"] == {"only": "x", "new key": "y"}
    assert mine.delete(f"{url}/only").status_code == 204
    assert error(mine.get(f"{url}/only"), 404) == "Metadata item was not found"
    assert error(mine.delete(f"{url}/only"), 404) == "Metadata item was not found"
    assert mine.put(url, json={"metadata": {}}).json() == {"metadata": {}}


def test_metadata_bodies_are_checked(mine: httpx.Client, server: str) -> None:
    url = f"/servers/{server}/metadata"
    assert error(mine.put(f"{url}/a", json={"meta": {"b": "1"}}), 400) == "Request body and URI mismatch"
    assert "has too many properties" in error(mine.put(f"{url}/a", json={"meta": {"a": "1", "b": "2"}}), 400)
    assert "does not have enough properties" in error(mine.put(f"{url}/a", json={"meta": {}}), 400)
    message = error(mine.post(url, json={"metadata": {"a/b": "1"}}), 400)
    assert message.startswith("Invalid input for field/attribute metadata.") and "'a/b' was unexpected" in message
    assert "'metadata' was unexpected" not in message
    message = error(mine.post(url, json={"metadata": {"k" * 256: "1"}}), 400)
    assert "field/attribute metadata" in message
    message = error(mine.post(url, json={"metadata": {"long": "v" * 256}}), 400)
    assert message.startswith("Invalid input for field/attribute long.") and "is too long" in message
    assert "is not of type 'string'" in error(mine.post(url, json={"metadata": {"n": 1}}), 400)
    assert error(mine.post(url, json={"meta": {"a": "1"}}), 400) == "'metadata' is a required property"
    assert "'extra' was unexpected" in error(mine.post(url, json={"metadata": {}, "extra": 1}), 400)
    assert error(mine.post(url, content=b"{nope", headers={"Content-Type": "application/json"}), 400)
    assert mine.post(url, json={"metadata": {"k" * 255: "v" * 255}}).status_code == 200
    assert mine.get(url).json()["metadata"] == {"k" * 255: "v" * 255}
    mine.put(url, json={"metadata": {}})


def test_metadata_locked_and_state(nova: httpx.Client, mine: httpx.Client, server: str, cloud: Cloud) -> None:
    url = f"/servers/{server}/metadata"
    set_fields(cloud, server, locked=True, locked_by="admin")
    try:
        assert error(mine.post(url, json={"metadata": {"a": "1"}}), 409) == f"Instance {server} is locked"
        assert error(mine.put(f"{url}/a", json={"meta": {"a": "1"}}), 409) == f"Instance {server} is locked"
        assert mine.get(url).status_code == 200  # reads are not refused
        assert nova.post(url, json={"metadata": {"a": "1"}}).status_code == 200  # admins may
        assert error(mine.delete(f"{url}/a"), 409) == f"Instance {server} is locked"
    finally:
        set_fields(cloud, server, locked=False, locked_by=None)
    assert mine.delete(f"{url}/a").status_code == 204
    set_fields(cloud, server, vm_state="error")
    try:
        message = error(mine.post(url, json={"metadata": {"a": "1"}}), 409)
        assert message == f"Cannot 'update metadata' instance {server} while it is in vm_state error"
        message = error(mine.put(url, json={"metadata": {}}), 409)
        assert message == f"Cannot 'update metadata' instance {server} while it is in vm_state error"
        assert mine.get(url).status_code == 200
    finally:
        set_fields(cloud, server, vm_state="active")
    # A rebooting server (a task under way) still takes metadata, as in Nova.
    set_fields(cloud, server, vm_state="stopped", task_state="powering-on")
    try:
        assert mine.post(url, json={"metadata": {"s": "1"}}).status_code == 200
        mine.post(url, json={"metadata": {"d": "1"}})
        assert mine.delete(f"{url}/d").status_code == 204
    finally:
        set_fields(cloud, server, vm_state="active", task_state=None)
    assert mine.get(url).json()["metadata"] == {"s": "1"}
    mine.put(url, json={"metadata": {}})


def test_metadata_quota(nova: httpx.Client, mine: httpx.Client, member: Member, server: str) -> None:
    r = nova.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"metadata_items": 2}})
    assert r.status_code == 200, r.text
    try:
        url = f"/servers/{server}/metadata"
        assert mine.post(url, json={"metadata": {"a": "1", "b": "2"}}).status_code == 200
        assert error(mine.post(url, json={"metadata": {"c": "3"}}), 403) == "Maximum number of metadata items exceeds 2"
        assert mine.post(url, json={"metadata": {"a": "changed"}}).status_code == 200  # still two items
        assert mine.get(url).json()["metadata"] == {"a": "changed", "b": "2"}
    finally:
        nova.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"metadata_items": 128}})
        mine.put(f"/servers/{server}/metadata", json={"metadata": {}})


def test_concurrent_merges_lose_nothing(cloud: Cloud, member: Member, server: str) -> None:
    def add(i: int) -> int:
        with member_compute(cloud, member) as c:
            return c.post(f"/servers/{server}/metadata", json={"metadata": {f"k{i}": str(i)}}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(add, range(16))) == {200}
    with member_compute(cloud, member) as c:
        metadata = c.get(f"/servers/{server}/metadata").json()["metadata"]
        assert metadata == {f"k{i}": str(i) for i in range(16)}
        c.put(f"/servers/{server}/metadata", json={"metadata": {}})


def test_policy_and_other_projects(cloud: Cloud, nova: httpx.Client, member: Member, server: str) -> None:
    with admin_client(cloud) as admin:
        stranger = new_member(admin)
        reader = new_member(admin, role="reader")
        grant(admin, member.project_id, reader.user_id, "reader")
    with member_compute(cloud, stranger) as other:
        for path in ("metadata", "metadata/a", "tags", "ips"):
            assert "could not be found" in error(other.get(f"/servers/{server}/{path}"), 404)
        assert error(other.post(f"/servers/{server}/metadata", json={"metadata": {"a": "1"}}), 404)
        assert error(other.put(f"/servers/{server}/tags/x"), 404)
    with compute_client(cloud, issue(cloud, password_auth(reader.name, reader.password, member.project))) as ro:
        assert ro.get(f"/servers/{server}/metadata").status_code == 200
        assert ro.get(f"/servers/{server}/tags").status_code == 200
        assert ro.get(f"/servers/{server}/ips").status_code == 200
        assert error(ro.post(f"/servers/{server}/metadata", json={"metadata": {"a": "1"}}), 403)
        assert error(ro.delete(f"/servers/{server}/metadata/a"), 403)
        assert error(ro.put(f"/servers/{server}/tags/x"), 403)
        assert error(ro.delete(f"/servers/{server}/tags"), 403)
    assert (
        error(nova.get("/servers/00000000-0000-0000-0000-000000000000/metadata"), 404)
        == "Instance 00000000-0000-0000-0000-000000000000 could not be found."
    )


def test_tags_one_by_one(mine: httpx.Client, server: str, cloud: Cloud) -> None:
    url = f"/servers/{server}/tags"
    assert mine.get(url).json() == {"tags": []}
    r = mine.put(f"{url}/blue sky")
    assert r.status_code == 201 and r.content == b""
    assert r.headers["Location"] == f"{cloud.url}/compute/v2.1/servers/{server}/tags/blue%20sky"
    assert mine.put(f"{url}/blue sky").status_code == 204
    assert mine.put(f"{url}/red").status_code == 201
    assert mine.get(url).json() == {"tags": ["blue sky", "red"]}
    assert mine.get(f"{url}/red").status_code == 204
    assert error(mine.get(f"{url}/green"), 404) == f"Server {server} has no tag 'green'"
    assert mine.get(f"/servers/{server}").json()["server"]["tags"] == ["blue sky", "red"]
    assert server in {s["id"] for s in mine.get("/servers", params={"tags": "red,blue sky"}).json()["servers"]}
    assert server not in {s["id"] for s in mine.get("/servers", params={"not-tags": "red"}).json()["servers"]}
    assert mine.delete(f"{url}/red").status_code == 204
    assert error(mine.delete(f"{url}/red"), 404) == f"Instance {server} has no tag 'red'"
    message = error(mine.put(f"{url}/a,b"), 400)
    assert message.startswith("Tag 'a,b' is invalid. It must be a non empty string without characters '/' and ','")
    assert "is too long" in error(mine.put(f"{url}/{'t' * 61}"), 400)
    assert mine.put(f"{url}/{'t' * 60}").status_code == 201
    assert "is not of type 'null'" in error(mine.put(f"{url}/x", json={"tag": "x"}), 400)
    assert mine.delete(url).status_code == 204
    assert mine.get(url).json() == {"tags": []}


def test_tags_replace_and_limits(mine: httpx.Client, server: str) -> None:
    url = f"/servers/{server}/tags"
    r = mine.put(url, json={"tags": ["a", "b", "a"]})
    assert r.status_code == 200 and r.json() == {"tags": ["a", "b"]}
    assert mine.get(url).json() == {"tags": ["a", "b"]}
    full = [f"t{i}" for i in range(50)]
    assert mine.put(url, json={"tags": full}).json() == {"tags": full}
    message = error(mine.put(f"{url}/one-more"), 400)
    assert message == "The number of tags exceeded the per-server limit 50"
    # Nova counts before it looks, so even a tag the server has is refused.
    assert error(mine.put(f"{url}/t0"), 400) == message
    assert "is too long" in error(mine.put(url, json={"tags": [*full, "x"]}), 400)
    assert "does not match" in error(mine.put(url, json={"tags": ["ok", "a/b"]}), 400)
    assert "is too short" in error(mine.put(url, json={"tags": [""]}), 400)
    assert "is not of type 'array'" in error(mine.put(url, json={"tags": "a"}), 400)
    assert error(mine.put(url, json={"tag": []}), 400) == "'tags' is a required property"
    assert mine.get(url).json() == {"tags": full}
    assert mine.put(url, json={"tags": []}).json() == {"tags": []}


def test_tags_need_2_26_and_a_settled_server(cloud: Cloud, member: Member, mine: httpx.Client, server: str) -> None:
    with member_compute(cloud, member, "2.25") as old:
        assert error(old.get(f"/servers/{server}/tags"), 404)
        assert error(old.put(f"/servers/{server}/tags/x"), 404)
        assert "tags" not in old.get(f"/servers/{server}").json()["server"]
    mine.put(f"/servers/{server}/tags/keep")
    set_fields(cloud, server, vm_state="building")
    try:
        url = f"/servers/{server}/tags"
        expected = f"Cannot 'update tag' instance {server} while it is in vm_state building"
        assert error(mine.put(f"{url}/x"), 409) == expected
        assert error(mine.put(url, json={"tags": []}), 409) == expected.replace("update tag", "update tags")
        assert error(mine.delete(f"{url}/keep"), 409) == expected.replace("update tag", "delete tag")
        assert error(mine.delete(url), 409) == expected.replace("update tag", "delete tags")
        assert mine.get(url).json() == {"tags": ["keep"]}
    finally:
        set_fields(cloud, server, vm_state="active")
    assert mine.delete(f"/servers/{server}/tags").status_code == 204


def test_ips(mine: httpx.Client, server: str) -> None:
    # No networks yet: every server has no addresses, and no network label exists.
    assert mine.get(f"/servers/{server}/ips").json() == {"addresses": {}}
    message = error(mine.get(f"/servers/{server}/ips/private"), 404)
    assert message == "Instance is not a member of specified network"
    assert error(mine.get("/servers/00000000-0000-0000-0000-000000000000/ips"), 404)
    # Without addresses no server matches an address filter.
    assert server in {s["id"] for s in mine.get("/servers").json()["servers"]}
    assert mine.get("/servers", params={"ip": ".*"}).json()["servers"] == []
    assert mine.get("/servers", params={"ip6": ""}).json()["servers"] != []  # an empty filter is no filter
