"""What the identity API refuses, and how: 401s that tell nothing about
which check failed, 403s naming the policy rule, and Keystone's error
format on the wire."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from loom.timeutils import utcnow
from tests.functional.cloud import Cloud
from tests.functional.test_identity_support import (
    admin_client,
    client,
    issue,
    new_member,
    new_user,
    password_auth,
    role_id,
    unique,
)

AUTH_FAILED = "The request you have made requires authentication."


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_client(cloud) as c:
        yield c


def parallel_cli(cloud: Cloud, env: dict[str, str], *commands: tuple[str, ...]) -> list[Any]:
    """Run several CLI commands at once (each is a separate process)."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: cloud.openstack(*args, env=env, check=False), commands))


def assert_error(r: httpx.Response, status: int, title: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) == {"code", "title", "message"}
    assert error["code"] == status and error["title"] == title
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


def assert_unauthorized(cloud: Cloud, r: httpx.Response) -> dict[str, Any]:
    error = assert_error(r, 401, "Unauthorized")
    assert r.headers["WWW-Authenticate"] == f'Keystone uri="{cloud.url}/identity"'
    return error


def without_request_id(text: str) -> str:
    return re.sub(r"req-[0-9a-f-]+", "req-X", text)


def test_wrong_password_and_unknown_user_look_the_same(cloud: Cloud, admin: httpx.Client) -> None:
    _, name, password = new_user(admin)
    with client(cloud) as http:
        assert http.post("/auth/tokens", json=password_auth(name, password, scope="unscoped")).status_code == 201
        wrong = http.post("/auth/tokens", json=password_auth(name, password + "x"))
        unknown = http.post("/auth/tokens", json=password_auth(unique("nobody"), password))
        by_id = http.post("/auth/tokens", json={"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"id": "0" * 32, "password": password}}}}})
    errors = [assert_unauthorized(cloud, r) for r in (wrong, unknown, by_id)]
    assert errors[0] == errors[1] == errors[2] == {"code": 401, "title": "Unauthorized", "message": AUTH_FAILED}
    assert name not in wrong.text

    # The CLI shows the same message for both.
    bad, nobody = parallel_cli(cloud, cloud.env(name, password + "x", None),
                               ("token", "issue"), ("--os-username", unique("nobody"), "token", "issue"))
    assert bad.returncode != 0 and nobody.returncode != 0
    assert "HTTP 401" in bad.stderr and AUTH_FAILED in bad.stderr
    assert without_request_id(bad.stderr) == without_request_id(nobody.stderr)


def test_disabled_user_cannot_log_in(cloud: Cloud, admin: httpx.Client) -> None:
    member = new_member(admin)
    body = password_auth(member.name, member.password, member.project)
    before = issue(cloud, body)
    r = admin.patch(f"/users/{member.user_id}", json={"user": {"enabled": False}})
    assert r.status_code == 200 and r.json()["user"]["enabled"] is False
    with client(cloud) as http:
        error = assert_unauthorized(cloud, http.post("/auth/tokens", json=body))
        assert error["message"] == AUTH_FAILED
        # A token issued before the user was disabled stops working.
        assert_unauthorized(cloud, http.get("/auth/projects", headers={"X-Auth-Token": before}))
    assert admin.get("/auth/tokens", headers={"X-Subject-Token": before}).status_code == 404


def test_expired_token(cloud: Cloud, admin: httpx.Client) -> None:
    member = new_member(admin)
    valid = issue(cloud, password_auth(member.name, member.password, member.project))
    # Tokens the cloud's own provider signs, with times of our choosing.
    tokens = cloud.runner.api.config.app.state.deps.identity.tokens
    payload = tokens.decode(valid)
    now = utcnow()
    expired = tokens.issue(dataclasses.replace(payload, issued_at=now - dt.timedelta(hours=2),
                                               expires_at=now - dt.timedelta(seconds=1)))
    lifetime = dt.timedelta(seconds=2)
    short = tokens.issue(dataclasses.replace(payload, issued_at=now, expires_at=now + lifetime))
    with client(cloud) as http:
        assert http.get("/auth/projects", headers={"X-Auth-Token": short}).status_code == 200
        assert admin.get("/auth/tokens", headers={"X-Subject-Token": short}).status_code == 200

        assert_error(admin.get("/auth/tokens", headers={"X-Subject-Token": expired}), 404, "Not Found")
        assert admin.head("/auth/tokens", headers={"X-Subject-Token": expired}).status_code == 404
        error = assert_unauthorized(cloud, http.get("/auth/projects", headers={"X-Auth-Token": expired}))
        assert error["message"] == AUTH_FAILED
        rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": expired}}}}
        assert_unauthorized(cloud, http.post("/auth/tokens", json=rescope))

        time.sleep(max(0.0, (now + lifetime - utcnow()).total_seconds()) + 0.05)
        assert_unauthorized(cloud, http.get("/auth/projects", headers={"X-Auth-Token": short}))
        assert admin.get("/auth/tokens", headers={"X-Subject-Token": short}).status_code == 404


def test_revoked_token(cloud: Cloud, admin: httpx.Client) -> None:
    member = new_member(admin)
    token = issue(cloud, password_auth(member.name, member.password, member.project))
    with client(cloud, token) as http:
        assert http.get(f"/users/{member.user_id}").status_code == 200
        r = http.delete("/auth/tokens", headers={"X-Subject-Token": token})  # revoke one's own token
        assert r.status_code == 204, r.text
        assert_unauthorized(cloud, http.get(f"/users/{member.user_id}"))
        rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}
        assert_unauthorized(cloud, http.post("/auth/tokens", json=rescope))


def test_token_of_a_deleted_project(cloud: Cloud, admin: httpx.Client) -> None:
    member = new_member(admin)
    token = issue(cloud, password_auth(member.name, member.password, member.project))
    with client(cloud, token) as http:
        assert http.get(f"/projects/{member.project_id}").status_code == 200
        assert admin.delete(f"/projects/{member.project_id}").status_code == 204
        assert_unauthorized(cloud, http.get(f"/users/{member.user_id}"))
        assert_unauthorized(cloud, http.get(f"/projects/{member.project_id}"))
    assert admin.get("/auth/tokens", headers={"X-Subject-Token": token}).status_code == 404


def _assert_policy_refused(proc: subprocess.CompletedProcess[str], rule: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "403" in proc.stderr, proc.stderr
    assert f"Policy doesn't allow identity:{rule} to be performed." in proc.stderr


def test_member_cannot_do_admin_operations(cloud: Cloud, admin: httpx.Client) -> None:
    member = new_member(admin, "member")
    env = cloud.env(member.name, member.password, member.project)
    project, user, role, domain = unique("proj"), unique("user"), unique("role"), unique("dom")
    results = parallel_cli(cloud, env, ("project", "create", project),
                           ("user", "create", "--password", "x", user),
                           ("role", "create", role), ("domain", "create", domain))
    for proc, rule in zip(results, ("create_project", "create_user", "create_role", "create_domain"),
                          strict=True):
        _assert_policy_refused(proc, rule)
    # Nothing was made.
    for path, key, name in (("/projects", "projects", project), ("/users", "users", user),
                            ("/roles", "roles", role), ("/domains", "domains", domain)):
        assert admin.get(path, params={"name": name}).json()[key] == []


def test_reader_cannot_write(cloud: Cloud, admin: httpx.Client) -> None:
    reader = new_member(admin, "reader")
    env = cloud.env(reader.name, reader.password, reader.project)
    set_project, create_group = parallel_cli(
        cloud, env, ("project", "set", "--description", "changed", reader.project_id),
        ("group", "create", unique("group")))
    _assert_policy_refused(set_project, "update_project")
    _assert_policy_refused(create_group, "create_group")
    assert admin.get(f"/projects/{reader.project_id}").json()["project"]["description"] == ""
    # Reading is allowed.
    token = issue(cloud, password_auth(reader.name, reader.password, reader.project))
    with client(cloud, token) as http:
        assert http.get(f"/projects/{reader.project_id}").status_code == 200
        r = http.patch(f"/users/{reader.user_id}", json={"user": {"description": "me"}})
        assert_error(r, 403, "Forbidden")
        assert r.json()["error"]["message"] == "Policy doesn't allow identity:update_user to be performed."
        # Nor give oneself a better role. (Not through the CLI: its SDK-based
        # `role add` exits 0 even when the server refuses with 403.)
        r = http.put(f"/projects/{reader.project_id}/users/{reader.user_id}/roles/{role_id(admin, 'member')}")
        assert_error(r, 403, "Forbidden")
        assert r.json()["error"]["message"] == "Policy doesn't allow identity:create_grant to be performed."
    roles = admin.get(f"/projects/{reader.project_id}/users/{reader.user_id}/roles").json()["roles"]
    assert [role["name"] for role in roles] == ["reader"]


def test_a_user_cannot_see_another_project(cloud: Cloud, admin: httpx.Client) -> None:
    member = new_member(admin)
    other = new_member(admin)
    proc = cloud.openstack("project", "show", other.project_id,
                           env=cloud.env(member.name, member.password, member.project), check=False)
    assert proc.returncode != 0
    assert "403" in proc.stderr, proc.stderr
    token = issue(cloud, password_auth(member.name, member.password, member.project))
    with client(cloud, token) as http:
        assert http.get(f"/projects/{member.project_id}").status_code == 200
        r = http.get(f"/projects/{other.project_id}")
        assert_error(r, 403, "Forbidden")
        assert r.json()["error"]["message"] == "Policy doesn't allow identity:get_project to be performed."
        # Nor log in to it.
        scoped = password_auth(member.name, member.password, other.project)
        assert_unauthorized(cloud, http.post("/auth/tokens", json=scoped))


def test_keystone_error_format(cloud: Cloud, admin: httpx.Client) -> None:
    error = assert_error(admin.get(f"/users/{'f' * 32}"), 404, "Not Found")
    assert "f" * 32 in error["message"]

    _, name, _ = new_user(admin)
    error = assert_error(admin.post("/users", json={"user": {"name": name}}), 409, "Conflict")
    assert name in error["message"]

    r = admin.post("/users", content=b'{"user": {"name": ', headers={"Content-Type": "application/json"})
    assert_error(r, 400, "Bad Request")

    error = assert_error(admin.post("/users", json={"user": {"password": "x"}}), 400, "Bad Request")
    assert "user.name" in error["message"]
    error = assert_error(admin.post("/projects", json={"project": {"name": ""}}), 400, "Bad Request")
    assert "project.name" in error["message"]

    with client(cloud) as http:
        r = http.post("/auth/tokens", json=password_auth("admin", cloud.admin_password + "x"))
        assert assert_unauthorized(cloud, r)["message"] == AUTH_FAILED
        # No token at all, and a token that is not one.
        assert_unauthorized(cloud, http.get("/users"))
        assert_unauthorized(cloud, http.get("/users", headers={"X-Auth-Token": "not-a-token"}))


def _restricted_credential(cloud: Cloud, admin: httpx.Client) -> tuple[str, httpx.Client, str]:
    """A member's user id, a client with a token from one of their
    (restricted) application credentials, and the id of another one."""
    member = new_member(admin)
    token = issue(cloud, password_auth(member.name, member.password, member.project))
    creds = []
    with client(cloud, token) as http:
        for _ in range(2):
            r = http.post(f"/users/{member.user_id}/application_credentials",
                          json={"application_credential": {"name": unique("cred")}})
            assert r.status_code == 201, r.text
            creds.append(r.json()["application_credential"])
    assert creds[0]["unrestricted"] is False
    cred_token = issue(cloud, {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": creds[0]["id"], "secret": creds[0]["secret"]}}}})
    return member.user_id, client(cloud, cred_token), creds[1]["id"]


def test_restricted_application_credential_cannot_create_credentials(cloud: Cloud, admin: httpx.Client) -> None:
    user_id, http, _ = _restricted_credential(cloud, admin)
    with http:
        r = http.post(f"/users/{user_id}/application_credentials",
                      json={"application_credential": {"name": unique("cred")}})
        assert_error(r, 403, "Forbidden")
        # Nor get another token with the token method.
        rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": http.headers["X-Auth-Token"]}}}}
        assert_error(http.post("/auth/tokens", json=rescope), 403, "Forbidden")


def test_restricted_application_credential_cannot_delete_credentials(cloud: Cloud, admin: httpx.Client) -> None:
    user_id, http, other_id = _restricted_credential(cloud, admin)
    with http:
        assert_error(http.delete(f"/users/{user_id}/application_credentials/{other_id}"), 403, "Forbidden")
    assert admin.get(f"/users/{user_id}/application_credentials/{other_id}").status_code == 200
