"""A client for a running Loom cloud, for the benchmarks: a keep-alive HTTP
connection with JSON in and out, tokens, and throwaway projects."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from common import progress

MICROVERSION = "compute 2.79"


class ApiError(RuntimeError):
    pass


class Api:
    """One keep-alive HTTP connection with a token: one per client thread."""

    def __init__(self, url: str, token: str | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def request(self, method: str, path: str, body: Any = None, ok: Sequence[int] = (200,),
                headers: dict[str, str] | None = None) -> tuple[int, Any, http.client.HTTPResponse]:
        hdrs = {"OpenStack-API-Version": MICROVERSION, **(headers or {})}
        if self.token:
            hdrs["X-Auth-Token"] = self.token
        data = None
        if body is not None:
            data = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once.
                self.conn.close()
                if attempt == 2:
                    raise
        if response.status not in ok:
            raise ApiError(f"{method} {path}: {response.status} {raw[:300]!r}")
        return response.status, (json.loads(raw) if raw else None), response

    def close(self) -> None:
        self.conn.close()


# -- identity ---------------------------------------------------------------


def password_auth(user: str, password: str, project: str) -> dict[str, Any]:
    return {"auth": {
        "identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}},
    }}


def issue(api: Api, body: dict[str, Any]) -> str:
    _, _, response = api.request("POST", "/identity/v3/auth/tokens?nocatalog", body, ok=(201,))
    return str(response.headers["X-Subject-Token"])


@dataclass
class Tenant:
    project_id: str
    token: str


class Cloud:
    """A running ``loom up``: the admin's token, the demo image, tenants."""

    def __init__(self, url: str, admin_password: str) -> None:
        self.url = url
        anon = Api(url)
        self.admin_token = issue(anon, password_auth("admin", admin_password, "admin"))
        anon.close()
        admin = Api(url, self.admin_token)
        _, body, _ = admin.request("GET", "/identity/v3/roles?name=member")
        self.member_role = body["roles"][0]["id"]
        _, body, _ = admin.request("GET", "/image/v2/images?name=demo")
        self.image = body["images"][0]["id"]
        admin.close()
        self.tenants: list[Tenant] = []
        self._local = threading.local()

    def api(self, token: str | None = None) -> Api:
        return Api(self.url, token)

    def ensure_tenants(self, count: int, workers: int = 8) -> list[Tenant]:
        """At least ``count`` projects, each with a member user and its token."""
        missing = count - len(self.tenants)
        if missing > 0:
            progress(f"  creating {missing} projects with a member user each")
            start = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                self.tenants += list(pool.map(lambda _: self._new_tenant(), range(missing)))
            progress(f"  ... {time.perf_counter() - start:.1f} s")
        return self.tenants[:count]

    def _new_tenant(self) -> Tenant:
        api = getattr(self._local, "admin", None)
        if api is None:
            api = self._local.admin = Api(self.url, self.admin_token)
        suffix = uuid.uuid4().hex[:10]
        _, body, _ = api.request("POST", "/identity/v3/projects",
                                 {"project": {"name": f"bench-{suffix}", "domain_id": "default"}}, ok=(201,))
        project_id = body["project"]["id"]
        password = uuid.uuid4().hex
        _, body, _ = api.request("POST", "/identity/v3/users", {"user": {
            "name": f"bench-{suffix}", "password": password, "domain_id": "default",
            "default_project_id": project_id}}, ok=(201,))
        api.request("PUT", f"/identity/v3/projects/{project_id}/users/{body['user']['id']}/roles/"
                           f"{self.member_role}", ok=(204,))
        token = issue(api, password_auth(f"bench-{suffix}", password, f"bench-{suffix}"))
        return Tenant(project_id, token)
