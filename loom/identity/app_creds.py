"""Application credentials: a user's delegated, project-bound secret with
a subset of the user's roles."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.helpers import flush_or_conflict
from loom.db.models import AppCredential
from loom.errors import NotFound
from loom.identity import revocations


async def get(session: AsyncSession, user_id: str, cred_id: str) -> AppCredential:
    row = await session.get(AppCredential, cred_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"Could not find application credential: {cred_id}.")
    return row


async def get_any(session: AsyncSession, cred_id: str) -> AppCredential | None:
    return await session.get(AppCredential, cred_id)


async def get_by_name(session: AsyncSession, user_id: str, name: str) -> AppCredential | None:
    return await session.scalar(select(AppCredential).where(
        AppCredential.user_id == user_id, AppCredential.name == name))


async def list_(session: AsyncSession, user_id: str, filters: dict[str, Any]) -> list[AppCredential]:
    query = select(AppCredential).where(AppCredential.user_id == user_id).order_by(AppCredential.name)
    if filters.get("name"):
        query = query.where(AppCredential.name == filters["name"])
    return list(await session.scalars(query))


async def create(session: AsyncSession, *, user_id: str, project_id: str, name: str, secret_hash: str,
                 role_ids: list[str], description: str | None, expires_at: dt.datetime | None,
                 unrestricted: bool) -> AppCredential:
    cred = AppCredential(user_id=user_id, project_id=project_id, name=name, secret_hash=secret_hash,
                         roles=role_ids, description=description, expires_at=expires_at,
                         unrestricted=unrestricted)
    session.add(cred)
    await flush_or_conflict(session, f"Conflict occurred attempting to store application_credential - "
                            f"Duplicate entry found with name {name}.")
    return cred


async def delete(session: AsyncSession, user_id: str, cred_id: str) -> None:
    cred = await get(session, user_id, cred_id)
    await revocations.add(session, app_cred_id=cred_id)
    await session.delete(cred)
