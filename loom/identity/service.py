"""The identity service as the rest of Loom uses it: issue, validate and
revoke tokens. The API process holds one; in the embedded mode every
other service reaches identity through it in-process."""

from __future__ import annotations

from typing import Any

from loom.config import Settings
from loom.context import RequestContext
from loom.db.engine import Database
from loom.identity import auth
from loom.identity.auth import TokenInfo
from loom.identity.keys import KeyRepository
from loom.identity.passwords import hash_password
from loom.identity.tokens import TokenPayload, TokenProvider


class IdentityService:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.keys = KeyRepository(settings.key_dir, max_active_keys=settings.identity.max_active_keys)
        self.keys.setup()
        self.tokens = TokenProvider(self.keys)

    async def hash(self, secret: str) -> str:
        return await hash_password(secret, self.settings.identity.password_hash_rounds)

    async def issue(self, auth_body: dict[str, Any]) -> tuple[str, TokenInfo]:
        async with self.db.session() as session:
            payload = await auth.authenticate(
                session, auth_body, decode=self.tokens.decode,
                lifetime=self.settings.identity.token_expiration,
                rounds=self.settings.identity.password_hash_rounds)
            info = await auth.validate(session, payload, check_revoked=False)
        return self.tokens.issue(payload), info

    async def validate(self, token: str) -> TokenInfo:
        payload = self.tokens.decode(token)
        async with self.db.session() as session:
            return await auth.validate(session, payload)

    async def revoke(self, payload: TokenPayload) -> None:
        async with self.db.session.begin() as session:
            await auth.revoke(session, payload)


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
