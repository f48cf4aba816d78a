"""The placement REST API through HTTP, against a running cloud."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.functional.cloud import Cloud
from tests.functional.test_identity_support import issue, password_auth

LATEST = {"OpenStack-API-Version": "placement latest"}


def uid() -> str:
    return str(uuid.uuid4())


@pytest.fixture(scope="module")
def api(cloud: Cloud) -> Iterator[httpx.Client]:
    token = issue(cloud, password_auth("admin", cloud.admin_password, "admin"))
    with httpx.Client(base_url=cloud.url + "/placement", timeout=30,
                      headers={"X-Auth-Token": token, **LATEST}) as client:
        yield client


def v(minor: int) -> dict[str, str]:
    return {"OpenStack-API-Version": f"placement 1.{minor}"}


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    (err,) = r.json()["errors"]
    assert err["status"] == status and err["request_id"].startswith("req-")
    return err  # type: ignore[no-any-return]


def provider(api: httpx.Client, **inventory: Any) -> str:
    rp = uid()
    r = api.post("/resource_providers", json={"name": f"rp-{rp}", "uuid": rp})
    assert r.status_code == 200, r.text
    if inventory:
        r = api.put(f"/resource_providers/{rp}/inventories", json={
            "resource_provider_generation": 0, "inventories": inventory})
        assert r.status_code == 200, r.text
    return rp


def test_version_document_needs_no_token(cloud: Cloud) -> None:
    r = httpx.get(cloud.url + "/placement/")
    assert r.status_code == 200
    (doc,) = r.json()["versions"]
    assert doc["id"] == "v1.0" and doc["min_version"] == "1.0" and doc["status"] == "CURRENT"
    assert doc["max_version"] == "1.39"
    assert r.headers["openstack-api-version"] == "placement 1.0"
    assert "openstack-api-version" in r.headers["vary"]
    assert httpx.get(cloud.url + "/placement", follow_redirects=True).json()["versions"][0]["id"] == "v1.0"


def test_microversion_negotiation(cloud: Cloud, api: httpx.Client) -> None:
    r = api.get("/resource_providers", headers=v(14))
    assert r.headers["openstack-api-version"] == "placement 1.14"
    r = api.get("/resource_providers", headers={"OpenStack-API-Version": "placement 1.99"})
    error(r, 406)
    r = api.get("/resource_providers", headers={"OpenStack-API-Version": "placement 1.x"})
    error(r, 400)
    assert api.get("/resource_providers").headers["openstack-api-version"] == "placement 1.39"
    assert api.get("/resource_providers", headers={"OpenStack-API-Version": ""}).headers[
        "openstack-api-version"] == "placement 1.0"


def test_authentication_and_policy(cloud: Cloud, api: httpx.Client) -> None:
    r = httpx.get(cloud.url + "/placement/resource_providers")
    error(r, 401)
    # A member of a project is not an admin: Placement is admin-only.
    admin_id = api.get("/resource_providers").status_code
    assert admin_id == 200
    identity = httpx.Client(base_url=cloud.auth_url, headers={"X-Auth-Token": api.headers["X-Auth-Token"]})
    name, password = f"u-{uid()[:8]}", uid()
    r = identity.post("/users", json={"user": {"name": name, "password": password, "domain_id": "default"}})
    user_id = r.json()["user"]["id"]
    project = identity.get("/projects", params={"name": "admin"}).json()["projects"][0]["id"]
    role = identity.get("/roles", params={"name": "member"}).json()["roles"][0]["id"]
    assert identity.put(f"/projects/{project}/users/{user_id}/roles/{role}").status_code == 204
    token = issue(cloud, password_auth(name, password, "admin"))
    r = httpx.get(cloud.url + "/placement/resource_providers", headers={"X-Auth-Token": token})
    assert "placement:resource_providers:list" in error(r, 403)["detail"]


def test_resource_provider_lifecycle(api: httpx.Client) -> None:
    rp = uid()
    r = api.post("/resource_providers", json={"name": "lifecycle-" + rp, "uuid": rp}, headers=v(19))
    assert r.status_code == 201 and r.headers["location"].endswith(f"/placement/resource_providers/{rp}")
    assert r.content == b""
    r = api.post("/resource_providers", json={"name": "lifecycle-" + rp})
    assert error(r, 409)["code"] == "placement.duplicate_name"
    body = api.get(f"/resource_providers/{rp}").json()
    assert body["generation"] == 0 and body["root_provider_uuid"] == rp and body["parent_provider_uuid"] is None
    assert {link["rel"] for link in body["links"]} == {"self", "inventories", "usages", "aggregates", "traits",
                                                       "allocations"}
    assert "last-modified" in api.get(f"/resource_providers/{rp}").headers
    child = uid()
    r = api.post("/resource_providers", json={"name": "child-" + child, "uuid": child, "parent_provider_uuid": rp})
    assert r.json()["root_provider_uuid"] == rp
    assert {p["uuid"] for p in api.get("/resource_providers", params={"in_tree": child}).json()[
        "resource_providers"]} == {rp, child}
    assert error(api.delete(f"/resource_providers/{rp}"), 409)["code"] == \
        "placement.resource_provider.cannot_delete_parent"
    r = api.put(f"/resource_providers/{child}", json={"name": "renamed-" + child, "parent_provider_uuid": None})
    assert r.status_code == 200 and r.json()["root_provider_uuid"] == child
    r = api.put(f"/resource_providers/{child}", json={"name": "x" + child, "parent_provider_uuid": rp}, headers=v(36))
    assert r.status_code == 200
    r = api.put(f"/resource_providers/{child}", json={"name": "x" + child, "parent_provider_uuid": None},
                headers=v(36))
    error(r, 400)
    assert api.delete(f"/resource_providers/{child}").status_code == 204
    assert api.delete(f"/resource_providers/{rp}").status_code == 204
    error(api.get(f"/resource_providers/{rp}"), 404)
    error(api.get("/resource_providers", params={"bogus": "1"}), 400)


def test_inventories(api: httpx.Client) -> None:
    rp = provider(api)
    r = api.put(f"/resource_providers/{rp}/inventories", json={"resource_provider_generation": 0, "inventories": {
        "VCPU": {"total": 8, "allocation_ratio": 2.0}, "MEMORY_MB": {"total": 4096, "reserved": 512}}})
    assert r.status_code == 200 and r.json()["resource_provider_generation"] == 1
    assert r.json()["inventories"]["VCPU"] == {"total": 8, "reserved": 0, "min_unit": 1, "max_unit": 2147483647,
                                               "step_size": 1, "allocation_ratio": 2.0}
    r = api.put(f"/resource_providers/{rp}/inventories", json={"resource_provider_generation": 0, "inventories": {}})
    assert error(r, 409)["code"] == "placement.concurrent_update"
    r = api.put(f"/resource_providers/{rp}/inventories/VCPU", json={"resource_provider_generation": 1, "total": 4})
    assert r.status_code == 200 and r.json()["total"] == 4 and r.json()["resource_provider_generation"] == 2
    r = api.post(f"/resource_providers/{rp}/inventories", json={"resource_class": "DISK_GB", "total": 100})
    assert r.status_code == 201, r.text
    assert api.get(f"/resource_providers/{rp}/inventories/DISK_GB").json()["total"] == 100
    error(api.get(f"/resource_providers/{rp}/inventories/PCI_DEVICE"), 404)
    r = api.put(f"/resource_providers/{rp}/inventories", json={"resource_provider_generation": 3, "inventories": {
        "VCPU": {"total": 1, "reserved": 2}}})
    error(r, 400)
    r = api.put(f"/resource_providers/{rp}/inventories", json={"resource_provider_generation": 3, "inventories": {
        "CUSTOM_NOPE": {"total": 1}}})
    error(r, 400)
    assert api.delete(f"/resource_providers/{rp}/inventories/DISK_GB").status_code == 204
    assert api.delete(f"/resource_providers/{rp}/inventories").status_code == 204
    assert api.get(f"/resource_providers/{rp}/inventories").json()["inventories"] == {}
    assert api.delete(f"/resource_providers/{rp}/inventories", headers=v(4)).status_code == 405


def test_allocations_with_consumer_generations(api: httpx.Client) -> None:
    rp = provider(api, VCPU={"total": 4}, MEMORY_MB={"total": 2048})
    consumer = uid()
    body = {"allocations": {rp: {"resources": {"VCPU": 2, "MEMORY_MB": 1024}}}, "project_id": "p1",
            "user_id": "u1", "consumer_generation": None, "consumer_type": "INSTANCE"}
    assert api.put(f"/allocations/{consumer}", json=body).status_code == 204
    assert error(api.put(f"/allocations/{consumer}", json=body), 409)["code"] == "placement.concurrent_update"
    got = api.get(f"/allocations/{consumer}").json()
    assert got == {"allocations": {rp: {"generation": 2, "resources": {"VCPU": 2, "MEMORY_MB": 1024}}},
                   "project_id": "p1", "user_id": "u1", "consumer_generation": 1, "consumer_type": "INSTANCE"}
    # Too much: 409 without a special code.
    other = {**body, "allocations": {rp: {"resources": {"VCPU": 3}}}}
    assert error(api.put(f"/allocations/{uid()}", json=other), 409)["code"] == "placement.undefined_code"
    error(api.put(f"/allocations/{uid()}", json={**body, "consumer_generation": None,
                                                 "allocations": {uid(): {"resources": {"VCPU": 1}}}}), 400)
    error(api.put("/allocations/not-a-uuid", json=body), 400)
    # The older 1.27 form needs no generation.
    older = {k: body[k] for k in ("allocations", "project_id", "user_id")}
    assert api.put(f"/allocations/{consumer}", json=older, headers=v(27)).status_code == 204
    usages = api.get(f"/resource_providers/{rp}/usages").json()
    assert usages == {"resource_provider_generation": 3, "usages": {"MEMORY_MB": 1024, "VCPU": 2}}
    assert api.get("/usages", params={"project_id": "p1"}, headers=v(37)).json()["usages"] == {
        "VCPU": 2, "MEMORY_MB": 1024}
    assert api.get("/usages", params={"project_id": "p1"}).json()["usages"] == {
        "INSTANCE": {"VCPU": 2, "MEMORY_MB": 1024, "consumer_count": 1}}
    by_rp = api.get(f"/resource_providers/{rp}/allocations").json()
    assert by_rp["allocations"][consumer] == {"resources": {"VCPU": 2, "MEMORY_MB": 1024}, "consumer_generation": 2}
    # POST moves it to a migration consumer atomically.
    migration = uid()
    r = api.post("/allocations", json={
        consumer: {"allocations": {}, "project_id": "p1", "user_id": "u1", "consumer_generation": 2,
                   "consumer_type": "INSTANCE"},
        migration: {"allocations": {rp: {"resources": {"VCPU": 2, "MEMORY_MB": 1024}}}, "project_id": "p1",
                    "user_id": "u1", "consumer_generation": None, "consumer_type": "MIGRATION"}})
    assert r.status_code == 204, r.text
    assert api.get(f"/allocations/{consumer}").json() == {"allocations": {}}
    error(api.delete(f"/allocations/{consumer}"), 404)
    assert api.delete(f"/allocations/{migration}").status_code == 204
    r = api.delete(f"/resource_providers/{rp}")
    assert r.status_code == 204


def test_provider_in_use_cannot_be_deleted(api: httpx.Client) -> None:
    rp = provider(api, VCPU={"total": 4})
    consumer = uid()
    api.put(f"/allocations/{consumer}", json={"allocations": {rp: {"resources": {"VCPU": 1}}}, "project_id": "p",
                                              "user_id": "u", "consumer_generation": None, "consumer_type": "X"})
    assert error(api.delete(f"/resource_providers/{rp}"), 409)["code"] == "placement.resource_provider.inuse"
    r = api.put(f"/resource_providers/{rp}/inventories", json={"resource_provider_generation": 2, "inventories": {}})
    assert error(r, 409)["code"] == "placement.inventory.inuse"


def test_traits_and_aggregates(api: httpx.Client) -> None:
    rp = provider(api, VCPU={"total": 4})
    assert api.put("/traits/CUSTOM_GOLD").status_code == 201
    assert api.put("/traits/CUSTOM_GOLD").status_code == 204
    error(api.put("/traits/NOT_CUSTOM"), 400)
    assert api.get("/traits/HW_CPU_X86_AVX").status_code == 204
    assert "CUSTOM_GOLD" in api.get("/traits", params={"name": "startswith:CUSTOM_"}).json()["traits"]
    r = api.put(f"/resource_providers/{rp}/traits", json={"traits": ["CUSTOM_GOLD", "HW_CPU_X86_AVX"],
                                                          "resource_provider_generation": 1})
    assert r.status_code == 200 and r.json()["resource_provider_generation"] == 2
    r = api.put(f"/resource_providers/{rp}/traits", json={"traits": [], "resource_provider_generation": 1})
    assert error(r, 409)["code"] == "placement.concurrent_update"
    error(api.put(f"/resource_providers/{rp}/traits", json={"traits": ["CUSTOM_NOPE"],
                                                            "resource_provider_generation": 2}), 400)
    error(api.delete("/traits/CUSTOM_GOLD"), 409)
    assert api.get("/resource_providers", params={"required": "CUSTOM_GOLD"}).json()["resource_providers"][0][
        "uuid"] == rp
    assert rp not in {p["uuid"] for p in api.get("/resource_providers", params={"required": "!CUSTOM_GOLD"}).json()[
        "resource_providers"]}
    agg = uid()
    r = api.put(f"/resource_providers/{rp}/aggregates", json={"aggregates": [agg], "resource_provider_generation": 2})
    assert r.json() == {"aggregates": [agg], "resource_provider_generation": 3}
    r = api.put(f"/resource_providers/{rp}/aggregates", json={"aggregates": [], "resource_provider_generation": 2})
    assert error(r, 409)["code"] == "placement.concurrent_update"
    r = api.put(f"/resource_providers/{rp}/aggregates", json=[agg], headers=v(18))
    assert r.json() == {"aggregates": [agg]}
    found = api.get("/resource_providers", params={"member_of": f"in:{agg},{uid()}"}).json()["resource_providers"]
    assert [p["uuid"] for p in found] == [rp]
    assert api.delete(f"/resource_providers/{rp}/traits").status_code == 204
    assert api.delete("/traits/CUSTOM_GOLD").status_code == 204


def test_resource_classes(api: httpx.Client) -> None:
    names = [rc["name"] for rc in api.get("/resource_classes").json()["resource_classes"]]
    assert names[:3] == ["VCPU", "MEMORY_MB", "DISK_GB"]
    assert api.put("/resource_classes/CUSTOM_FPGA_X").status_code == 201
    assert api.put("/resource_classes/CUSTOM_FPGA_X").status_code == 204
    assert api.get("/resource_classes/CUSTOM_FPGA_X").json()["name"] == "CUSTOM_FPGA_X"
    assert error(api.post("/resource_classes", json={"name": "CUSTOM_FPGA_X"}), 409)["code"] == \
        "placement.duplicate_name"
    error(api.delete("/resource_classes/VCPU"), 400)
    assert api.delete("/resource_classes/CUSTOM_FPGA_X").status_code == 204
    error(api.get("/resource_classes/CUSTOM_FPGA_X"), 404)


def test_allocation_candidates(api: httpx.Client) -> None:
    agg = uid()
    hosts = [provider(api, VCPU={"total": 8}, MEMORY_MB={"total": 8192}, DISK_GB={"total": 100})
             for _ in range(3)]
    full = provider(api, VCPU={"total": 1}, MEMORY_MB={"total": 8192}, DISK_GB={"total": 100})
    api.put(f"/resource_providers/{hosts[0]}/aggregates", json={"aggregates": [agg],
                                                                "resource_provider_generation": 1})
    params = {"resources": "VCPU:2,MEMORY_MB:2048,DISK_GB:20"}
    body = api.get("/allocation_candidates", params=params).json()
    roots = [next(iter(req["allocations"])) for req in body["allocation_requests"]]
    assert set(hosts) <= set(roots) and full not in roots
    first = body["allocation_requests"][roots.index(hosts[0])]
    assert first == {"allocations": {hosts[0]: {"resources": {"VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 20}}},
                     "mappings": {"": [hosts[0]]}}
    summary = body["provider_summaries"][hosts[0]]
    assert summary["resources"]["VCPU"] == {"capacity": 8, "used": 0}
    assert summary["root_provider_uuid"] == hosts[0] and summary["traits"] == []
    r = api.get("/allocation_candidates", params={**params, "member_of": agg})
    assert [next(iter(req["allocations"])) for req in r.json()["allocation_requests"]] == [hosts[0]]
    r = api.get("/allocation_candidates", params={**params, "limit": "1"})
    assert len(r.json()["allocation_requests"]) == 1 and len(r.json()["provider_summaries"]) == 1
    old = api.get("/allocation_candidates", params=params, headers=v(10)).json()
    assert isinstance(old["allocation_requests"][0]["allocations"], list)
    error(api.get("/allocation_candidates", params=params, headers=v(9)), 404)
    error(api.get("/allocation_candidates", params={"resources": "VCPU:0"}), 400)
    error(api.get("/allocation_candidates", params={"resources": "CUSTOM_NONE:1"}), 400)
    error(api.get("/allocation_candidates", params={"resources": "VCPU:1", "required": "CUSTOM_NONE"}), 400)
    r = api.get("/allocation_candidates", params={"resources1": "VCPU:1", "resources2": "VCPU:1"})
    assert error(r, 400)["code"] == "placement.query.missing_value"
    # Claiming what a candidate says works as is.
    claim = {**first, "project_id": "p", "user_id": "u", "consumer_generation": None, "consumer_type": "INSTANCE"}
    assert api.put(f"/allocations/{uid()}", json=claim).status_code == 204


def test_reshaper(api: httpx.Client) -> None:
    root = provider(api, VCPU={"total": 4}, VGPU={"total": 2})
    child = uid()
    api.post("/resource_providers", json={"name": "gpu-" + child, "uuid": child, "parent_provider_uuid": root})
    consumer = uid()
    owner = {"project_id": "p", "user_id": "u", "consumer_type": "INSTANCE"}
    api.put(f"/allocations/{consumer}", json={"allocations": {root: {"resources": {"VCPU": 1, "VGPU": 1}}},
                                              "consumer_generation": None, **owner})
    r = api.post("/reshaper", json={
        "inventories": {
            root: {"resource_provider_generation": 2, "inventories": {"VCPU": {"total": 4}}},
            child: {"resource_provider_generation": 0, "inventories": {"VGPU": {"total": 2}}}},
        "allocations": {consumer: {"allocations": {root: {"resources": {"VCPU": 1}},
                                                   child: {"resources": {"VGPU": 1}}},
                                   "consumer_generation": 1, **owner}}})
    assert r.status_code == 204, r.text
    got = api.get(f"/allocations/{consumer}").json()["allocations"]
    assert got[child]["resources"] == {"VGPU": 1} and got[root]["resources"] == {"VCPU": 1}


def test_openstacksdk_speaks_to_placement(cloud: Cloud) -> None:
    import openstack.connection

    conn = openstack.connection.Connection(
        auth_url=cloud.auth_url, username="admin", password=cloud.admin_password, project_name="admin",
        user_domain_name="Default", project_domain_name="Default", region_name="RegionOne")
    try:
        name = f"sdk-{uid()}"
        rp = conn.placement.create_resource_provider(name=name)
        assert rp.id and rp.generation == 0
        assert name in {p.name for p in conn.placement.resource_providers()}
        rp = conn.placement.update_resource_provider(rp, name=name + "-x")
        assert conn.placement.get_resource_provider(rp.id).name == name + "-x"
        inv = conn.placement.create_resource_provider_inventory(rp, resource_class="VCPU", total=8)
        assert inv.total == 8
        assert [i.resource_class for i in conn.placement.resource_provider_inventories(rp)] == ["VCPU"]
        assert "HW_CPU_X86_AVX" in {t.name for t in conn.placement.traits()}
        conn.placement.delete_resource_provider_inventory(inv, resource_provider=rp)
        conn.placement.delete_resource_provider(rp)
    finally:
        conn.close()
