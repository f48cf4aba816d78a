"""Console tokens, as Nova's console_auth_tokens: the API issues one per
console request, the proxy uses it for one connection. Only a SHA-256 of
the token is stored, and using it deletes its row in the same transaction
that finds it, so of two connections with one token only one gets through.
Expired rows are refused, and swept whenever a token is issued."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, select

from loom.db.engine import Database
from loom.db.models import ConsoleAuthToken
from loom.errors import Unauthorized
from loom.virt.driver import ConsoleEndpoint

# The console types a token may be for, and the protocol each speaks.
PROTOCOLS = {"novnc": "vnc", "serial": "serial"}


class TokenRefused(Unauthorized):
    """The console token is unknown, used already or expired."""


@dataclass(frozen=True)
class ConsoleTarget:
    """What a used token lets its holder reach."""

    console_type: str
    instance_uuid: str
    host: str
    endpoint: ConsoleEndpoint


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(db: Database, *, console_type: str, instance_uuid: str, host: str, endpoint: ConsoleEndpoint,
                ttl: int, now: float | None = None) -> str:
    """A new token for ``endpoint`` on ``host``, valid ``ttl`` seconds."""
    if console_type not in PROTOCOLS:
        raise ValueError(f"unknown console type {console_type!r}")
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    async with db.session.begin() as session:
        await session.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.expires <= int(now)))
        session.add(ConsoleAuthToken(
            token_hash=_digest(token), console_type=console_type, instance_uuid=instance_uuid,
            host=endpoint.host or host, port=endpoint.port or None, internal_access_path=endpoint.path or None,
            expires=int(now + ttl)))
    return token


async def use(db: Database, token: str, now: float | None = None) -> ConsoleTarget:
    """Spend ``token``: what it leads to, or TokenRefused. A token is spent
    even when it turns out expired."""
    now = time.time() if now is None else now
    async with db.session.begin() as session:
        row = (await session.execute(
            select(ConsoleAuthToken).where(ConsoleAuthToken.token_hash == _digest(token)))).scalar_one_or_none()
        if row is None:
            raise TokenRefused("The console token is unknown or was used already.")
        deleted = await session.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.id == row.id))
        if deleted.rowcount != 1:  # type: ignore[attr-defined]
            raise TokenRefused("The console token is unknown or was used already.")
    if row.expires <= now:
        raise TokenRefused("The console token has expired.")
    endpoint = ConsoleEndpoint(PROTOCOLS[row.console_type], path=row.internal_access_path or "", host=row.host,
                               port=row.port or 0)
    return ConsoleTarget(row.console_type, row.instance_uuid, row.host, endpoint)

