"""Server group records: the groups a project owns, their members, and the
policy check made when a member is given a host.

An instance is a member from the transaction that creates it until it is
deleted (the row goes then); readers also skip deleted instances, so a
delete path that forgets the row still never shows a deleted member."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.context import RequestContext
from loom.db import fast, locks
from loom.db.models import Instance, ServerGroup, ServerGroupMember
from loom.errors import NotFound

POLICIES = ("anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity")
# Policies the scheduler and the late check enforce; the soft ones only weigh.
HARD_POLICIES = ("anti-affinity", "affinity")


def not_found(uuid: str) -> NotFound:
    return NotFound(f"Instance group {uuid} could not be found.", group=uuid)


async def get(session: AsyncSession, ctx: RequestContext, uuid: str) -> ServerGroup:
    """The group if the caller may see it: admins see every project's,
    others only their own (another project's is missing, as in Nova)."""
    query = select(ServerGroup).where(ServerGroup.uuid == uuid)
    if not ctx.is_admin:
        query = query.where(ServerGroup.project_id == ctx.project_id)
    row = await session.scalar(query)
    if row is None:
        raise not_found(uuid)
    return row


async def list_(session: AsyncSession, project_id: str | None, limit: int | None, offset: int) -> list[ServerGroup]:
    """A project's groups (every project's when ``project_id`` is None), oldest first."""
    query = select(ServerGroup).order_by(ServerGroup.id).offset(offset)
    if project_id is not None:
        query = query.where(ServerGroup.project_id == project_id)
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))


async def create(session: AsyncSession, *, name: str, policy: str, rules: dict[str, Any], project_id: str,
                 user_id: str) -> ServerGroup:
    row = ServerGroup(name=name, policy=policy, rules=dict(rules), project_id=project_id, user_id=user_id)
    session.add(row)
    await session.flush()
    return row


async def delete_group(session: AsyncSession, group: ServerGroup) -> None:
    """Delete a group; its members stay as servers, in no group."""
    await session.execute(delete(ServerGroupMember).where(ServerGroupMember.group_id == group.id))
    await session.delete(group)


async def members(session: AsyncSession, group_ids: Iterable[int]) -> dict[int, list[str]]:
    """The uuids of the non-deleted members of each group, in joining order."""
    ids = list(group_ids)
    out: dict[int, list[str]] = {gid: [] for gid in ids}
    if not ids:
        return out
    rows = await session.execute(
        select(ServerGroupMember.group_id, ServerGroupMember.instance_uuid)
        .join(Instance, Instance.uuid == ServerGroupMember.instance_uuid)
        .where(ServerGroupMember.group_id.in_(ids), Instance.deleted.is_(False))
        .order_by(ServerGroupMember.id))
    for gid, uuid in rows:
        out[gid].append(uuid)
    return out


_GROUP_ID = fast.Statement(select(ServerGroup.id).where(ServerGroup.uuid == bindparam("group_uuid")))
_ADD_MEMBER = fast.Statement(insert(ServerGroupMember))
_REMOVE_MEMBER = fast.Statement(delete(ServerGroupMember).where(ServerGroupMember.instance_uuid == bindparam("uuid")))


async def add_members(session: fast.Session, group_uuid: str, instance_uuids: Sequence[str]) -> None:
    """Make the instances members, in the caller's transaction. The group
    is looked up again here: it may have been deleted since it was checked."""
    group_id = await fast.scalar(session, _GROUP_ID, {"group_uuid": group_uuid})
    if group_id is None:
        raise not_found(group_uuid)
    await fast.run_many(session, _ADD_MEMBER, [{"group_id": group_id, "instance_uuid": u} for u in instance_uuids])


async def remove_member(session: fast.Session, instance_uuid: str) -> None:
    await fast.run(session, _REMOVE_MEMBER, {"uuid": instance_uuid})


async def groups_of(session: AsyncSession, instance_uuid: str) -> list[str]:
    """The uuids of the groups the instance is in (at most one)."""
    return list(await session.scalars(
        select(ServerGroup.uuid).join(ServerGroupMember, ServerGroupMember.group_id == ServerGroup.id)
        .where(ServerGroupMember.instance_uuid == instance_uuid)))


async def _placed(session: AsyncSession, group_id: int) -> list[tuple[str, str]]:
    """(instance uuid, host) of the group's non-deleted members that have a host."""
    rows = await session.execute(
        select(Instance.uuid, Instance.host)
        .join(ServerGroupMember, ServerGroupMember.instance_uuid == Instance.uuid)
        .where(ServerGroupMember.group_id == group_id, Instance.deleted.is_(False), Instance.host.is_not(None))
        .order_by(ServerGroupMember.id))
    return [(uuid, host) for uuid, host in rows if host is not None]


async def scheduling_view(session: AsyncSession, group_uuid: str) -> dict[str, Any] | None:
    """The group as the scheduler takes it (``RequestSpec.instance_group``):
    its policy and rules, the members, and the host of each placed member,
    one entry per member. None if the group is gone."""
    group = await session.scalar(select(ServerGroup).where(ServerGroup.uuid == group_uuid))
    if group is None:
        return None
    placed = await _placed(session, group.id)
    current = (await members(session, [group.id]))[group.id]
    return {"uuid": group.uuid, "policy": group.policy, "rules": dict(group.rules or {}),
            "hosts": [host for _, host in placed], "members": current}


def violation(policy: str, rules: dict[str, Any], other_hosts: Sequence[str], host: str) -> str | None:
    """Why a member on ``host`` breaks the policy, given where the group's
    other members are (one entry per member), or None if it does not."""
    if policy == "anti-affinity":
        limit = int(rules.get("max_server_per_host") or 1)
        on_host = sum(1 for h in other_hosts if h == host)
        if on_host >= limit:
            return f"host {host} already has {on_host} member(s) of the group (at most {limit})"
    elif policy == "affinity" and other_hosts and host not in other_hosts:
        return f"the group's other members are on {', '.join(sorted(set(other_hosts)))}, not {host}"
    return None


async def check_placement(session: AsyncSession, group_uuid: str, instance_uuid: str, host: str) -> str | None:
    """The late policy check, made in the transaction that gives the
    instance its host: why ``host`` breaks the group's policy, or None.

    Concurrent checks on one group are serialised: PostgreSQL by an
    advisory lock taken first; SQLite because the caller has written the
    instance's host before calling, and SQLite runs one writer at a time,
    so the next check reads only after this transaction commits."""
    await locks.lock(session, f"server-group:{group_uuid}")
    group = await session.scalar(select(ServerGroup).where(ServerGroup.uuid == group_uuid))
    if group is None or group.policy not in HARD_POLICIES:
        return None
    others = [h for uuid, h in await _placed(session, group.id) if uuid != instance_uuid]
    why = violation(group.policy, dict(group.rules or {}), others, host)
    return f"{group.policy} policy of server group {group_uuid} violated: {why}" if why else None
