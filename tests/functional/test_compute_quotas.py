"""Compute quotas end to end: os-quota-sets, os-quota-class-sets and
/limits over HTTP, the stock CLI and openstacksdk; quota checks on boot,
keypairs and server metadata, including concurrent boots."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select

from loom.db.engine import Database
from loom.db.models import Instance, ServerGroup, ServerGroupMember
from loom.errors import QuotaExceeded
from loom.objects import quotas
from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    admin_fixture,
    cloud_fixture,
    compute_client,
    demo_image,
    member_compute,
    member_fixture,
    member_token,
    sdk_connection,
    wait_status,
)
from tests.functional.test_identity_support import Member

SSH_KEY = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


cloud = cloud_fixture()
admin = admin_fixture()
member = member_fixture(scope="function")


@pytest.fixture(scope="module")
def image(cloud: Cloud, admin: httpx.Client) -> str:
    return demo_image(admin, cloud)


def v(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def boot(client: httpx.Client, image: str, **extra: Any) -> httpx.Response:
    body = {"server": {"name": "q", "imageRef": image, "flavorRef": "1", "networks": "none", **extra}}
    return client.post("/servers", json=body)


def database(cloud: Cloud) -> Database:
    db = cloud.runner.db
    assert db is not None
    return db


def instance_rows(cloud: Cloud, project_id: str) -> int:
    """Every row, deleted or not: a refused boot must leave none."""

    async def count() -> int:
        async with database(cloud).session() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(Instance).where(Instance.project_id == project_id)
                )
                or 0
            )

    return int(cloud.run(count()))


def forbidden(r: httpx.Response) -> str:
    assert r.status_code == 403, r.text
    return str(r.json()["forbidden"]["message"])


def bad_request(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    return str(r.json()["badRequest"]["message"])


def test_show_detail_and_defaults_by_microversion(admin: httpx.Client, member: Member) -> None:
    pid = member.project_id
    old = admin.get(f"/os-quota-sets/{pid}", headers=v("2.1")).json()["quota_set"]
    assert old == {
        "id": pid,
        "instances": 10,
        "cores": 20,
        "ram": 51200,
        "metadata_items": 128,
        "injected_files": 5,
        "injected_file_content_bytes": 10240,
        "injected_file_path_bytes": 255,
        "key_pairs": 100,
        "server_groups": 10,
        "server_group_members": 10,
        "fixed_ips": -1,
        "floating_ips": -1,
        "security_groups": -1,
        "security_group_rules": -1,
    }
    mid = admin.get(f"/os-quota-sets/{pid}", headers=v("2.36")).json()["quota_set"]
    assert set(old) - set(mid) == {"fixed_ips", "floating_ips", "security_groups", "security_group_rules"}
    new = admin.get(f"/os-quota-sets/{pid}", headers=v("2.57")).json()["quota_set"]
    assert set(mid) - set(new) == {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
    detail = admin.get(f"/os-quota-sets/{pid}/detail", headers=v("2.1")).json()["quota_set"]
    assert detail["id"] == pid
    assert detail["instances"] == {"in_use": 0, "limit": 10, "reserved": 0}
    assert detail["floating_ips"] == {"in_use": 0, "limit": -1, "reserved": 0}
    defaults = admin.get(f"/os-quota-sets/{pid}/defaults").json()["quota_set"]
    assert defaults["id"] == pid and defaults["instances"] == 10 and "fixed_ips" not in defaults
    r = admin.get("/os-quota-sets/no-such-project")
    assert "Project ID no-such-project is not a valid project." in bad_request(r)
    r = admin.get(f"/os-quota-sets/{pid}", params={"bogus": "1"})
    assert "'bogus' was unexpected" in bad_request(r)
    assert admin.get(f"/os-quota-sets/{pid}", params={"bogus": "1"}, headers=v("2.74")).status_code == 200


def test_policy(cloud: Cloud, admin: httpx.Client, member: Member) -> None:
    with member_compute(cloud, member) as mine:
        assert mine.get(f"/os-quota-sets/{member.project_id}").status_code == 200
        assert mine.get(f"/os-quota-sets/{member.project_id}/detail").status_code == 200
        r = mine.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"instances": 50}})
        assert "os_compute_api:os-quota-sets:update" in forbidden(r)
        assert mine.delete(f"/os-quota-sets/{member.project_id}").status_code == 403
        # Policy comes first: another project is refused before it is looked up.
        assert mine.get("/os-quota-sets/x").status_code == 403
        assert mine.get("/os-quota-sets/x/defaults").status_code == 400  # anyone may ask; no such project
        assert mine.get("/os-quota-class-sets/default").status_code == 403
        assert mine.put("/os-quota-class-sets/default", json={"quota_class_set": {"cores": 1}}).status_code == 403
        assert mine.get("/limits", params={"tenant_id": "admin"}).status_code == 403
    assert admin.get(f"/os-quota-sets/{member.project_id}").json()["quota_set"]["instances"] == 10


def test_update_validation_names_the_field(admin: httpx.Client, member: Member) -> None:
    url = f"/os-quota-sets/{member.project_id}"
    for body, words in (
        ({"instances": -2}, "instances. Value: -2. -2 is less than the minimum of -1"),
        ({"cores": "abc"}, "field/attribute cores"),
        ({"ram": 1.5}, "field/attribute ram"),
        ({"key_pairs": 2**31}, "greater than the maximum of 2147483647"),
        ({"bogus": 1}, "('bogus' was unexpected)"),
        ({"floating_ips": 1}, "('floating_ips' was unexpected)"),
        ({"injected_files": 1}, "('injected_files' was unexpected)"),
        ({"force": "maybe"}, "field/attribute force"),
    ):
        assert words in bad_request(admin.put(url, json={"quota_set": body})), body
    assert "networks quota is disabled" in bad_request(
        admin.put(url, json={"quota_set": {"networks": 1}}, headers=v("2.35"))
    )
    r = admin.put(url, json={"quota_set": {"floating_ips": 7, "injected_files": "6"}}, headers=v("2.35"))
    assert r.status_code == 200, r.text
    assert r.json()["quota_set"]["floating_ips"] == 7 and "id" not in r.json()["quota_set"]
    assert admin.get(url, headers=v("2.56")).json()["quota_set"]["injected_files"] == 6


def test_limits_below_usage_need_force_and_delete_reverts(
    cloud: Cloud, admin: httpx.Client, member: Member, image: str
) -> None:
    url = f"/os-quota-sets/{member.project_id}"
    with member_compute(cloud, member) as mine:
        for _ in range(2):
            assert boot(mine, image).status_code == 202
    assert admin.get(f"{url}/detail").json()["quota_set"]["instances"]["in_use"] == 2
    msg = bad_request(admin.put(url, json={"quota_set": {"instances": 1}}))
    assert msg == "Quota limit 1 for instances must be greater than or equal to already used and reserved 2."
    r = admin.put(url, json={"quota_set": {"instances": 1, "force": True}})
    assert r.status_code == 200 and r.json()["quota_set"]["instances"] == 1
    r = admin.put(url, json={"quota_set": {"instances": 3}}, params={"user_id": member.user_id})
    assert "must be less than or equal to 1" in bad_request(r)
    assert admin.delete(url).status_code == 202
    assert admin.get(url).json()["quota_set"]["instances"] == 10


def test_user_limits_are_resolved_and_enforced(cloud: Cloud, admin: httpx.Client, member: Member, image: str) -> None:
    url = f"/os-quota-sets/{member.project_id}"
    assert admin.put(url, json={"quota_set": {"instances": 5, "cores": 8}}).status_code == 200
    r = admin.put(url, json={"quota_set": {"instances": 1}}, params={"user_id": member.user_id})
    assert r.status_code == 200 and r.json()["quota_set"]["instances"] == 1
    user = admin.get(url, params={"user_id": member.user_id}).json()["quota_set"]
    assert user["instances"] == 1 and user["cores"] == 8  # the user's own, then the project's
    assert admin.get(url).json()["quota_set"]["instances"] == 5
    with member_compute(cloud, member) as mine:
        assert boot(mine, image).status_code == 202
        msg = forbidden(boot(mine, image))
    assert msg == "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"
    assert instance_rows(cloud, member.project_id) == 1
    # A user's limit may not exceed what the project's leaves (5 - 1 + 1).
    r = admin.put(url, json={"quota_set": {"instances": 6}}, params={"user_id": member.user_id})
    assert "must be less than or equal to 5" in bad_request(r)
    assert admin.delete(url, params={"user_id": member.user_id}).status_code == 202
    assert admin.get(url, params={"user_id": member.user_id}).json()["quota_set"]["instances"] == 5


def test_over_quota_boots_are_refused_whole(cloud: Cloud, admin: httpx.Client, member: Member, image: str) -> None:
    url = f"/os-quota-sets/{member.project_id}"
    assert admin.put(url, json={"quota_set": {"instances": 3, "cores": 3, "metadata_items": 2}}).status_code == 200
    with member_compute(cloud, member) as mine:
        assert boot(mine, image, flavorRef="3").status_code == 202  # m1.medium: 2 vCPUs
        msg = forbidden(boot(mine, image, flavorRef="3"))
        assert msg == "Quota exceeded for cores: Requested 2, but already used 2 of 3 cores"
        msg = forbidden(boot(mine, image, min_count=3, max_count=4))
        assert msg.startswith("Quota exceeded for cores, instances: Requested 4, 3-4, but already used 2, 1 of 3, 3")
        # A range is trimmed to what fits, as Nova does.
        r = boot(mine, image, min_count=1, max_count=4, return_reservation_id=True)
        assert r.status_code == 202, r.text
        msg = forbidden(boot(mine, image, metadata={"a": "1", "b": "2", "c": "3"}))
        assert msg == "Maximum number of metadata items exceeds 2"
    assert instance_rows(cloud, member.project_id) == 2
    detail = admin.get(f"{url}/detail").json()["quota_set"]
    assert detail["instances"]["in_use"] == 2 and detail["cores"]["in_use"] == 3


def test_key_pairs_quota(cloud: Cloud, admin: httpx.Client, member: Member) -> None:
    url = f"/os-quota-sets/{member.project_id}"
    assert admin.put(url, json={"quota_set": {"key_pairs": 1}}).status_code == 200
    with member_compute(cloud, member) as mine:
        assert mine.post("/os-keypairs", json={"keypair": {"name": "k1", "public_key": SSH_KEY}}).status_code == 201
        r = mine.post("/os-keypairs", json={"keypair": {"name": "k2", "public_key": SSH_KEY}})
        assert forbidden(r) == "Quota exceeded, too many key pairs."
        r = mine.post("/os-keypairs", json={"keypair": {"name": "k3"}})
        assert forbidden(r) == "Quota exceeded, too many key pairs."
        assert [k["keypair"]["name"] for k in mine.get("/os-keypairs").json()["keypairs"]] == ["k1"]


def test_quota_classes(admin: httpx.Client, member: Member) -> None:
    before = admin.get("/os-quota-class-sets/default", headers=v("2.49")).json()["quota_class_set"]
    assert before["id"] == "default" and "server_groups" not in before and before["fixed_ips"] == -1
    shown = admin.get("/os-quota-class-sets/default", headers=v("2.50")).json()["quota_class_set"]
    assert shown["server_groups"] == 10 and "fixed_ips" not in shown and shown["injected_files"] == 5
    assert "injected_files" not in admin.get("/os-quota-class-sets/default").json()["quota_class_set"]
    r = admin.put("/os-quota-class-sets/default", json={"quota_class_set": {"fixed_ips": 1}}, headers=v("2.50"))
    assert "('fixed_ips' was unexpected)" in bad_request(r)
    try:
        r = admin.put("/os-quota-class-sets/default", json={"quota_class_set": {"instances": 7, "ram": "2048"}})
        assert r.status_code == 200, r.text
        assert r.json()["quota_class_set"]["instances"] == 7 and "id" not in r.json()["quota_class_set"]
        pid = member.project_id
        assert admin.get(f"/os-quota-sets/{pid}").json()["quota_set"]["instances"] == 7
        assert admin.get(f"/os-quota-sets/{pid}/defaults").json()["quota_set"]["ram"] == 2048
        # Only the "default" class takes part in the limits.
        assert admin.put("/os-quota-class-sets/gold", json={"quota_class_set": {"instances": 99}}).status_code == 200
        assert admin.get("/os-quota-class-sets/gold").json()["quota_class_set"]["instances"] == 99
        assert admin.get(f"/os-quota-sets/{pid}").json()["quota_set"]["instances"] == 7
    finally:
        admin.put("/os-quota-class-sets/default", json={"quota_class_set": {"instances": 10, "ram": 51200}})


def test_limits(cloud: Cloud, admin: httpx.Client, member: Member, image: str) -> None:
    assert admin.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"instances": 4}}).status_code == 200
    with member_compute(cloud, member) as mine:
        assert boot(mine, image).status_code == 202
        old = mine.get("/limits", headers=v("2.1")).json()["limits"]
        assert old["rate"] == []
        absolute = old["absolute"]
        assert absolute["maxTotalInstances"] == 4 and absolute["totalInstancesUsed"] == 1
        assert absolute["totalRAMUsed"] == 512 and absolute["totalCoresUsed"] == 1
        assert absolute["maxImageMeta"] == 128 and absolute["maxSecurityGroups"] == -1
        assert absolute["totalFloatingIpsUsed"] == 0 and absolute["maxPersonality"] == 5
        assert "maxSecurityGroups" not in mine.get("/limits", headers=v("2.36")).json()["limits"]["absolute"]
        assert "maxImageMeta" not in mine.get("/limits", headers=v("2.39")).json()["limits"]["absolute"]
        latest = mine.get("/limits").json()["limits"]["absolute"]
        assert "maxPersonality" not in latest and latest["maxServerGroupMembers"] == 10
    other = admin.get("/limits", params={"tenant_id": member.project_id}).json()["limits"]["absolute"]
    assert other["maxTotalInstances"] == 4 and other["totalInstancesUsed"] == 1
    assert admin.get("/limits").json()["limits"]["absolute"]["maxTotalInstances"] == 10


def test_concurrent_boots_never_exceed_the_limit(cloud: Cloud, admin: httpx.Client, member: Member, image: str) -> None:
    assert admin.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"instances": 4}}).status_code == 200
    token = member_token(cloud, member)
    start = threading.Barrier(10)

    def one(_: int) -> int:
        with compute_client(cloud, token, version=None, timeout=60) as c:
            start.wait()
            return boot(c, image).status_code

    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(one, range(10)))
    assert sorted(codes) == [202] * 4 + [403] * 6
    assert instance_rows(cloud, member.project_id) == 4


def test_concurrent_key_pairs_never_exceed_the_limit(cloud: Cloud, admin: httpx.Client, member: Member) -> None:
    assert admin.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"key_pairs": 2}}).status_code == 200
    token = member_token(cloud, member)
    start = threading.Barrier(6)

    def one(n: int) -> int:
        with compute_client(cloud, token, version=None, timeout=60) as c:
            start.wait()
            return c.post("/os-keypairs", json={"keypair": {"name": f"k{n}", "public_key": SSH_KEY}}).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(one, range(6)))
    assert sorted(codes) == [200] * 2 + [403] * 4
    with member_compute(cloud, member) as mine:
        assert len(mine.get("/os-keypairs").json()["keypairs"]) == 2


def test_server_group_checks(cloud: Cloud, admin: httpx.Client, member: Member, image: str) -> None:
    """The helpers the server groups API calls after inserting its rows."""
    url = f"/os-quota-sets/{member.project_id}"
    assert admin.put(url, json={"quota_set": {"server_groups": 2, "server_group_members": 2}}).status_code == 200
    settings = cloud.settings.quota
    with member_compute(cloud, member) as mine:
        servers = [boot(mine, image).json()["server"]["id"] for _ in range(3)]

    async def new_group(name: str) -> int:
        async with database(cloud).session.begin() as session:
            group = ServerGroup(name=name, project_id=member.project_id, user_id=member.user_id, policy="affinity")
            session.add(group)
            await session.flush()
            await quotas.check_server_groups(session, settings, member.project_id, member.user_id)
            return group.id

    async def add_member(group_id: int, uuid: str) -> None:
        async with database(cloud).session.begin() as session:
            session.add(ServerGroupMember(group_id=group_id, instance_uuid=uuid))
            await session.flush()
            await quotas.check_server_group_members(session, settings, member.project_id, member.user_id, group_id)

    group_id = cloud.run(new_group("g1"))
    cloud.run(new_group("g2"))
    with pytest.raises(QuotaExceeded, match=r"^Quota exceeded, too many server groups\.$"):
        cloud.run(new_group("g3"))
    with member_compute(cloud, member) as mine:
        assert mine.get("/limits").json()["limits"]["absolute"]["totalServerGroupsUsed"] == 2
    cloud.run(add_member(group_id, servers[0]))
    cloud.run(add_member(group_id, servers[1]))
    with pytest.raises(QuotaExceeded, match=r"^Quota exceeded, too many servers in group$"):
        cloud.run(add_member(group_id, servers[2]))
    # A deleted server no longer takes a place in its group.
    assert admin.delete(f"/servers/{servers[0]}").status_code == 204
    wait_status(admin, servers[0], {"DELETED"})
    cloud.run(add_member(group_id, servers[2]))


def test_cli(cloud: Cloud, member: Member) -> None:
    cloud.openstack("quota", "set", "--instances", "3", "--cores", "5", member.project)
    shown = {row["Resource"]: row["Limit"] for row in cloud.openstack("quota", "show", member.project)}
    assert shown["instances"] == 3 and shown["cores"] == 5 and shown["ram"] == 51200
    compute = {row["Resource"]: row["Limit"] for row in cloud.openstack("quota", "show", "--compute", member.project)}
    assert compute == shown
    defaults = {row["Resource"]: row["Limit"] for row in cloud.openstack("quota", "show", "--default")}
    assert defaults["instances"] == 10 and defaults["key-pairs"] == 100
    usage = {row["Resource"]: row for row in cloud.openstack("quota", "show", "--usage", member.project)}
    assert usage["instances"]["In Use"] == 0 and usage["instances"]["Limit"] == 3
    limits = {
        row["Name"]: row["Value"]
        for row in cloud.openstack("limits", "show", "--absolute", "--project", member.project)
    }
    assert limits["max_total_instances"] == 3 and limits["max_total_cores"] == 5
    assert limits["total_instances_used"] == 0 and limits["max_total_ram_size"] == 51200
    proc = cloud.openstack(
        "quota",
        "set",
        "--instances",
        "4",
        member.project,
        env=cloud.env(member.name, member.password, member.project),
        check=False,
    )
    assert proc.returncode != 0 and "403" in proc.stderr


def test_sdk(cloud: Cloud, member: Member) -> None:
    with sdk_connection(cloud) as conn:
        quota = conn.compute.get_quota_set(member.project_id)
        assert quota.instances == 10 and quota.server_group_members == 10
        updated = conn.compute.update_quota_set(member.project_id, instances=6, key_pairs=9)
        assert updated.instances == 6 and updated.key_pairs == 9
        detail = conn.compute.get_quota_set(member.project_id, usage=True)
        assert detail.instances == 6 and detail.usage["instances"] == 0
        assert conn.compute.get_quota_set_defaults(member.project_id).instances == 10
        limits = conn.compute.get_limits(tenant_id=member.project_id)
        assert limits.absolute.instances == 6 and limits.absolute.keypairs == 9
        conn.compute.revert_quota_set(member.project_id)
        assert conn.compute.get_quota_set(member.project_id).instances == 10


def test_server_group_quotas(cloud: Cloud, admin: httpx.Client, image: str, member: Member) -> None:
    """server_groups per project and server_group_members per group, as
    the API enforces them."""
    r = admin.put(f"/os-quota-sets/{member.project_id}",
                  json={"quota_set": {"server_groups": 1, "server_group_members": 1}})
    assert r.status_code == 200, r.text
    with member_compute(cloud, member) as nova:
        r = nova.post("/os-server-groups", json={"server_group": {"name": "g1", "policy": "affinity"}})
        assert r.status_code == 200, r.text
        group = r.json()["server_group"]["id"]
        r = nova.post("/os-server-groups", json={"server_group": {"name": "g2", "policy": "affinity"}})
        assert "server groups" in forbidden(r)
        r = nova.post("/servers", json={"server": {"name": "g", "imageRef": image, "flavorRef": "1",
                                                   "networks": "none", "min_count": 2},
                                        "os:scheduler_hints": {"group": group}})
        assert "too many servers in group" in forbidden(r)
        assert instance_rows(cloud, member.project_id) == 0
        assert nova.get(f"/os-server-groups/{group}").json()["server_group"]["members"] == []
