"""Roles, and the roles they imply (admin implies member implies reader)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.helpers import apply_updates, flush_or_conflict, get_or_404
from loom.db.models import Assignment, ImpliedRole, Role
from loom.errors import Forbidden, NotFound
from loom.identity.common import filter_by


async def get(session: AsyncSession, role_id: str) -> Role:
    return await get_or_404(session, Role, role_id, "role")


async def get_by_name(session: AsyncSession, name: str, domain_id: str = "") -> Role:
    row = await session.scalar(select(Role).where(Role.name == name, Role.domain_id == domain_id))
    if row is None:
        raise NotFound(f"Could not find role: {name}.")
    return row


async def list_(session: AsyncSession, filters: dict[str, Any]) -> list[Role]:
    # Without a domain filter only global roles are listed, as Keystone does.
    domain_filter = {**filters, "domain_id": filters.get("domain_id") or ""}
    query = filter_by(select(Role).order_by(Role.name), Role, domain_filter, ("name", "domain_id"))
    return list(await session.scalars(query))


async def by_ids(session: AsyncSession, ids: Iterable[str]) -> list[Role]:
    ids = list(ids)
    if not ids:
        return []
    return list(await session.scalars(select(Role).where(Role.id.in_(ids)).order_by(Role.name)))


async def create(session: AsyncSession, values: dict[str, Any]) -> Role:
    role = Role(**{**values, "domain_id": values.get("domain_id") or ""})
    session.add(role)
    await flush_or_conflict(
        session, f"Conflict occurred attempting to store role - Duplicate entry found with name "
        f"{values.get('name')}.")
    return role


async def update(session: AsyncSession, role_id: str, values: dict[str, Any]) -> Role:
    role = await get(session, role_id)
    if role.options.get("immutable"):
        raise Forbidden(f"Role {role.name} is immutable and cannot be changed.")
    apply_updates(role, values, {"name", "description", "options", "extra"})
    await flush_or_conflict(session, f"Conflict occurred attempting to update role - Duplicate entry "
                            f"found with name {role.name}.")
    return role


async def delete(session: AsyncSession, role_id: str) -> None:
    role = await get(session, role_id)
    if role.options.get("immutable"):
        raise Forbidden(f"Role {role.name} is immutable and cannot be deleted.")
    await session.execute(sql_delete(Assignment).where(Assignment.role_id == role_id))
    await session.execute(sql_delete(ImpliedRole).where(
        or_(ImpliedRole.prior_role_id == role_id, ImpliedRole.implied_role_id == role_id)))
    await session.delete(role)


async def add_implied(session: AsyncSession, prior_id: str, implied_id: str) -> None:
    await get(session, prior_id)
    await get(session, implied_id)
    if prior_id in await expand(session, [implied_id]):
        raise Forbidden("The implication would make a loop of roles.")
    if await session.get(ImpliedRole, (prior_id, implied_id)) is None:
        session.add(ImpliedRole(prior_role_id=prior_id, implied_role_id=implied_id))


async def remove_implied(session: AsyncSession, prior_id: str, implied_id: str) -> None:
    row = await session.get(ImpliedRole, (prior_id, implied_id))
    if row is None:
        raise NotFound(f"{prior_id} does not imply {implied_id}.")
    await session.delete(row)


async def check_implied(session: AsyncSession, prior_id: str, implied_id: str) -> None:
    if await session.get(ImpliedRole, (prior_id, implied_id)) is None:
        raise NotFound(f"{prior_id} does not imply {implied_id}.")


async def implications(session: AsyncSession) -> dict[str, set[str]]:
    rules: dict[str, set[str]] = {}
    for prior, implied in await session.execute(
            select(ImpliedRole.prior_role_id, ImpliedRole.implied_role_id)):
        rules.setdefault(prior, set()).add(implied)
    return rules


async def expand(session: AsyncSession, role_ids: Iterable[str]) -> set[str]:
    """The roles given plus every role they imply, transitively."""
    return expand_with(await implications(session), role_ids)


def expand_with(rules: dict[str, set[str]], role_ids: Iterable[str]) -> set[str]:
    result = set(role_ids)
    todo = list(result)
    while todo:
        for implied in rules.get(todo.pop(), ()):
            if implied not in result:
                result.add(implied)
                todo.append(implied)
    return result
