"""Role assignments: a role given to a user or a group on a project, a
domain (optionally inherited by its projects) or the system."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete as sql_delete
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.helpers import get_or_404
from loom.db.models import Assignment, Domain, Group, Project, User, UserGroup
from loom.errors import NotFound
from loom.identity import domains, groups, projects, revocations, roles

Actor = Literal["user", "group"]
Target = Literal["project", "domain", "system"]
SYSTEM = "system"


def kind(actor: Actor, target: Target) -> str:
    return f"{actor.capitalize()}{target.capitalize()}"


@dataclass(frozen=True)
class Grant:
    """One assignment as the API lists it; ``via_group`` and ``via_role``
    say where an effective one came from."""

    actor: Actor
    actor_id: str
    target: Target
    target_id: str
    role_id: str
    inherited: bool = False
    via_group: str | None = None
    via_role: str | None = None
    via_target: str | None = None
    via_target_type: Target | None = None


async def _check_actor(session: AsyncSession, actor: Actor, actor_id: str) -> None:
    if actor == "user":
        await get_or_404(session, User, actor_id, "user")
    else:
        await groups.get(session, actor_id)


async def _check_target(session: AsyncSession, target: Target, target_id: str) -> None:
    if target == "project":
        await projects.get(session, target_id)
    elif target == "domain":
        await domains.get(session, target_id)
    elif target_id != "all":
        raise NotFound(f"Could not find system scope: {target_id}.")


def _stored_target(target: Target, target_id: str) -> str:
    return SYSTEM if target == "system" else target_id


async def grant(session: AsyncSession, actor: Actor, actor_id: str, target: Target, target_id: str,
                role_id: str, inherited: bool = False) -> None:
    await _check_actor(session, actor, actor_id)
    await _check_target(session, target, target_id)
    await roles.get(session, role_id)
    key = (kind(actor, target), actor_id, _stored_target(target, target_id), role_id, inherited)
    if await session.get(Assignment, key) is None:
        session.add(Assignment(type=key[0], actor_id=actor_id, target_id=key[2], role_id=role_id,
                               inherited=inherited))


async def check(session: AsyncSession, actor: Actor, actor_id: str, target: Target, target_id: str,
                role_id: str, inherited: bool = False) -> Assignment:
    await _check_actor(session, actor, actor_id)
    await _check_target(session, target, target_id)
    await roles.get(session, role_id)
    key = (kind(actor, target), actor_id, _stored_target(target, target_id), role_id, inherited)
    row = await session.get(Assignment, key)
    if row is None:
        raise NotFound(f"Could not find role assignment with role: {role_id}, {actor}: {actor_id}, "
                       f"{target}: {target_id}.")
    return row


async def revoke(session: AsyncSession, actor: Actor, actor_id: str, target: Target, target_id: str,
                 role_id: str, inherited: bool = False) -> None:
    row = await check(session, actor, actor_id, target, target_id, role_id, inherited)
    await session.delete(row)
    users = [actor_id] if actor == "user" else await groups.member_ids(session, actor_id)
    for user_id in users:
        if target == "project" and not inherited:
            await revocations.add(session, user_id=user_id, project_id=target_id)
        else:
            await revocations.add(session, user_id=user_id)


async def direct_role_ids(session: AsyncSession, actor: Actor, actor_id: str, target: Target,
                          target_id: str, inherited: bool = False) -> list[str]:
    query = select(Assignment.role_id).where(
        Assignment.type == kind(actor, target), Assignment.actor_id == actor_id,
        Assignment.target_id == _stored_target(target, target_id), Assignment.inherited == inherited)
    return list(await session.scalars(query))


async def effective_role_ids(session: AsyncSession, user_id: str, *, project: Project | None = None,
                             domain_id: str | None = None, system: bool = False) -> set[str]:
    """Every role the user holds on one scope: directly, through groups, by
    inheritance from the project's domain and parents, and by implication."""
    direct = await direct_effective_role_ids(session, user_id, project=project, domain_id=domain_id,
                                             system=system)
    return await roles.expand(session, direct)


async def direct_effective_role_ids(session: AsyncSession, user_id: str, *, project: Project | None = None,
                                    domain_id: str | None = None, system: bool = False) -> set[str]:
    """The roles given to the user on one scope, directly, through groups and
    by inheritance, before implied roles are added."""
    # The user and every group of the user, in the same query as the roles.
    groups_of_user = select(UserGroup.group_id).where(UserGroup.user_id == user_id).scalar_subquery()
    actor = (Assignment.actor_id == user_id) | Assignment.actor_id.in_(groups_of_user)
    if project is not None:
        inherited_targets = [project.domain_id]
        parent = project.parent_id
        while parent:
            inherited_targets.append(parent)
            parent = (await projects.get(session, parent)).parent_id
        where = or_(
            (Assignment.target_id == project.id) & (Assignment.inherited.is_(False))
            & Assignment.type.in_(("UserProject", "GroupProject")),
            Assignment.target_id.in_(inherited_targets) & Assignment.inherited.is_(True),
        )
    elif domain_id is not None:
        where = (Assignment.target_id == domain_id) & Assignment.inherited.is_(False) & Assignment.type.in_(
            ("UserDomain", "GroupDomain"))
    elif system:
        where = Assignment.target_id == SYSTEM
    else:
        return set()
    return set(await session.scalars(select(Assignment.role_id).where(actor, where)))


async def project_ids_for_user(session: AsyncSession, user_id: str) -> set[str]:
    """Projects the user holds any role on (what ``/v3/auth/projects`` lists)."""
    actors = [user_id, *await session.scalars(select(UserGroup.group_id).where(UserGroup.user_id == user_id))]
    rows = (await session.execute(select(Assignment.type, Assignment.target_id, Assignment.inherited).where(
        Assignment.actor_id.in_(actors)))).all()
    ids = {t for typ, t, inh in rows if typ.endswith("Project") and not inh}
    inherited_domains = {t for typ, t, inh in rows if typ.endswith("Domain") and inh}
    inherited_projects = {t for typ, t, inh in rows if typ.endswith("Project") and inh}
    if inherited_domains:
        ids |= set(await session.scalars(select(Project.id).where(Project.domain_id.in_(inherited_domains))))
    frontier = set(inherited_projects)
    while frontier:
        children = set(await session.scalars(select(Project.id).where(Project.parent_id.in_(frontier))))
        frontier = children - ids
        ids |= children
    return ids


async def domain_ids_for_user(session: AsyncSession, user_id: str) -> set[str]:
    actors = [user_id, *await session.scalars(select(UserGroup.group_id).where(UserGroup.user_id == user_id))]
    rows = await session.scalars(select(Assignment.target_id).where(
        Assignment.actor_id.in_(actors), Assignment.type.in_(("UserDomain", "GroupDomain")),
        Assignment.inherited.is_(False)))
    return set(rows)


async def list_grants(session: AsyncSession, filters: dict[str, Any], effective: bool) -> list[Grant]:
    """``GET /v3/role_assignments``. Filters: user_id, group_id, role_id,
    project_id, domain_id, system, inherited."""
    rows = list(await session.scalars(select(Assignment)))
    grants = [_to_grant(row) for row in rows]
    if effective:
        grants = await _effective(session, grants)
    return [g for g in grants if _wanted(g, filters, effective)]


def _to_grant(row: Assignment) -> Grant:
    actor: Actor = "user" if row.type.startswith("User") else "group"
    target: Target = "project" if row.type.endswith("Project") else (
        "domain" if row.type.endswith("Domain") else "system")
    target_id = "all" if target == "system" else row.target_id
    return Grant(actor, row.actor_id, target, target_id, row.role_id, row.inherited)


async def _effective(session: AsyncSession, grants: list[Grant]) -> list[Grant]:
    members: dict[str, list[str]] = {}
    for user_id, group_id in await session.execute(select(UserGroup.user_id, UserGroup.group_id)):
        members.setdefault(group_id, []).append(user_id)
    rules = await roles.implications(session)
    out: list[Grant] = []
    for g in grants:
        users = [(g.actor_id, None)] if g.actor == "user" else [
            (u, g.actor_id) for u in members.get(g.actor_id, ())]
        targets: list[tuple[Target, str, str | None]] = [(g.target, g.target_id, None)]
        if g.inherited:
            targets = [("project", p, g.target_id) for p in await _inheriting_projects(session, g)]
        for user_id, via_group in users:
            for target, target_id, via_target in targets:
                via_type = g.target if via_target else None
                out.append(Grant("user", user_id, target, target_id, g.role_id, False, via_group,
                                 None, via_target, via_type))
                for implied in roles.expand_with(rules, [g.role_id]) - {g.role_id}:
                    out.append(Grant("user", user_id, target, target_id, implied, False, via_group,
                                     g.role_id, via_target, via_type))
    return out


async def _inheriting_projects(session: AsyncSession, g: Grant) -> list[str]:
    if g.target == "domain":
        return list(await session.scalars(select(Project.id).where(Project.domain_id == g.target_id)))
    found: list[str] = []
    frontier = [g.target_id]
    while frontier:
        frontier = list(await session.scalars(select(Project.id).where(Project.parent_id.in_(frontier))))
        found.extend(frontier)
    return found


def _wanted(g: Grant, f: dict[str, Any], effective: bool) -> bool:
    if f.get("user_id") and not (g.actor == "user" and g.actor_id == f["user_id"]):
        return False
    if f.get("group_id") and not (g.actor == "group" and g.actor_id == f["group_id"]):
        return False
    if f.get("role_id") and g.role_id != f["role_id"]:
        return False
    if f.get("project_ids") is not None and not (g.target == "project" and g.target_id in f["project_ids"]):
        return False
    if f.get("domain_id") and not (g.target == "domain" and g.target_id == f["domain_id"]):
        return False
    if f.get("system") and g.target != "system":
        return False
    return not (f.get("inherited") and not g.inherited)


async def remove_actor(session: AsyncSession, actor_id: str) -> None:
    await session.execute(sql_delete(Assignment).where(Assignment.actor_id == actor_id))


async def names(session: AsyncSession, grants: list[Grant]) -> dict[str, Any]:
    """Names for include_names: every user, group, project, domain and role
    the grants mention, keyed by id."""
    ids = {g.actor_id for g in grants} | {g.target_id for g in grants} | {g.role_id for g in grants}
    out: dict[str, Any] = {}
    for model in (User, Group, Project):
        for row in await session.scalars(select(model).where(model.id.in_(ids))):
            out[row.id] = row
    for row in await roles.by_ids(session, ids):
        out[row.id] = row
    domain_ids = ids | {getattr(r, "domain_id", None) for r in out.values()}
    for row in await session.scalars(select(Domain).where(Domain.id.in_(domain_ids))):
        out[row.id] = row
    return out
