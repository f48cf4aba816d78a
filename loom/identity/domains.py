"""Domains: the containers of projects, users and groups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.helpers import apply_updates, flush_or_conflict, get_or_404
from loom.db.models import Domain, Group, Project, User
from loom.errors import Conflict, Forbidden, NotFound
from loom.identity import revocations
from loom.identity.common import filter_by


async def get(session: AsyncSession, domain_id: str) -> Domain:
    return await get_or_404(session, Domain, domain_id, "domain")


async def get_by_name(session: AsyncSession, name: str) -> Domain:
    row = await session.scalar(select(Domain).where(Domain.name == name))
    if row is None:
        raise NotFound(f"Could not find domain: {name}.")
    return row


async def find(session: AsyncSession, ref: dict[str, Any]) -> Domain:
    """A domain named by ``{"id": ...}`` or ``{"name": ...}`` in a request."""
    if ref.get("id"):
        return await get(session, ref["id"])
    if ref.get("name"):
        return await get_by_name(session, ref["name"])
    raise NotFound("A domain must be given by id or name.")


async def list_(session: AsyncSession, filters: dict[str, Any]) -> list[Domain]:
    query = filter_by(select(Domain).order_by(Domain.name), Domain, filters, ("name", "enabled"))
    return list(await session.scalars(query))


async def create(session: AsyncSession, values: dict[str, Any]) -> Domain:
    domain = Domain(**values)
    session.add(domain)
    await flush_or_conflict(
        session, f"Conflict occurred attempting to store domain - Duplicate entry found with name "
        f"{values.get('name')}.")
    return domain


async def update(session: AsyncSession, domain_id: str, values: dict[str, Any]) -> Domain:
    domain = await get(session, domain_id)
    was_enabled = domain.enabled
    apply_updates(domain, values, {"name", "description", "enabled", "extra"})
    if was_enabled and not domain.enabled:
        await revocations.add(session, domain_id=domain_id)
    await flush_or_conflict(session, f"Conflict occurred attempting to update domain - Duplicate "
                            f"entry found with name {domain.name}.")
    return domain


async def delete(session: AsyncSession, domain_id: str) -> None:
    domain = await get(session, domain_id)
    if domain.enabled:
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    for model, kind in ((Project, "projects"), (User, "users"), (Group, "groups")):
        count = await session.scalar(select(func.count()).select_from(model).where(
            model.domain_id == domain_id))
        if count:
            raise Conflict(f"Cannot delete domain {domain.name}: it still owns {count} {kind}.")
    await revocations.add(session, domain_id=domain_id)
    await session.delete(domain)
