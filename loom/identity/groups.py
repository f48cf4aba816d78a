"""Groups of users; roles given to a group apply to its members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.helpers import apply_updates, flush_or_conflict, get_or_404
from loom.db.models import Assignment, Group, User, UserGroup
from loom.errors import NotFound
from loom.identity import domains, revocations
from loom.identity.common import filter_by


async def get(session: AsyncSession, group_id: str) -> Group:
    return await get_or_404(session, Group, group_id, "group")


async def list_(session: AsyncSession, filters: dict[str, Any]) -> list[Group]:
    query = filter_by(select(Group).order_by(Group.name), Group, filters, ("name", "domain_id"))
    return list(await session.scalars(query))


async def create(session: AsyncSession, values: dict[str, Any]) -> Group:
    await domains.get(session, values["domain_id"])
    group = Group(**values)
    session.add(group)
    await flush_or_conflict(
        session, f"Conflict occurred attempting to store group - Duplicate entry found with name "
        f"{values.get('name')} at domain ID {values['domain_id']}.")
    return group


async def update(session: AsyncSession, group_id: str, values: dict[str, Any]) -> Group:
    group = await get(session, group_id)
    apply_updates(group, values, {"name", "description", "extra"})
    await flush_or_conflict(
        session, f"Conflict occurred attempting to update group - Duplicate entry found with name "
        f"{group.name} at domain ID {group.domain_id}.")
    return group


async def delete(session: AsyncSession, group_id: str) -> None:
    group = await get(session, group_id)
    for user_id in await member_ids(session, group_id):
        await revocations.add(session, user_id=user_id)
    await session.execute(sql_delete(Assignment).where(Assignment.actor_id == group_id))
    await session.execute(sql_delete(UserGroup).where(UserGroup.group_id == group_id))
    await session.delete(group)


async def member_ids(session: AsyncSession, group_id: str) -> list[str]:
    return list(await session.scalars(select(UserGroup.user_id).where(UserGroup.group_id == group_id)))


async def members(session: AsyncSession, group_id: str) -> list[User]:
    await get(session, group_id)
    query = select(User).join(UserGroup, UserGroup.user_id == User.id).where(
        UserGroup.group_id == group_id).order_by(User.name)
    return list(await session.scalars(query))


async def groups_of(session: AsyncSession, user_id: str) -> list[Group]:
    query = select(Group).join(UserGroup, UserGroup.group_id == Group.id).where(
        UserGroup.user_id == user_id).order_by(Group.name)
    return list(await session.scalars(query))


async def add_member(session: AsyncSession, group_id: str, user_id: str) -> None:
    await get(session, group_id)
    await get_or_404(session, User, user_id, "user")
    if await session.get(UserGroup, (user_id, group_id)) is None:
        session.add(UserGroup(user_id=user_id, group_id=group_id))


async def is_member(session: AsyncSession, group_id: str, user_id: str) -> None:
    await get(session, group_id)
    await get_or_404(session, User, user_id, "user")
    if await session.get(UserGroup, (user_id, group_id)) is None:
        raise NotFound(f"User {user_id} is not a member of group {group_id}.")


async def remove_member(session: AsyncSession, group_id: str, user_id: str) -> None:
    await is_member(session, group_id, user_id)
    await session.execute(sql_delete(UserGroup).where(
        UserGroup.group_id == group_id, UserGroup.user_id == user_id))
    # Roles that came through the group go with it.
    await revocations.add(session, user_id=user_id)
