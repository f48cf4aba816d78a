"""Server groups end to end: the os-server-groups API at each microversion,
booting into a group with the ``group`` scheduler hint (stock CLI, SDK and
plain HTTP), and the policies holding on three fake hosts, also when
several boots race into one group."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from loom.compute.manager import ComputeManager
from loom.virt.driver import InstanceSpec
from loom.virt.fake import FakeDriver
from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    admin_fixture,
    cloud_fixture,
    compute_client,
    demo_image,
    member_compute,
    member_fixture,
    sdk_connection,
    wait_status,
)
from tests.functional.test_identity_support import Member

# Quotas are not what these tests are about: they only must not get in the way.
UNLIMITED = {f"quota.{k}": -1 for k in ("instances", "cores", "ram", "server_groups", "server_group_members")}


cloud = cloud_fixture(**{"compute.fake_hosts": 3}, **UNLIMITED)
nova = admin_fixture()
member = member_fixture()


@pytest.fixture(scope="module")
def other(cloud: Cloud, member: Member) -> Iterator[httpx.Client]:
    with member_compute(cloud, member) as c:
        yield c


@pytest.fixture(scope="module")
def image(nova: httpx.Client, cloud: Cloud) -> str:
    return demo_image(nova, cloud)


def at(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def create_group(nova: httpx.Client, policy: str, rules: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"name": f"grp-{uuid.uuid4().hex[:6]}", "policy": policy}
    if rules:
        body["rules"] = rules
    r = nova.post("/os-server-groups", json={"server_group": body})
    assert r.status_code == 200, r.text
    return str(r.json()["server_group"]["id"])


def boot(nova: httpx.Client, image: str, group: str | None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"server": {"name": "vm", "imageRef": image, "flavorRef": "1", "networks": "none",
                                       **extra}}
    if group is not None:
        body["os:scheduler_hints"] = {"group": group}
    return nova.post("/servers", json=body)


def boot_ok(nova: httpx.Client, image: str, group: str | None, **extra: Any) -> str:
    r = boot(nova, image, group, **extra)
    assert r.status_code == 202, r.text
    return str(r.json()["server"]["id"])


def settled(nova: httpx.Client, server_ids: list[str], timeout: float = 30) -> list[dict[str, Any]]:
    """The servers once none is building any more."""
    return [wait_status(nova, server_id, {"ACTIVE", "ERROR"}, timeout) for server_id in server_ids]


def delete_all(nova: httpx.Client, server_ids: list[str]) -> None:
    for server_id in server_ids:
        assert nova.delete(f"/servers/{server_id}").status_code == 204
    for server_id in server_ids:
        wait_status(nova, server_id, {"DELETED"}, timeout=30)


def members(nova: httpx.Client, group: str) -> list[str]:
    r = nova.get(f"/os-server-groups/{group}")
    assert r.status_code == 200, r.text
    return list(r.json()["server_group"]["members"])


def test_bodies_follow_the_microversion(nova: httpx.Client) -> None:
    r = nova.post("/os-server-groups", headers=at("2.1"),
                  json={"server_group": {"name": "old", "policies": ["anti-affinity"]}})
    assert r.status_code == 200, r.text
    old = r.json()["server_group"]
    assert old == {"id": old["id"], "name": "old", "policies": ["anti-affinity"], "metadata": {}, "members": []}

    r = nova.post("/os-server-groups", headers=at("2.15"),
                  json={"server_group": {"name": "soft", "policies": ["soft-affinity"]}})
    assert r.status_code == 200, r.text
    soft = r.json()["server_group"]
    assert set(soft) == {"id", "name", "policies", "metadata", "members", "project_id", "user_id"}
    assert soft["policies"] == ["soft-affinity"] and soft["metadata"] == {}

    r = nova.post("/os-server-groups", headers=at("2.64"), json={"server_group": {
        "name": "new", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}})
    assert r.status_code == 200, r.text
    new = r.json()["server_group"]
    assert set(new) == {"id", "name", "policy", "rules", "members", "project_id", "user_id"}
    assert new["policy"] == "anti-affinity" and new["rules"] == {"max_server_per_host": 2}

    # Each version shows every group in its own shape.
    shown = nova.get(f"/os-server-groups/{new['id']}", headers=at("2.1")).json()["server_group"]
    assert shown == {"id": new["id"], "name": "new", "policies": ["anti-affinity"], "metadata": {}, "members": []}
    shown = nova.get(f"/os-server-groups/{old['id']}", headers=at("2.64")).json()["server_group"]
    assert shown["policy"] == "anti-affinity" and shown["rules"] == {} and "policies" not in shown
    assert shown["project_id"] == soft["project_id"] and shown["user_id"] == soft["user_id"]
    listed = nova.get("/os-server-groups", headers=at("2.13")).json()["server_groups"]
    ids = [g["id"] for g in listed]
    assert {old["id"], soft["id"], new["id"]} <= set(ids)
    assert all("project_id" in g and "policies" in g for g in listed)
    assert [g["id"] for g in nova.get("/os-server-groups", params={"limit": 1, "offset": 1}).json()
            ["server_groups"]] == ids[1:2]

    for group in (old, soft, new):
        assert nova.delete(f"/os-server-groups/{group['id']}").status_code == 204
        r = nova.get(f"/os-server-groups/{group['id']}")
        assert r.status_code == 404
        assert r.json()["itemNotFound"]["message"] == f"Instance group {group['id']} could not be found."


@pytest.mark.parametrize(("version", "group", "message"), [
    ("2.1", {"name": "g", "policies": ["soft-affinity"]},
     "Invalid input for field/attribute 0. Value: soft-affinity. 'soft-affinity' is not one of "
     "['anti-affinity', 'affinity']"),
    ("2.15", {"name": "g", "policies": ["spread"]},
     "Invalid input for field/attribute 0. Value: spread. 'spread' is not one of "
     "['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity']"),
    ("2.15", {"name": "g", "policies": ["affinity", "anti-affinity"]},
     "Invalid input for field/attribute policies. Value: ['affinity', 'anti-affinity']. "
     "['affinity', 'anti-affinity'] is too long"),
    ("2.15", {"name": "g"}, "Invalid input for field/attribute server_group. Value: {'name': 'g'}. "
                            "'policies' is a required property"),
    ("2.64", {"name": "g", "policies": ["affinity"]},
     "Invalid input for field/attribute server_group. Value: {'name': 'g', 'policies': ['affinity']}. "
     "Additional properties are not allowed ('policies' was unexpected)"),
    ("2.64", {"name": "g", "policy": "bogus"},
     "Invalid input for field/attribute policy. Value: bogus. 'bogus' is not one of "
     "['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity']"),
    ("2.64", {"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}},
     "Only anti-affinity policy supports rules."),
    ("2.64", {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}},
     "Invalid input for field/attribute max_server_per_host. Value: 0. 0 is less than the minimum of 1"),
    ("2.64", {"name": " g", "policy": "affinity"},
     "An invalid 'name' value was provided. The name must be: printable characters. "
     "Can not start or end with whitespace."),
])
def test_invalid_create_bodies_are_400(nova: httpx.Client, version: str, group: dict[str, Any],
                                       message: str) -> None:
    r = nova.post("/os-server-groups", headers=at(version), json={"server_group": group})
    assert r.status_code == 400, r.text
    assert r.json() == {"badRequest": {"code": 400, "message": message}}


def test_another_projects_group_is_not_found(nova: httpx.Client, other: httpx.Client, member: Member) -> None:
    mine = create_group(nova, "affinity")
    theirs = create_group(other, "anti-affinity")
    for method in ("GET", "DELETE"):
        r = other.request(method, f"/os-server-groups/{mine}")
        assert r.status_code == 404, r.text
        assert r.json()["itemNotFound"]["message"] == f"Instance group {mine} could not be found."
    # Non-admins asking for every project quietly get their own, as in Nova.
    for params in ({}, {"all_projects": "True"}):
        listed = other.get("/os-server-groups", params=params).json()["server_groups"]
        assert [g["id"] for g in listed] == [theirs]
    assert theirs not in {g["id"] for g in nova.get("/os-server-groups").json()["server_groups"]}
    everyone = nova.get("/os-server-groups", params={"all_projects": "True"}).json()["server_groups"]
    assert {mine, theirs} <= {g["id"] for g in everyone}
    assert nova.get(f"/os-server-groups/{theirs}").json()["server_group"]["project_id"] == member.project_id
    assert other.delete(f"/os-server-groups/{theirs}").status_code == 204
    assert nova.delete(f"/os-server-groups/{mine}").status_code == 204


def test_group_hints_must_name_a_visible_group(nova: httpx.Client, other: httpx.Client, image: str) -> None:
    missing = str(uuid.uuid4())
    r = boot(nova, image, missing)
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == f"Instance group {missing} could not be found."
    r = boot(nova, image, "not-a-uuid")
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == ("Invalid input for field/attribute group. Value: not-a-uuid. "
                                                 "'not-a-uuid' is not a 'uuid'")
    admins = create_group(nova, "anti-affinity")
    r = boot(other, image, admins)
    assert r.status_code == 400 and "could not be found" in r.json()["badRequest"]["message"]
    assert nova.delete(f"/os-server-groups/{admins}").status_code == 204


def test_cli_anti_affinity_spreads_and_refuses_a_fourth(cloud: Cloud, nova: httpx.Client) -> None:
    group = cloud.openstack("server", "group", "create", "--policy", "anti-affinity", "grp")
    assert group["name"] == "grp"

    def create(name: str) -> dict[str, Any]:
        return dict(cloud.openstack("server", "create", "--hint", f"group={group['id']}", "--image", "demo",
                                    "--flavor", "m1.tiny", "--nic", "none", "--wait", name))

    # At once: --wait polls every 5 s, and the policy must hold for racing boots too.
    with ThreadPoolExecutor(3) as pool:
        servers = list(pool.map(create, ["aa-0", "aa-1", "aa-2"]))
    hosts = [s["OS-EXT-SRV-ATTR:host"] for s in servers]
    assert len(set(hosts)) == 3 and all(s["status"] == "ACTIVE" for s in servers), hosts
    assert cloud.openstack("server", "show", servers[0]["id"])["OS-EXT-SRV-ATTR:host"] == hosts[0]

    fourth = cloud.openstack("server", "create", "--hint", f"group={group['id']}", "--image", "demo",
                             "--flavor", "m1.tiny", "--nic", "none", "aa-3")
    (failed,) = settled(nova, [fourth["id"]])
    assert failed["status"] == "ERROR"
    assert "No valid host was found" in failed["fault"]["message"]

    shown = cloud.openstack("server", "group", "show", group["id"])
    assert shown["policy"] == "anti-affinity"
    assert set(shown["members"]) == {s["id"] for s in servers} | {fourth["id"]}
    assert group["id"] in {g["ID"] for g in cloud.openstack("server", "group", "list")}
    # A deleted server leaves its group.
    delete_all(nova, [fourth["id"]])
    assert set(members(nova, group["id"])) == {s["id"] for s in servers}
    # Deleting a group with members is allowed; the servers stay.
    cloud.openstack("server", "group", "delete", group["id"])
    assert nova.get(f"/os-server-groups/{group['id']}").status_code == 404
    assert [s["status"] for s in settled(nova, [s["id"] for s in servers])] == ["ACTIVE"] * 3
    delete_all(nova, [s["id"] for s in servers])


def test_sdk_affinity_keeps_members_together(cloud: Cloud, nova: httpx.Client, image: str) -> None:
    with sdk_connection(cloud) as conn:
        group = conn.compute.create_server_group(name="together", policy="affinity")
        assert group.id in {g.id for g in conn.compute.server_groups()}
        # Two in one request (the first may go anywhere, the second follows it), then one more.
        boot_ok(nova, image, group.id, min_count=2, max_count=2)
        boot_ok(nova, image, group.id)
        ids = members(nova, group.id)
        assert len(ids) == 3
        servers = settled(nova, ids)
        assert [s["status"] for s in servers] == ["ACTIVE"] * 3, [s.get("fault") for s in servers]
        assert len({s["OS-EXT-SRV-ATTR:host"] for s in servers}) == 1
        assert set(conn.compute.get_server_group(group.id).member_ids) == set(ids)
        conn.compute.delete_server_group(group.id)
    delete_all(nova, ids)


def test_max_server_per_host_allows_two_per_host(nova: httpx.Client, image: str) -> None:
    group = create_group(nova, "anti-affinity", {"max_server_per_host": 2})
    first = boot_ok(nova, image, group, min_count=6, max_count=6)
    ids = [s["id"] for s in nova.get("/servers/detail", params={"name": "^vm-"}).json()["servers"]
           if s["id"] in members(nova, group)]
    assert first in ids and len(ids) == 6
    servers = settled(nova, ids)
    assert [s["status"] for s in servers] == ["ACTIVE"] * 6, [s.get("fault") for s in servers]
    assert sorted(Counter(s["OS-EXT-SRV-ATTR:host"] for s in servers).values()) == [2, 2, 2]
    seventh = boot_ok(nova, image, group)
    (failed,) = settled(nova, [seventh])
    assert failed["status"] == "ERROR" and "No valid host was found" in failed["fault"]["message"]
    delete_all(nova, [*ids, seventh])
    assert members(nova, group) == []
    assert nova.delete(f"/os-server-groups/{group}").status_code == 204


def test_one_request_for_three_lands_on_three_hosts(nova: httpx.Client, image: str) -> None:
    group = create_group(nova, "anti-affinity")
    boot_ok(nova, image, group, min_count=3, max_count=3)
    ids = members(nova, group)
    assert len(ids) == 3
    servers = settled(nova, ids)
    assert [s["status"] for s in servers] == ["ACTIVE"] * 3, [s.get("fault") for s in servers]
    assert len({s["OS-EXT-SRV-ATTR:host"] for s in servers}) == 3
    # From 2.71 a server names its group.
    assert all(s["server_groups"] == [group] for s in servers)
    assert "server_groups" not in nova.get(f"/servers/{ids[0]}", headers=at("2.70")).json()["server"]
    delete_all(nova, ids)
    assert nova.delete(f"/os-server-groups/{group}").status_code == 204


def boot_racing(cloud: Cloud, nova: httpx.Client, image: str, group: str, count: int) -> list[dict[str, Any]]:
    token = str(nova.headers["X-Auth-Token"])

    def one(_: int) -> str:
        with compute_client(cloud, token) as c:
            return boot_ok(c, image, group)

    with ThreadPoolExecutor(count) as pool:
        ids = list(pool.map(one, range(count)))
    return settled(nova, ids)


def test_racing_boots_never_break_anti_affinity(cloud: Cloud, nova: httpx.Client, image: str) -> None:
    group = create_group(nova, "anti-affinity")
    servers = boot_racing(cloud, nova, image, group, 6)
    active = [s for s in servers if s["status"] == "ACTIVE"]
    failed = [s for s in servers if s["status"] == "ERROR"]
    assert len(active) == 3 and len(failed) == 3, [(s["status"], s.get("fault")) for s in servers]
    assert len({s["OS-EXT-SRV-ATTR:host"] for s in active}) == 3
    assert all("No valid host was found" in s["fault"]["message"] for s in failed)
    delete_all(nova, [s["id"] for s in servers])
    assert nova.delete(f"/os-server-groups/{group}").status_code == 204


def test_racing_boots_into_affinity_end_on_one_host(cloud: Cloud, nova: httpx.Client, image: str) -> None:
    group = create_group(nova, "affinity")
    servers = boot_racing(cloud, nova, image, group, 4)
    assert [s["status"] for s in servers] == ["ACTIVE"] * 4, [s.get("fault") for s in servers]
    assert len({s["OS-EXT-SRV-ATTR:host"] for s in servers}) == 1
    delete_all(nova, [s["id"] for s in servers])
    assert nova.delete(f"/os-server-groups/{group}").status_code == 204


def _always_fail(spec: InstanceSpec) -> bool:
    return True


def test_a_reschedule_keeps_to_the_policy(cloud: Cloud, nova: httpx.Client, image: str) -> None:
    # Last in the module: the failed builds make the scheduler shun the host.
    bad = next(s.manager.driver for s in cloud.runner.services
               if isinstance(s.manager, ComputeManager) and s.manager.host == "test-host-1")
    assert isinstance(bad, FakeDriver)
    bad.fail_spawn = _always_fail
    try:
        group = create_group(nova, "anti-affinity")
        boot_ok(nova, image, group, min_count=3, max_count=3)
        servers = settled(nova, members(nova, group))
    finally:
        bad.fail_spawn = None
    # The member that failed on test-host-1 may only go where no other member is: nowhere.
    active = [s for s in servers if s["status"] == "ACTIVE"]
    (failed,) = [s for s in servers if s["status"] == "ERROR"]
    assert sorted(s["OS-EXT-SRV-ATTR:host"] for s in active) == ["test-host-2", "test-host-3"]
    assert "No valid host was found" in failed["fault"]["message"]
    assert "anti-affinity policy" in failed["fault"]["message"]
    delete_all(nova, [s["id"] for s in servers])
    assert nova.delete(f"/os-server-groups/{group}").status_code == 204
