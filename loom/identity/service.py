"""The identity service as the rest of Loom uses it: issue, validate and
revoke tokens. The API process holds one; in the embedded mode every
other service reaches identity through it in-process.

Validated tokens are cached. Any identity change made in this process
drops the cache at once and is announced on the bus, so other API
processes drop theirs too; a cached entry is also re-checked after
``identity.cache_time`` seconds in case an announcement was lost.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from loom.bus.rpc import Bus
from loom.bus.transport import Subscription
from loom.config import Settings
from loom.context import RequestContext
from loom.db.engine import Database
from loom.identity import auth
from loom.identity.auth import TokenInfo
from loom.identity.keys import KeyRepository
from loom.identity.passwords import hash_password
from loom.identity.reference import Reference
from loom.identity.tokens import TokenPayload, TokenProvider
from loom.timeutils import utcnow

LOG = logging.getLogger(__name__)
CHANGES_TOPIC = "identity-changes"
CACHE_SIZE = 10_000


class IdentityService:
    def __init__(self, settings: Settings, db: Database, bus: Bus | None = None) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.keys = KeyRepository(settings.key_dir, max_active_keys=settings.identity.max_active_keys)
        self.keys.setup()
        self.tokens = TokenProvider(self.keys)
        self.generation = 0
        self._cache: collections.OrderedDict[str, tuple[int, float, TokenInfo]] = collections.OrderedDict()
        self._subscription: Subscription | None = None
        self._reference: tuple[int, float, Reference] | None = None

    async def start(self) -> None:
        """Listen for identity changes made by other processes."""
        if self.bus is not None:
            self._subscription = await self.bus.transport.subscribe_fanout(CHANGES_TOPIC, self._on_change)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.cancel()
            self._subscription = None

    async def _on_change(self, body: bytes) -> None:
        self._drop_cache()

    def _drop_cache(self) -> None:
        self.generation += 1
        self._cache.clear()
        self._reference = None

    async def changed(self) -> None:
        """Call after every identity write: tokens must be checked afresh."""
        self._drop_cache()
        if self.bus is not None:
            try:
                await self.bus.transport.fanout(CHANGES_TOPIC, b"{}")
            except Exception as exc:  # the cache time still bounds staleness
                LOG.warning("could not announce an identity change: %s", exc)

    async def reference(self, session: AsyncSession) -> Reference:
        """Domains, roles and the catalog as of the current generation."""
        cached = self._reference
        if (cached is not None and cached[0] == self.generation
                and time.monotonic() - cached[1] < self.settings.identity.cache_time):
            return cached[2]
        generation = self.generation
        ref = await Reference.load(session)
        if generation == self.generation:
            self._reference = (generation, time.monotonic(), ref)
        return ref

    async def catalog(self) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            return (await self.reference(session)).catalog

    async def hash(self, secret: str) -> str:
        return await hash_password(secret, self.settings.identity.password_hash_rounds)

    async def issue(self, auth_body: dict[str, Any]) -> tuple[str, TokenInfo]:
        async with self.db.session() as session:
            info = await auth.authenticate(
                session, await self.reference(session), auth_body, decode=self.tokens.decode,
                lifetime=self.settings.identity.token_expiration,
                rounds=self.settings.identity.password_hash_rounds)
        token = self.tokens.issue(info.payload)
        self._remember(token, info)
        return token, info

    async def validate(self, token: str) -> TokenInfo:
        payload = self.tokens.decode(token)
        cached = self._cache.get(token)
        if cached is not None:
            generation, stamp, info = cached
            if generation == self.generation and time.monotonic() - stamp < self.settings.identity.cache_time:
                self._cache.move_to_end(token)
                return info
        generation = self.generation
        async with self.db.session() as session:
            info = await auth.validate(session, await self.reference(session), payload)
        if generation == self.generation:
            self._remember(token, info)
        return info

    def _remember(self, token: str, info: TokenInfo) -> None:
        if info.payload.expires_at <= utcnow():
            return
        self._cache[token] = (self.generation, time.monotonic(), info)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    async def revoke(self, payload: TokenPayload) -> None:
        async with self.db.session.begin() as session:
            await auth.revoke(session, payload)
        await self.changed()


def context_for(info: TokenInfo, request_id: str, global_request_id: str | None = None) -> RequestContext:
    """The request context a validated token gives a handler."""
    role_names = tuple(r.name.lower() for r in info.roles)
    return RequestContext(
        request_id=request_id,
        global_request_id=global_request_id,
        user_id=info.user.id,
        user_name=info.user.name,
        user_domain_id=info.user.domain_id,
        project_id=info.project.id if info.project else None,
        project_name=info.project.name if info.project else None,
        project_domain_id=info.project.domain_id if info.project else None,
        domain_id=info.domain.id if info.domain else None,
        system_scope=info.payload.system,
        roles=role_names,
        is_admin="admin" in role_names,
    )
