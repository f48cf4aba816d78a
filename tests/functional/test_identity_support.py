"""What the identity acceptance tests (test_identity_*.py) share: request
bodies, and fresh projects and users made over plain HTTP, which is much
quicker than the CLI for setting a test up. There are no tests here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.functional.cloud import Cloud


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def password_auth(user: str, password: str, project: str | None = None, domain: str = "Default",
                  scope: Any = None) -> dict[str, Any]:
    """A ``POST /v3/auth/tokens`` body for a user (and project) named in ``domain``."""
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"name": domain}, "password": password}}}}
    if project is not None:
        auth["scope"] = {"project": {"name": project, "domain": {"name": domain}}}
    elif scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


def issue(cloud: Cloud, body: dict[str, Any]) -> str:
    r = httpx.post(cloud.auth_url + "/auth/tokens?nocatalog", json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def client(cloud: Cloud, token: str | None = None) -> httpx.Client:
    headers = {"X-Auth-Token": token} if token else {}
    return httpx.Client(base_url=cloud.auth_url, headers=headers, timeout=30)


def admin_client(cloud: Cloud) -> httpx.Client:
    """A client carrying a project-scoped admin token."""
    return client(cloud, issue(cloud, password_auth("admin", cloud.admin_password, "admin")))


@dataclass
class Member:
    user_id: str
    name: str
    password: str
    project_id: str
    project: str


def role_id(admin: httpx.Client, name: str) -> str:
    r = admin.get("/roles", params={"name": name})
    assert r.status_code == 200, r.text
    (role,) = r.json()["roles"]
    return str(role["id"])


def new_project(admin: httpx.Client, domain_id: str = "default") -> tuple[str, str]:
    name = unique("proj")
    r = admin.post("/projects", json={"project": {"name": name, "domain_id": domain_id}})
    assert r.status_code == 201, r.text
    return r.json()["project"]["id"], name


def new_user(admin: httpx.Client, domain_id: str = "default", **extra: Any) -> tuple[str, str, str]:
    name, password = unique("user"), uuid.uuid4().hex
    r = admin.post("/users", json={"user": {"name": name, "password": password, "domain_id": domain_id,
                                            **extra}})
    assert r.status_code == 201, r.text
    return r.json()["user"]["id"], name, password


def grant(admin: httpx.Client, project_id: str, user_id: str, role: str) -> None:
    r = admin.put(f"/projects/{project_id}/users/{user_id}/roles/{role_id(admin, role)}")
    assert r.status_code == 204, r.text


def new_member(admin: httpx.Client, role: str = "member", domain_id: str = "default") -> Member:
    """A fresh project and a user holding ``role`` on it (their default project)."""
    project_id, project = new_project(admin, domain_id)
    user_id, name, password = new_user(admin, domain_id, default_project_id=project_id)
    grant(admin, project_id, user_id, role)
    return Member(user_id, name, password, project_id, project)
