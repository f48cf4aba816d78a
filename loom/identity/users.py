"""Users and their passwords."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.helpers import apply_updates, flush_or_conflict, get_or_404
from loom.db.models import Assignment, User
from loom.errors import NotFound
from loom.identity import domains, revocations
from loom.identity.common import filter_by
from loom.timeutils import utcnow


async def get(session: AsyncSession, user_id: str) -> User:
    return await get_or_404(session, User, user_id, "user")


async def get_by_name(session: AsyncSession, name: str, domain_id: str) -> User:
    row = await session.scalar(select(User).where(User.name == name, User.domain_id == domain_id))
    if row is None:
        raise NotFound(f"Could not find user: {name}.")
    return row


async def find(session: AsyncSession, ref: dict[str, Any]) -> User:
    """A user named by id, or by name with its domain, in a request."""
    if ref.get("id"):
        return await get(session, ref["id"])
    if ref.get("name") and isinstance(ref.get("domain"), dict):
        domain = await domains.find(session, ref["domain"])
        return await get_by_name(session, ref["name"], domain.id)
    raise NotFound("A user must be given by id, or by name and domain.")


async def list_(session: AsyncSession, filters: dict[str, Any]) -> list[User]:
    query = filter_by(select(User).order_by(User.name), User, filters, ("name", "domain_id", "enabled"))
    return list(await session.scalars(query))


async def create(session: AsyncSession, values: dict[str, Any], password_hash: str | None) -> User:
    await domains.get(session, values["domain_id"])
    user = User(**values, password_hash=password_hash,
                password_created_at=utcnow() if password_hash else None)
    session.add(user)
    await flush_or_conflict(
        session, f"Conflict occurred attempting to store user - Duplicate entry found with name "
        f"{values.get('name')} at domain ID {values['domain_id']}.")
    return user


async def update(session: AsyncSession, user_id: str, values: dict[str, Any],
                 password_hash: str | None = None) -> User:
    user = await get(session, user_id)
    was_enabled = user.enabled
    apply_updates(user, values, {"name", "description", "enabled", "default_project_id", "options", "extra"})
    if password_hash is not None:
        user.password_hash = password_hash
        user.password_created_at = utcnow()
    if (was_enabled and not user.enabled) or password_hash is not None:
        await revocations.add(session, user_id=user_id)
    await flush_or_conflict(
        session, f"Conflict occurred attempting to update user - Duplicate entry found with name "
        f"{user.name} at domain ID {user.domain_id}.")
    return user


async def delete(session: AsyncSession, user_id: str) -> None:
    user = await get(session, user_id)
    await session.execute(sql_delete(Assignment).where(Assignment.actor_id == user_id))
    await revocations.add(session, user_id=user_id)
    await session.delete(user)
