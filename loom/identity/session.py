"""A service user's session with the Identity API, for processes without
the database: one project-scoped token, cached and renewed before it
expires, and the catalog that came with it. Light on imports (httpx only):
compute hosts use it."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx

from loom.config import Settings
from loom.errors import LoomError, Unauthorized


def _now() -> float:
    return time.monotonic()


class ServiceSession:
    def __init__(self, auth_url: str, username: str, password: str, project_name: str, *,
                 user_domain_name: str = "Default", project_domain_name: str = "Default",
                 region: str = "RegionOne", renew_before: float = 300.0, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.auth_url = auth_url.rstrip("/")
        self.region = region
        self.renew_before = renew_before
        self._body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": username, "password": password, "domain": {"name": user_domain_name}}}},
            "scope": {"project": {"name": project_name, "domain": {"name": project_domain_name}}}}}
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0  # time.monotonic() after which the token is renewed
        self._catalog: list[dict[str, Any]] = []
        self.issued = 0  # tokens obtained so far

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceSession:
        conf = settings.service_user
        if not conf.password:
            raise LoomError("service_user.password is not set: a host without the database needs the "
                            "service user's credential to reach the Image API")
        return cls(conf.auth_url or settings.public_url + "/identity/v3", conf.username, conf.password,
                   conf.project_name, user_domain_name=conf.user_domain_name,
                   project_domain_name=conf.project_domain_name, region=settings.identity.region,
                   renew_before=conf.renew_before)

    async def token(self) -> str:
        """A valid token, from the cache unless it is close to expiring."""
        if self._token is not None and _now() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token is None or _now() >= self._renew_at:
                await self._authenticate()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Drop ``token`` (it was refused: revoked, or its keys rotated out)."""
        if self._token == token:
            self._token = None

    async def endpoint(self, service_type: str, interface: str = "public") -> str:
        """The catalog's URL of ``service_type`` in this session's region."""
        await self.token()
        for service in self._catalog:
            if service.get("type") != service_type:
                continue
            for ep in service.get("endpoints", []):
                if ep.get("interface") == interface and ep.get("region_id", self.region) in (self.region, None):
                    return str(ep["url"]).rstrip("/")
        raise LoomError(f"the catalog has no {interface} {service_type} endpoint in region {self.region}")

    async def close(self) -> None:
        await self._http.aclose()

    async def _authenticate(self) -> None:
        try:
            r = await self._http.post(self.auth_url + "/auth/tokens", json=self._body)
        except httpx.HTTPError as exc:
            raise LoomError(f"cannot reach the Identity API at {self.auth_url}: {exc}") from None
        if r.status_code == 401:
            raise Unauthorized(f"the Identity API at {self.auth_url} refused the service user's credential")
        if r.status_code != 201:
            raise LoomError(f"the Identity API at {self.auth_url} answered {r.status_code}: {r.text[:200]}")
        body = r.json()["token"]
        lifetime = (datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
                    - datetime.fromisoformat(body["issued_at"].replace("Z", "+00:00"))).total_seconds()
        # Renew ahead of the expiry, by renew_before but at most half the
        # lifetime; measured on this host's clock, not compared with the server's.
        self._renew_at = _now() + lifetime - min(self.renew_before, lifetime / 2)
        self._token = r.headers["X-Subject-Token"]
        self._catalog = list(body.get("catalog") or [])
        self.issued += 1


class TokenAuth(httpx.Auth):
    """Each request carries the session's token; a 401 renews it and sends
    the request again once, if its body can be sent again."""

    def __init__(self, session: ServiceSession) -> None:
        self.session = session

    async def async_auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def, override]
        token = await self.session.token()
        request.headers["X-Auth-Token"] = token
        response = yield request
        if response.status_code == 401 and isinstance(request.stream, httpx.ByteStream):
            self.session.invalidate(token)
            request.headers["X-Auth-Token"] = await self.session.token()
            yield request
