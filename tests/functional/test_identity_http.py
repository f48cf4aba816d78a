"""The identity API over plain HTTP: version documents, the token
response as Keystone shapes it, and ``/v3/auth/*``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.functional.cloud import Cloud
from tests.functional.test_identity_support import (
    admin_client,
    new_member,
    new_project,
    new_user,
    password_auth,
    role_id,
    unique,
)


@pytest.fixture(scope="module")
def http(cloud: Cloud) -> Iterator[httpx.Client]:
    """An unauthenticated client of the identity API."""
    with httpx.Client(base_url=cloud.auth_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_client(cloud) as client:
        yield client


def test_version_documents(cloud: Cloud) -> None:
    root = httpx.get(cloud.url + "/identity/")
    assert root.status_code == 300
    values = root.json()["versions"]["values"]
    assert values and values[0]["id"].startswith("v3")
    assert values[0]["status"] == "stable"
    assert any(link["rel"] == "self" and link["href"].startswith(cloud.auth_url)
               for link in values[0]["links"])
    v3 = httpx.get(cloud.auth_url)
    assert v3.status_code == 200
    version = v3.json()["version"]
    assert version["id"].startswith("v3")
    assert {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"} in (
        version["media-types"])


def test_token_response_shape(cloud: Cloud, http: httpx.Client) -> None:
    r = http.post("/auth/tokens", json=password_auth("admin", cloud.admin_password, "admin"))
    assert r.status_code == 201, r.text
    assert r.headers["X-Subject-Token"]
    token = r.json()["token"]
    assert token["methods"] == ["password"]
    user = token["user"]
    assert user["name"] == "admin" and user["id"]
    assert user["domain"] == {"id": "default", "name": "Default"}
    project = token["project"]
    assert project["name"] == "admin" and project["id"]
    assert project["domain"] == {"id": "default", "name": "Default"}
    # admin implies manager, member and reader: the token lists them all.
    assert {"admin", "manager", "member", "reader"} <= {role["name"] for role in token["roles"]}
    assert all(role["id"] for role in token["roles"])
    assert token["expires_at"].endswith("Z") and token["issued_at"].endswith("Z")
    assert token["expires_at"] > token["issued_at"]
    assert isinstance(token["audit_ids"], list) and len(token["audit_ids"]) == 1
    identity = [entry for entry in token["catalog"] if entry["type"] == "identity"]
    assert identity and {e["interface"] for e in identity[0]["endpoints"]} == {"public", "internal", "admin"}
    assert all(e["url"].startswith(cloud.url) for e in identity[0]["endpoints"])

    r = http.post("/auth/tokens?nocatalog", json=password_auth("admin", cloud.admin_password, "admin"))
    assert r.status_code == 201, r.text
    assert "catalog" not in r.json()["token"]
    assert r.json()["token"]["roles"]


def test_unscoped_system_and_rescoped_tokens(cloud: Cloud, http: httpx.Client, admin: httpx.Client) -> None:
    member = new_member(admin)
    # No scope asked for: the default project (where the user has a role).
    r = http.post("/auth/tokens", json=password_auth(member.name, member.password))
    assert r.status_code == 201, r.text
    assert r.json()["token"]["project"]["id"] == member.project_id

    r = http.post("/auth/tokens", json=password_auth(member.name, member.password, scope="unscoped"))
    assert r.status_code == 201, r.text
    unscoped = r.json()["token"]
    assert "project" not in unscoped and "roles" not in unscoped and "catalog" not in unscoped

    # Rescope the unscoped token to the project with the token method.
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": r.headers["X-Subject-Token"]}},
                     "scope": {"project": {"id": member.project_id}}}}
    r2 = http.post("/auth/tokens", json=body)
    assert r2.status_code == 201, r2.text
    rescoped = r2.json()["token"]
    assert rescoped["project"]["id"] == member.project_id
    assert set(rescoped["methods"]) == {"password", "token"}
    assert {role["name"] for role in rescoped["roles"]} == {"member", "reader"}
    assert unscoped["audit_ids"][0] in rescoped["audit_ids"]
    # Revoking the first token leaves the one rescoped from it valid, as in Keystone.
    unscoped_id = r.headers["X-Subject-Token"]
    assert admin.delete("/auth/tokens", headers={"X-Subject-Token": unscoped_id}).status_code == 204
    assert admin.get("/auth/tokens", headers={"X-Subject-Token": unscoped_id}).status_code == 404
    rescoped_id = r2.headers["X-Subject-Token"]
    assert admin.get("/auth/tokens", headers={"X-Subject-Token": rescoped_id}).status_code == 200

    r = http.post("/auth/tokens", json=password_auth("admin", cloud.admin_password,
                                                     scope={"system": {"all": True}}))
    assert r.status_code == 201, r.text
    assert r.json()["token"]["system"] == {"all": True}
    assert "admin" in {role["name"] for role in r.json()["token"]["roles"]}


def test_validate_check_and_revoke(cloud: Cloud, http: httpx.Client, admin: httpx.Client) -> None:
    member = new_member(admin)
    r = http.post("/auth/tokens", json=password_auth(member.name, member.password, member.project))
    assert r.status_code == 201, r.text
    subject = r.headers["X-Subject-Token"]
    issued = r.json()["token"]

    got = admin.get("/auth/tokens", headers={"X-Subject-Token": subject})
    assert got.status_code == 200, got.text
    assert got.headers["X-Subject-Token"] == subject
    token = got.json()["token"]
    assert token["user"]["id"] == member.user_id
    assert token["project"]["id"] == member.project_id
    assert token["audit_ids"] == issued["audit_ids"]
    assert token["expires_at"] == issued["expires_at"]
    assert "catalog" in token
    assert "catalog" not in admin.get("/auth/tokens?nocatalog", headers={"X-Subject-Token": subject}).json()[
        "token"]

    # A user may validate their own token.
    own = http.get("/auth/tokens", headers={"X-Auth-Token": subject, "X-Subject-Token": subject})
    assert own.status_code == 200, own.text

    head = admin.head("/auth/tokens", headers={"X-Subject-Token": subject})
    assert head.status_code == 200 and head.content == b""

    gone = admin.delete("/auth/tokens", headers={"X-Subject-Token": subject})
    assert gone.status_code == 204, gone.text
    assert admin.get("/auth/tokens", headers={"X-Subject-Token": subject}).status_code == 404
    assert admin.head("/auth/tokens", headers={"X-Subject-Token": subject}).status_code == 404
    assert http.get("/auth/projects", headers={"X-Auth-Token": subject}).status_code == 401


def test_auth_projects_domains_catalog_system(cloud: Cloud, http: httpx.Client, admin: httpx.Client) -> None:
    projects = admin.get("/auth/projects")
    assert projects.status_code == 200, projects.text
    assert "admin" in {p["name"] for p in projects.json()["projects"]}
    assert admin.get("/auth/domains").json()["domains"] == []
    catalog = admin.get("/auth/catalog")
    assert catalog.status_code == 200, catalog.text
    assert "identity" in {entry["type"] for entry in catalog.json()["catalog"]}
    assert admin.get("/auth/system").json()["system"] == [{"all": True}]

    member = new_member(admin)
    r = http.post("/auth/tokens", json=password_auth(member.name, member.password, member.project))
    assert r.status_code == 201, r.text
    as_member = {"X-Auth-Token": r.headers["X-Subject-Token"]}
    projects = http.get("/auth/projects", headers=as_member)
    assert projects.status_code == 200, projects.text
    assert [(p["id"], p["name"]) for p in projects.json()["projects"]] == [(member.project_id, member.project)]
    assert http.get("/auth/domains", headers=as_member).json()["domains"] == []
    assert http.get("/auth/system", headers=as_member).json()["system"] == []
    assert http.get("/auth/catalog", headers=as_member).status_code == 200


def test_effective_assignment_of_a_group_links_to_the_group_grant(cloud: Cloud, admin: httpx.Client) -> None:
    project_id, _ = new_project(admin)
    user_id, _, _ = new_user(admin)
    r = admin.post("/groups", json={"group": {"name": unique("group")}})
    assert r.status_code == 201, r.text
    group_id = r.json()["group"]["id"]
    assert admin.put(f"/groups/{group_id}/users/{user_id}").status_code == 204
    member, reader = role_id(admin, "member"), role_id(admin, "reader")
    assert admin.put(f"/projects/{project_id}/groups/{group_id}/roles/{member}").status_code == 204

    r = admin.get("/role_assignments", params={"effective": "", "user.id": user_id,
                                               "scope.project.id": project_id})
    assert r.status_code == 200, r.text
    found = {a["role"]["id"]: a for a in r.json()["role_assignments"]}
    assert set(found) == {member, reader}
    base = cloud.auth_url
    grant_link = f"{base}/projects/{project_id}/groups/{group_id}/roles/{member}"
    for assignment in found.values():
        assert assignment["user"] == {"id": user_id} and "group" not in assignment
        assert assignment["scope"] == {"project": {"id": project_id}}
        assert assignment["links"]["assignment"] == grant_link
        assert assignment["links"]["membership"] == f"{base}/groups/{group_id}/users/{user_id}"
    assert found[reader]["links"]["prior_role"] == f"{base}/roles/{member}"


def test_effective_assignment_inherited_from_a_parent_project_links_to_it(
        cloud: Cloud, admin: httpx.Client) -> None:
    parent_id, _ = new_project(admin)
    r = admin.post("/projects", json={"project": {"name": unique("child"), "parent_id": parent_id}})
    assert r.status_code == 201, r.text
    child_id = r.json()["project"]["id"]
    user_id, _, _ = new_user(admin)
    member = role_id(admin, "member")
    path = f"/OS-INHERIT/projects/{parent_id}/users/{user_id}/roles/{member}/inherited_to_projects"
    assert admin.put(path).status_code == 204

    r = admin.get("/role_assignments", params={"effective": "", "user.id": user_id,
                                               "scope.project.id": child_id, "role.id": member})
    assert r.status_code == 200, r.text
    (assignment,) = r.json()["role_assignments"]
    assert assignment["scope"] == {"project": {"id": child_id}}
    assert assignment["links"]["assignment"] == cloud.auth_url + path
