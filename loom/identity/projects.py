"""Projects: who owns resources, and what tokens are scoped to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.helpers import apply_updates, flush_or_conflict, get_or_404
from loom.db.models import Assignment, Project
from loom.errors import Forbidden, NotFound
from loom.identity import domains, revocations
from loom.identity.common import filter_by


async def get(session: AsyncSession, project_id: str) -> Project:
    return await get_or_404(session, Project, project_id, "project")


async def get_by_name(session: AsyncSession, name: str, domain_id: str) -> Project:
    row = await session.scalar(select(Project).where(Project.name == name, Project.domain_id == domain_id))
    if row is None:
        raise NotFound(f"Could not find project: {name}.")
    return row


async def find(session: AsyncSession, ref: dict[str, Any]) -> Project:
    """A project named by id, or by name with its domain, in a request."""
    if ref.get("id"):
        return await get(session, ref["id"])
    if ref.get("name") and isinstance(ref.get("domain"), dict):
        domain = await domains.find(session, ref["domain"])
        return await get_by_name(session, ref["name"], domain.id)
    raise NotFound("A project must be given by id, or by name and domain.")


async def list_(session: AsyncSession, filters: dict[str, Any]) -> list[Project]:
    query = select(Project).order_by(Project.name)
    query = filter_by(query, Project, filters, ("name", "domain_id", "enabled", "parent_id"))
    if filters.get("ids") is not None:
        query = query.where(Project.id.in_(filters["ids"]))
    rows = list(await session.scalars(query))
    tags = filters.get("tags")
    if tags:
        wanted = set(tags.split(","))
        rows = [p for p in rows if wanted <= set(p.tags or ())]
    return rows


async def create(session: AsyncSession, values: dict[str, Any]) -> Project:
    await domains.get(session, values["domain_id"])
    parent_id = values.get("parent_id")
    if parent_id == values["domain_id"]:
        values = {**values, "parent_id": None}
    elif parent_id:
        parent = await get(session, parent_id)
        if parent.domain_id != values["domain_id"]:
            raise Forbidden("Cannot create a project whose parent is in another domain.")
    project = Project(**values)
    session.add(project)
    await flush_or_conflict(
        session, f"Conflict occurred attempting to store project - Duplicate entry found with name "
        f"{values.get('name')} at domain ID {values['domain_id']}.")
    return project


async def update(session: AsyncSession, project_id: str, values: dict[str, Any]) -> Project:
    project = await get(session, project_id)
    if "domain_id" in values and values["domain_id"] != project.domain_id:
        raise Forbidden("Cannot change the domain of a project.")
    was_enabled = project.enabled
    apply_updates(project, values, {"name", "description", "enabled", "tags", "extra"})
    if was_enabled and not project.enabled:
        await revocations.add(session, project_id=project_id)
    await flush_or_conflict(
        session, f"Conflict occurred attempting to update project - Duplicate entry found with name "
        f"{project.name} at domain ID {project.domain_id}.")
    return project


async def delete(session: AsyncSession, project_id: str) -> None:
    project = await get(session, project_id)
    children = await session.scalar(select(func.count()).select_from(Project).where(
        Project.parent_id == project_id))
    if children:
        raise Forbidden(f"Cannot delete project {project_id}: it has {children} child projects.")
    await session.execute(sql_delete(Assignment).where(Assignment.target_id == project_id))
    await revocations.add(session, project_id=project_id)
    await session.delete(project)
