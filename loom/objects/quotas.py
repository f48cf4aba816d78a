"""Compute quotas as Nova keeps them. A limit comes from the most specific
place that sets it: the user's own limit in the project, the project's,
the "default" quota class, then the configuration; -1 means no limit.
Usage is counted from the resources themselves, never stored.

Creators insert their rows first and then call a ``check_*`` function in
the same transaction: it takes the project's (or user's) lock and counts
again, so concurrent requests never end above a limit; the one that would
is refused with QuotaExceeded and its transaction rolled back whole."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from sqlalchemy import and_, bindparam, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.config import QuotaSettings
from loom.db import fast, locks
from loom.db.models import Instance, KeyPair, Project, Quota, QuotaClass, ServerGroup, ServerGroupMember
from loom.errors import Invalid, QuotaExceeded

UNLIMITED = -1
DEFAULT_CLASS = "default"
# Shown by older microversions; nothing counts them (Neutron owns them).
NETWORK = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")
PERSONALITY = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
GROUPS = ("server_groups", "server_group_members")
RESOURCES = ("instances", "cores", "ram", "metadata_items", *PERSONALITY, "key_pairs", *GROUPS, *NETWORK)
INSTANCE_RESOURCES = ("instances", "cores", "ram")
MAX_LIMIT = 0x7FFFFFFF


class Version(Protocol):
    def at_least(self, version: str) -> bool: ...


# --- limits, as pure functions --------------------------------------------


def config_defaults(settings: QuotaSettings) -> dict[str, int]:
    """The configured limit of every resource (Nova's option for path bytes
    is named ``injected_file_path_length``)."""
    values = settings.model_dump()
    values["injected_file_path_bytes"] = values.pop("injected_file_path_length")
    return {r: int(values.get(r, UNLIMITED)) for r in RESOURCES}


def resolve(base: Mapping[str, int], *layers: Mapping[str, int]) -> dict[str, int]:
    """Each resource's limit from the last layer that sets it: pass the
    defaults, then the quota class, the project and the user."""
    out = {r: base.get(r, UNLIMITED) for r in RESOURCES}
    for layer in layers:
        out.update({k: v for k, v in layer.items() if k in out})
    return out


def hidden(version: Version) -> frozenset[str]:
    """What the quota-set views leave out: 2.36 drops the network quotas,
    2.57 the personality (injected file) ones."""
    if version.at_least("2.57"):
        return frozenset(NETWORK + PERSONALITY)
    if version.at_least("2.36"):
        return frozenset(NETWORK)
    return frozenset()


def hidden_in_class(version: Version) -> frozenset[str]:
    """What the quota-class views leave out: the server group quotas before
    2.50, then as the quota sets (2.50 drops the network quotas there)."""
    return hidden(version) if version.at_least("2.50") else frozenset(GROUPS)


def updatable(version: Version) -> frozenset[str]:
    return frozenset(RESOURCES) - hidden(version)


def updatable_in_class(version: Version) -> frozenset[str]:
    # Before 2.50 the group quotas can be set though they are not shown.
    return frozenset(RESOURCES) - hidden(version) if version.at_least("2.50") else frozenset(RESOURCES)


def overs(limits: Mapping[str, int], used: Mapping[str, int]) -> list[str]:
    """The resources whose usage is above their limit, sorted (as Nova names them)."""
    return sorted(r for r, n in used.items() if 0 <= limits.get(r, UNLIMITED) < n)


def bounds(
    limit: int, in_use: int, users_total: int, own: int | None = None, *, for_user: bool = False
) -> tuple[int, int]:
    """The range a new limit may take (Nova's settable quotas): a project's
    at least what is used and what its users' own limits add up to; a
    user's at least what they use and at most what the project's limit
    leaves beside the other users' limits. -1 as maximum: no bound."""
    if limit == UNLIMITED:
        return in_use, UNLIMITED
    if not for_user:
        return max(users_total, in_use), UNLIMITED
    return in_use, limit - users_total + (own or 0)


def check_bounds(resource: str, value: int, minimum: int, maximum: int) -> None:
    def inf(v: int) -> float:
        return float("inf") if v == UNLIMITED else v

    if inf(value) < inf(minimum):
        raise Invalid(
            f"Quota limit {value} for {resource} must be greater than or equal to already used and reserved {minimum}.",
            field=resource,
        )
    if inf(value) > inf(maximum):
        raise Invalid(f"Quota limit {value} for {resource} must be less than or equal to {maximum}.", field=resource)


def room(limits: Mapping[str, int], used: Mapping[str, int], vcpus: int, memory_mb: int) -> int | None:
    """How many more instances of a flavor fit (None: no limit applies)."""
    fits: list[int] = []
    for resource, each in (("instances", 1), ("cores", vcpus), ("ram", memory_mb)):
        limit = limits.get(resource, UNLIMITED)
        if limit >= 0 and each > 0:
            fits.append(max(limit - used.get(resource, 0), 0) // each)
    return min(fits) if fits else None


def too_many_instances(
    names: list[str], requested: Mapping[str, int | str], used: Mapping[str, int], limits: Mapping[str, int]
) -> QuotaExceeded:
    """Nova's TooManyInstances; ``used`` is the usage before the request."""

    def join(values: Iterable[object]) -> str:
        return ", ".join(str(v) for v in values)

    over = join(names)
    return QuotaExceeded(
        f"Quota exceeded for {over}: Requested {join(requested[r] for r in names)}, but already used "
        f"{join(used[r] for r in names)} of {join(limits[r] for r in names)} {over}",
        resource=over,
    )


# --- limits in the database -----------------------------------------------


# Built once: every create of a server runs these.
_CLASS_LIMITS = fast.Statement(
    select(QuotaClass.resource, QuotaClass.hard_limit).where(QuotaClass.class_name == bindparam("name")))
_LAYERS = fast.Statement(
    select(Quota.user_id, Quota.resource, Quota.hard_limit)
    .where(Quota.project_id == bindparam("project"), Quota.user_id.in_(bindparam("users", expanding=True))))
_USED = select(Instance.flavor, Instance.old_flavor, Instance.new_flavor).where(
    Instance.project_id == bindparam("project"), Instance.deleted.is_(False),
    or_(Instance.vm_state != "soft-delete", Instance.task_state.is_not(None)))
_USED_BY = {False: fast.Statement(_USED), True: fast.Statement(_USED.where(Instance.user_id == bindparam("user")))}


async def class_limits(session: fast.Session, class_name: str = DEFAULT_CLASS) -> dict[str, int]:
    return {r: int(v) for r, v in await fast.rows(session, _CLASS_LIMITS, {"name": class_name})}


async def overrides(session: fast.Session, project_id: str, user_id: str = "") -> dict[str, int]:
    """The limits set for the project itself (user_id ""), or for one user in it."""
    rows = await fast.rows(session, _LAYERS, {"project": project_id, "users": [user_id]})
    return {resource: int(value) for _, resource, value in rows}


async def users_totals(session: AsyncSession, project_id: str) -> dict[str, int]:
    """Per resource, the sum of the limits set for users of the project."""
    rows = await session.execute(
        select(Quota.resource, func.sum(Quota.hard_limit))
        .where(Quota.project_id == project_id, Quota.user_id != "", Quota.hard_limit >= 0)
        .group_by(Quota.resource)
    )
    return {r: int(v or 0) for r, v in rows}


async def defaults(session: AsyncSession, settings: QuotaSettings) -> dict[str, int]:
    return await class_set(session, settings, DEFAULT_CLASS)


async def class_set(session: AsyncSession, settings: QuotaSettings, class_name: str) -> dict[str, int]:
    return resolve(config_defaults(settings), await class_limits(session, class_name))


async def _layers(
    session: fast.Session, project_id: str, user_id: str | None
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """The default class's, the project's and the user's limits, in two
    queries (this runs on every create)."""
    project: dict[str, int] = {}
    user: dict[str, int] = {}
    rows = await fast.rows(session, _LAYERS, {"project": project_id, "users": ["", user_id] if user_id else [""]})
    for owner, resource, value in rows:
        (user if owner else project)[resource] = int(value)
    return await class_limits(session), project, user


async def limits(
    session: fast.Session, settings: QuotaSettings, project_id: str, user_id: str | None = None
) -> dict[str, int]:
    """The project's limits, or with ``user_id`` that user's in the project."""
    return resolve(config_defaults(settings), *await _layers(session, project_id, user_id))


async def set_limits(session: AsyncSession, project_id: str, values: Mapping[str, int], user_id: str = "") -> None:
    existing = {
        q.resource: q
        for q in await session.scalars(
            select(Quota).where(
                Quota.project_id == project_id, Quota.user_id == user_id, Quota.resource.in_(list(values))
            )
        )
    }
    for resource, value in values.items():
        if resource in existing:
            existing[resource].hard_limit = value
        else:
            session.add(Quota(project_id=project_id, user_id=user_id, resource=resource, hard_limit=value))
    await session.flush()


async def delete_limits(session: AsyncSession, project_id: str, user_id: str | None = None) -> None:
    """Back to the defaults: the project's and its users' limits, or one user's."""
    query = delete(Quota).where(Quota.project_id == project_id)
    if user_id:
        query = query.where(Quota.user_id == user_id)
    await session.execute(query)


async def set_class_limits(session: AsyncSession, class_name: str, values: Mapping[str, int]) -> None:
    existing = {
        q.resource: q
        for q in await session.scalars(
            select(QuotaClass).where(QuotaClass.class_name == class_name, QuotaClass.resource.in_(list(values)))
        )
    }
    for resource, value in values.items():
        if resource in existing:
            existing[resource].hard_limit = value
        else:
            session.add(QuotaClass(class_name=class_name, resource=resource, hard_limit=value))
    await session.flush()


async def project_exists(session: AsyncSession, project_id: str) -> bool:
    return await session.scalar(select(Project.id).where(Project.id == project_id)) is not None


# --- usage ------------------------------------------------------------------


async def count_instances(session: fast.Session, project_id: str, user_id: str | None = None) -> dict[str, int]:
    """instances, cores and ram of the project's (or one user's) live
    instances; one in the middle of a resize counts the bigger of its
    flavors (it may end with either). A soft-deleted server counts only
    while it is being restored, as Nova frees its quota until then."""
    params = {"project": project_id, "user": user_id} if user_id else {"project": project_id}
    rows = [[f for f in row if f] for row in await fast.rows(session, _USED_BY[bool(user_id)], params)]
    return {
        "instances": len(rows),
        "cores": sum(max(int(f["vcpus"]) for f in row) for row in rows),
        "ram": sum(max(int(f["memory_mb"]) for f in row) for row in rows),
    }


async def count_server_groups(session: AsyncSession, project_id: str, user_id: str | None = None) -> int:
    query = select(func.count()).select_from(ServerGroup).where(ServerGroup.project_id == project_id)
    if user_id:
        query = query.where(ServerGroup.user_id == user_id)
    return int(await session.scalar(query) or 0)


async def count_key_pairs(session: AsyncSession, user_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(KeyPair).where(KeyPair.user_id == user_id)) or 0)


_GROUP_MEMBERS = fast.Statement(
    select(func.count())
    .select_from(ServerGroupMember)
    .outerjoin(Instance, and_(Instance.uuid == ServerGroupMember.instance_uuid, Instance.deleted.is_(True)))
    .where(ServerGroupMember.group_id == bindparam("group_id"), Instance.id.is_(None)))


async def count_group_members(session: fast.Session, group_id: int) -> int:
    """A group's members, less those whose instance is deleted."""
    return int(await fast.scalar(session, _GROUP_MEMBERS, {"group_id": group_id}) or 0)


async def usage(session: AsyncSession, project_id: str, user_id: str | None = None) -> dict[str, int]:
    """What the quota views show as in use. As in Nova, key pairs and group
    members (per user and per group) show 0, and nothing counts the
    network and personality quotas."""
    used = dict.fromkeys(RESOURCES, 0)
    used.update(await count_instances(session, project_id, user_id))
    used["server_groups"] = await count_server_groups(session, project_id, user_id)
    return used


# --- checks creators make ---------------------------------------------------


def _project_lock(project_id: str) -> str:
    return f"quota:project:{project_id}"


async def _tightest(
    session: fast.Session, settings: QuotaSettings, project_id: str, user_id: str, resource: str
) -> int:
    """The lower of the project's and the user's limit, for what is counted
    per user or per item rather than across the project (Nova merges them)."""
    classes, project, user = await _layers(session, project_id, user_id or None)
    base = config_defaults(settings)
    found = [resolve(base, classes, project)[resource], resolve(base, classes, project, user)[resource]]
    bounded = [v for v in found if v >= 0]
    return min(bounded) if bounded else UNLIMITED


async def instance_room(
    session: fast.Session, settings: QuotaSettings, project_id: str, user_id: str, vcpus: int, memory_mb: int
) -> int | None:
    """How many more instances of a flavor the project (and user) have room
    for now: multi-create trims max_count to it, as Nova does. Takes the
    project's lock, which the check after the insert takes again."""
    await locks.lock(session, _project_lock(project_id))
    fits = [
        room(await limits(session, settings, project_id), await count_instances(session, project_id), vcpus, memory_mb)
    ]
    if user_id and set(INSTANCE_RESOURCES) & set(await overrides(session, project_id, user_id)):
        fits.append(
            room(
                await limits(session, settings, project_id, user_id),
                await count_instances(session, project_id, user_id),
                vcpus,
                memory_mb,
            )
        )
    known = [f for f in fits if f is not None]
    return min(known) if known else None


async def check_instances(
    session: fast.Session,
    settings: QuotaSettings,
    project_id: str,
    user_id: str,
    requested: Mapping[str, int],
    shown: Mapping[str, int | str] | None = None,
) -> None:
    """Call after inserting instances (``requested``: their instances,
    cores and ram) in the creator's transaction. ``shown`` replaces
    requested values in the message (Nova shows "2-5" for a range)."""
    await locks.lock(session, _project_lock(project_id))
    classes, project, user = await _layers(session, project_id, user_id or None)
    base = config_defaults(settings)
    scopes: list[tuple[str | None, dict[str, int]]] = [(None, resolve(base, classes, project))]
    if user_id and set(requested) & set(user):
        scopes.append((user_id, resolve(base, classes, project, user)))
    for scope, limit in scopes:
        used = await count_instances(session, project_id, scope)
        names = overs(limit, {r: used[r] for r in requested})
        if names:
            before = {r: used[r] - requested[r] for r in requested}
            raise too_many_instances(names, {**requested, **(shown or {})}, before, limit)


async def check_key_pairs(session: AsyncSession, settings: QuotaSettings, project_id: str, user_id: str) -> None:
    """Call after inserting a key pair for ``user_id``."""
    await locks.lock(session, f"quota:user:{user_id}")
    limit = await _tightest(session, settings, project_id, user_id, "key_pairs")
    if 0 <= limit < await count_key_pairs(session, user_id):
        raise QuotaExceeded("Quota exceeded, too many key pairs.", resource="key_pairs")


async def check_server_groups(session: AsyncSession, settings: QuotaSettings, project_id: str, user_id: str) -> None:
    """Call after inserting a server group: the project's groups, and the
    user's when the user has a limit of their own."""
    await locks.lock(session, _project_lock(project_id))
    scopes: list[str | None] = [None]
    if user_id and "server_groups" in await overrides(session, project_id, user_id):
        scopes.append(user_id)
    for scope in scopes:
        limit = (await limits(session, settings, project_id, scope))["server_groups"]
        if 0 <= limit < await count_server_groups(session, project_id, scope):
            raise QuotaExceeded("Quota exceeded, too many server groups.", resource="server_groups")


async def check_server_group_members(
    session: fast.Session, settings: QuotaSettings, project_id: str, user_id: str, group_id: int
) -> None:
    """Call after inserting the members (``ServerGroupMember`` rows) of a
    group (``ServerGroup.id``)."""
    await locks.lock(session, f"quota:server-group:{group_id}")
    limit = await _tightest(session, settings, project_id, user_id, "server_group_members")
    if 0 <= limit < await count_group_members(session, group_id):
        raise QuotaExceeded("Quota exceeded, too many servers in group", resource="server_group_members")


async def check_metadata_items(
    session: fast.Session, settings: QuotaSettings, project_id: str, user_id: str, count: int
) -> None:
    """A server's metadata may hold at most ``metadata_items`` items."""
    limit = await _tightest(session, settings, project_id, user_id, "metadata_items")
    if 0 <= limit < count:
        raise QuotaExceeded(f"Maximum number of metadata items exceeds {limit}", resource="metadata_items")
