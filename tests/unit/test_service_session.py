"""The service user's token: cached, renewed before it expires, renewed
and the request sent again when it is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from loom.identity import session as session_module
from loom.identity.session import ServiceSession, TokenAuth

LIFETIME = 3600


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Identity:
    """An Identity API that issues numbered tokens and an image API that
    accepts only the newest one."""

    def __init__(self) -> None:
        self.issued = 0
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/tokens"):
            self.issued += 1
            issued = datetime.now(UTC)
            body: dict[str, Any] = {"token": {
                "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "expires_at": (issued + timedelta(seconds=LIFETIME)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "catalog": [{"type": "image", "endpoints": [
                    {"interface": "internal", "region_id": "RegionOne", "url": "http://internal/image"},
                    {"interface": "public", "region_id": "RegionOne", "url": "http://cloud/image/"}]}]}}
            return httpx.Response(201, json=body, headers={"X-Subject-Token": f"token-{self.issued}"})
        token = request.headers.get("X-Auth-Token", "")
        self.seen.append(token)
        if token != f"token-{self.issued}":
            return httpx.Response(401, json={"message": "expired"})
        return httpx.Response(200, json={"ok": True})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(session_module, "_now", c)
    return c


def make(identity: Identity, renew_before: float = 300) -> ServiceSession:
    return ServiceSession("http://cloud/identity/v3", "loom", "secret", "service", renew_before=renew_before,
                          transport=httpx.MockTransport(identity))


async def test_the_token_is_cached_then_renewed_before_it_expires(clock: Clock) -> None:
    identity = Identity()
    s = make(identity)
    assert await s.token() == "token-1"
    clock.now += LIFETIME - 301
    assert await s.token() == "token-1"
    assert identity.issued == 1
    clock.now += 2  # within renew_before of the expiry
    assert await s.token() == "token-2"
    await s.close()


async def test_renewal_comes_at_half_the_lifetime_at_the_latest(clock: Clock) -> None:
    identity = Identity()
    s = make(identity, renew_before=10 * LIFETIME)
    await s.token()
    clock.now += LIFETIME / 2 - 1
    assert await s.token() == "token-1"
    clock.now += 2
    assert await s.token() == "token-2"
    await s.close()


async def test_the_catalog_gives_the_public_endpoint() -> None:
    s = make(Identity())
    assert await s.endpoint("image") == "http://cloud/image"
    with pytest.raises(Exception, match="no public compute endpoint"):
        await s.endpoint("compute")
    await s.close()


async def test_a_refused_token_is_renewed_and_the_request_sent_again(clock: Clock) -> None:
    identity = Identity()
    s = make(identity)
    async with httpx.AsyncClient(auth=TokenAuth(s), transport=httpx.MockTransport(identity)) as http:
        assert (await http.get("http://cloud/image/v2/images")).status_code == 200
        identity.issued += 1  # token-1 is no longer accepted (keys rotated, say)
        r = await http.get("http://cloud/image/v2/images")
    assert r.status_code == 200
    assert identity.seen == ["token-1", "token-1", "token-3"]
    await s.close()
