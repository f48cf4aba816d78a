"""Token revocation events: a token is revoked when it was issued at or
before an event's ``issued_before`` and matches every field the event
sets. Events outlive every token they could match, then are purged."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.models import Revocation
from loom.identity.tokens import TokenPayload
from loom.timeutils import utcnow

_FIELDS = ("user_id", "project_id", "domain_id", "audit_id", "app_cred_id")


async def add(session: AsyncSession, **match: str | None) -> None:
    unknown = set(match) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown revocation fields {unknown}")
    now = utcnow()
    session.add(Revocation(issued_before=now, revoked_at=now, **match))


async def is_revoked(session: AsyncSession, token: TokenPayload) -> bool:
    """True if any event matches the token."""
    candidates = or_(
        Revocation.user_id == token.user_id,
        Revocation.audit_id == token.audit_ids[0],
        *([Revocation.project_id == token.project_id] if token.project_id else []),
        *([Revocation.domain_id == token.domain_id] if token.domain_id else []),
        *([Revocation.app_cred_id == token.app_cred_id] if token.app_cred_id else []),
    )
    rows = await session.scalars(
        select(Revocation).where(Revocation.issued_before >= token.issued_at, candidates))
    return any(_matches(event, token) for event in rows)


def _matches(event: Revocation, token: TokenPayload) -> bool:
    if event.user_id is not None and event.user_id != token.user_id:
        return False
    if event.project_id is not None and event.project_id != token.project_id:
        return False
    if event.domain_id is not None and event.domain_id != token.domain_id:
        return False
    # A revoked token takes only itself down, not tokens rescoped from it.
    if event.audit_id is not None and event.audit_id != token.audit_ids[0]:
        return False
    return event.app_cred_id is None or event.app_cred_id == token.app_cred_id


async def purge(session: AsyncSession, older_than: dt.timedelta) -> int:
    """Drop events no live token can match any more."""
    cutoff = utcnow() - older_than
    result = await session.execute(delete(Revocation).where(Revocation.revoked_at < cutoff))
    return result.rowcount or 0
