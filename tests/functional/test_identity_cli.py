"""The identity API through the stock ``openstack`` CLI, as a user drives
it: tokens, the catalog, projects, users, passwords, roles and their
assignments, groups, application credentials and domains.

Setting up (a fresh project, a user with a role) goes over plain HTTP,
which is much quicker than a CLI call; what is under test goes through
the CLI."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.functional.cloud import Cloud
from tests.functional.test_identity_support import (
    admin_client,
    client,
    grant,
    issue,
    new_member,
    new_project,
    new_user,
    password_auth,
    unique,
)

AUTH_FAILED = "The request you have made requires authentication."
# What a plugin other than password must not see in the environment.
PASSWORD_VARIABLES = ("OS_USERNAME", "OS_PASSWORD", "OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME",
                      "OS_PROJECT_NAME")


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_client(cloud) as c:
        yield c


def bare_env(cloud: Cloud) -> dict[str, str]:
    env = cloud.env()
    for name in PASSWORD_VARIABLES:
        env.pop(name)
    return env


def with_token(cloud: Cloud, token: str, *args: str, check: bool = True) -> Any:
    return cloud.openstack("--os-auth-type", "token", "--os-token", token, *args, env=bare_env(cloud),
                           check=check)


def with_app_cred(cloud: Cloud, secret: str, *args: str, cred_id: str | None = None,
                  name: str | None = None, user: str | None = None, check: bool = True) -> Any:
    auth = ["--os-auth-type", "v3applicationcredential", "--os-application-credential-secret", secret]
    if cred_id is not None:
        auth += ["--os-application-credential-id", cred_id]
    else:
        assert name is not None and user is not None
        auth += ["--os-application-credential-name", name, "--os-username", user,
                 "--os-user-domain-name", "Default"]
    return cloud.openstack(*auth, *args, env=bare_env(cloud), check=check)


def assert_unauthorized(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "HTTP 401" in proc.stderr or "401" in proc.stderr, proc.stderr


def fails(cloud: Cloud, *args: str, env: dict[str, str] | None = None) -> str:
    proc = cloud.openstack(*args, env=env, check=False)
    assert proc.returncode != 0, proc.stdout
    return str(proc.stderr)


def test_token_issue_use_and_revoke(cloud: Cloud) -> None:
    token = cloud.openstack("token", "issue")
    assert token["id"] and token["user_id"] and token["project_id"]
    assert dt.datetime.fromisoformat(token["expires"].replace("Z", "+00:00")) > dt.datetime.now(dt.UTC)

    # The token authenticates the CLI by itself (it keeps its project scope).
    projects = with_token(cloud, token["id"], "project", "list", "-f", "json")
    assert "admin" in {p["Name"] for p in projects}

    cloud.openstack("token", "revoke", token["id"])
    assert_unauthorized(with_token(cloud, token["id"], "project", "list", check=False))


def test_catalog_list(cloud: Cloud) -> None:
    catalog = cloud.openstack("catalog", "list")
    (identity,) = [entry for entry in catalog if entry["Type"] == "identity"]
    assert identity["Name"] == "keystone"
    endpoints = identity["Endpoints"]
    assert sorted(e["interface"] for e in endpoints) == ["admin", "internal", "public"]
    assert all(e["url"].startswith(cloud.url) and e["region"] == "RegionOne" for e in endpoints)


def test_project_lifecycle(cloud: Cloud) -> None:
    name, renamed = unique("proj"), unique("proj")
    created = cloud.openstack("project", "create", "--description", "first", "--property", "colour=blue", name)
    assert created["name"] == name and created["enabled"] is True
    assert created["description"] == "first" and created["colour"] == "blue"
    assert created["domain_id"] == "default"
    project_id = created["id"]

    assert name in {p["Name"] for p in cloud.openstack("project", "list")}
    shown = cloud.openstack("project", "show", name)
    assert shown["id"] == project_id and shown["colour"] == "blue"

    cloud.openstack("project", "set", "--name", renamed, "--description", "second", "--disable",
                    "--property", "size=large", project_id)
    shown = cloud.openstack("project", "show", renamed)
    assert shown["id"] == project_id and shown["enabled"] is False and shown["description"] == "second"
    assert shown["colour"] == "blue" and shown["size"] == "large"

    cloud.openstack("project", "set", "--enable", project_id)
    assert cloud.openstack("project", "show", project_id)["enabled"] is True

    cloud.openstack("project", "delete", project_id)
    assert f"No Project found for {project_id}" in fails(cloud, "project", "show", project_id)


def test_user_lifecycle(cloud: Cloud, admin: httpx.Client) -> None:
    project_id, project = new_project(admin)
    name, renamed, password = unique("user"), unique("user"), uuid.uuid4().hex
    created = cloud.openstack("user", "create", "--password", password, "--project", project,
                              "--email", "first@example.org", name)
    assert created["name"] == name and created["enabled"] is True
    assert created["default_project_id"] == project_id and created["email"] == "first@example.org"
    assert created["domain_id"] == "default"
    user_id = created["id"]
    grant(admin, project_id, user_id, "member")

    listed = cloud.openstack("user", "list", "--domain", "default")
    assert {"ID": user_id, "Name": name} in listed
    assert "admin" in {u["Name"] for u in listed}

    cloud.openstack("user", "set", "--name", renamed, "--email", "second@example.org", "--disable", user_id)
    shown = cloud.openstack("user", "show", renamed)
    assert shown["id"] == user_id and shown["enabled"] is False and shown["email"] == "second@example.org"
    assert_unauthorized(cloud.openstack("token", "issue", env=cloud.env(renamed, password, project),
                                        check=False))

    cloud.openstack("user", "set", "--enable", user_id)
    token = cloud.openstack("token", "issue", env=cloud.env(renamed, password, project))
    assert token["user_id"] == user_id and token["project_id"] == project_id

    cloud.openstack("user", "delete", user_id)
    assert f"No User found for {user_id}" in fails(cloud, "user", "show", user_id)
    assert admin.get("/auth/tokens", headers={"X-Subject-Token": token["id"]}).status_code == 404


def test_user_changes_own_password(cloud: Cloud, admin: httpx.Client) -> None:
    member = new_member(admin)
    old_env = cloud.env(member.name, member.password, member.project)
    before = cloud.openstack("token", "issue", env=old_env)

    new_password = uuid.uuid4().hex
    cloud.openstack("user", "password", "set", "--original-password", member.password,
                    "--password", new_password, env=old_env)

    assert_unauthorized(cloud.openstack("token", "issue", env=old_env, check=False))
    after = cloud.openstack("token", "issue", env=cloud.env(member.name, new_password, member.project))
    assert after["user_id"] == member.user_id
    # The token issued before the change is revoked.
    assert_unauthorized(with_token(cloud, before["id"], "token", "issue", check=False))
    assert admin.get("/auth/tokens", headers={"X-Subject-Token": before["id"]}).status_code == 404
    assert admin.get("/auth/tokens", headers={"X-Subject-Token": after["id"]}).status_code == 200


def test_roles_and_assignments(cloud: Cloud, admin: httpx.Client) -> None:
    role = unique("role")
    created = cloud.openstack("role", "create", role)
    assert created["name"] == role and created["id"]
    assert role in {r["Name"] for r in cloud.openstack("role", "list")}
    assert cloud.openstack("role", "show", role)["id"] == created["id"]

    project_id, project = new_project(admin)
    user_id, user, _ = new_user(admin)
    cloud.openstack("role", "add", "--project", project, "--user", user, role)
    assignments = cloud.openstack("role", "assignment", "list", "--names", "--user", user,
                                  "--project", project)
    assert [(a["Role"], a["User"], a["Project"]) for a in assignments] == [
        (role, f"{user}@Default", f"{project}@Default")]
    everything = cloud.openstack("role", "assignment", "list", "--names")
    assert {"Role": "admin", "User": "admin@Default", "Group": "", "Project": "admin@Default", "Domain": "",
            "System": "", "Inherited": False} in everything
    assert (role, f"{user}@Default") in {(a["Role"], a["User"]) for a in everything}

    cloud.openstack("role", "remove", "--project", project_id, "--user", user_id, role)
    assert cloud.openstack("role", "assignment", "list", "--user", user_id, "--project", project_id) == []

    cloud.openstack("role", "delete", role)
    assert role not in {r["Name"] for r in cloud.openstack("role", "list")}


def test_groups_and_effective_assignments(cloud: Cloud, admin: httpx.Client) -> None:
    project_id, project = new_project(admin)
    user_id, user, _ = new_user(admin)
    group = unique("group")
    created = cloud.openstack("group", "create", "--description", "testers", group)
    assert created["name"] == group and created["domain_id"] == "default"
    group_id = created["id"]
    assert group in {g["Name"] for g in cloud.openstack("group", "list")}
    assert cloud.openstack("group", "show", group)["description"] == "testers"

    cloud.openstack("group", "add", "user", group, user)
    assert f"{user} in group {group}" in cloud.openstack("group", "contains", "user", group, user)
    assert [g["Name"] for g in cloud.openstack("group", "list", "--user", user)] == [group]

    cloud.openstack("role", "add", "--project", project, "--group", group, "member")
    direct = cloud.openstack("role", "assignment", "list", "--names", "--group", group)
    assert [(a["Role"], a["Group"], a["Project"]) for a in direct] == [
        ("member", f"{group}@Default", f"{project}@Default")]
    effective = cloud.openstack("role", "assignment", "list", "--effective", "--names", "--user", user,
                                "--project", project)
    # The group's member role, expanded to the user, and the reader role it implies.
    assert sorted((a["Role"], a["User"], a["Group"], a["Project"]) for a in effective) == [
        ("member", f"{user}@Default", "", f"{project}@Default"),
        ("reader", f"{user}@Default", "", f"{project}@Default"),
    ]

    cloud.openstack("group", "remove", "user", group, user)
    assert cloud.openstack("group", "list", "--user", user) == []
    assert cloud.openstack("role", "assignment", "list", "--effective", "--user", user_id,
                           "--project", project_id) == []

    cloud.openstack("group", "delete", group)
    assert group not in {g["Name"] for g in cloud.openstack("group", "list")}
    assert admin.get(f"/groups/{group_id}").status_code == 404


def test_application_credentials(cloud: Cloud, admin: httpx.Client) -> None:
    member = new_member(admin)
    env = cloud.env(member.name, member.password, member.project)
    plain_name, limited_name, secret = unique("cred"), unique("cred"), uuid.uuid4().hex

    plain = cloud.openstack("application", "credential", "create", plain_name, env=env)
    assert plain["Name"] == plain_name and plain["Secret"] and plain["Project ID"] == member.project_id
    # Without --role, the credential gets every role the user holds on the project.
    assert sorted(r["name"] for r in plain["Roles"]) == ["member", "reader"]
    assert plain["Expires At"] is None and plain["Unrestricted"] is False
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(microsecond=0, tzinfo=None)
    limited = cloud.openstack("application", "credential", "create", "--role", "reader", "--secret", secret,
                              "--expiration", expires.isoformat(), limited_name, env=env)
    assert limited["Secret"] == secret
    assert [r["name"] for r in limited["Roles"]] == ["reader"]
    assert limited["Expires At"].startswith(expires.isoformat())

    listed = cloud.openstack("application", "credential", "list", env=env)
    assert {c["Name"] for c in listed} == {plain_name, limited_name}
    shown = cloud.openstack("application", "credential", "show", limited_name, env=env)
    assert shown["ID"] == limited["ID"] and shown["Roles"] == limited["Roles"]
    assert "Secret" not in shown

    # Log in with the credential, by id and by name.
    token = with_app_cred(cloud, plain["Secret"], "token", "issue", "-f", "json", cred_id=plain["ID"])
    assert token["user_id"] == member.user_id and token["project_id"] == member.project_id
    by_name = with_app_cred(cloud, secret, "token", "issue", "-f", "json", name=limited_name, user=member.name)
    assert by_name["user_id"] == member.user_id and by_name["project_id"] == member.project_id
    got = admin.get("/auth/tokens", headers={"X-Subject-Token": by_name["id"]}).json()["token"]
    assert [r["name"] for r in got["roles"]] == ["reader"]
    assert got["application_credential"]["id"] == limited["ID"]

    with client(cloud, token["id"]) as http:
        assert http.get(f"/users/{member.user_id}").status_code == 200
        cloud.openstack("application", "credential", "delete", plain_name, env=env)
        # The deleted credential's tokens stop working, and it cannot log in.
        assert http.get(f"/users/{member.user_id}").status_code == 401
    assert_unauthorized(with_app_cred(cloud, plain["Secret"], "token", "issue", cred_id=plain["ID"],
                                      check=False))
    assert [c["Name"] for c in cloud.openstack("application", "credential", "list", env=env)] == [limited_name]


def test_domains(cloud: Cloud, admin: httpx.Client) -> None:
    assert "Default" in {d["Name"] for d in cloud.openstack("domain", "list")}
    name = unique("dom")
    domain = cloud.openstack("domain", "create", "--description", "for a test", name)
    assert domain["name"] == name and domain["enabled"] is True
    domain_id = domain["id"]

    member = new_member(admin, domain_id=domain_id)
    env = cloud.env(member.name, member.password, member.project, OS_USER_DOMAIN_NAME=name,
                    OS_PROJECT_DOMAIN_NAME=name)
    assert cloud.openstack("token", "issue", env=env)["project_id"] == member.project_id
    before = issue(cloud, password_auth(member.name, member.password, member.project, domain=name))
    assert {"ID": member.user_id, "Name": member.name} in cloud.openstack("user", "list", "--domain", name)

    cloud.openstack("domain", "set", "--disable", domain_id)
    assert cloud.openstack("domain", "show", name)["enabled"] is False
    # Users of a disabled domain cannot log in, and their tokens stop working.
    assert_unauthorized(cloud.openstack("token", "issue", env=env, check=False))
    assert admin.get("/auth/tokens", headers={"X-Subject-Token": before}).status_code == 404

    assert admin.delete(f"/users/{member.user_id}").status_code == 204
    assert admin.delete(f"/projects/{member.project_id}").status_code == 204
    cloud.openstack("domain", "delete", domain_id)
    assert name not in {d["Name"] for d in cloud.openstack("domain", "list")}
