"""Resource providers: create, read, list with filters, rename, re-parent,
delete; trees of providers (a compute host is a root provider; devices on
it may be its children).

Every function takes the caller's ``AsyncSession`` and leaves committing to
it, except ``ensure_provider``, which runs its own transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.engine import Database
from loom.db.models import (
    PlacementAllocation,
    ProviderAggregate,
    ProviderInventory,
    ProviderTrait,
    ResourceProvider,
)
from loom.placement import filters
from loom.placement.errors import (
    CannotDeleteParent,
    DuplicateName,
    PlacementInvalid,
    ProviderInUse,
    ProviderNotFound,
)
from loom.placement.request import ProviderQuery
from loom.placement.sql import chunks


@dataclass(frozen=True)
class ProviderInfo:
    """A provider as the API shows it."""

    id: int
    uuid: str
    name: str
    generation: int
    parent_provider_uuid: str | None
    root_provider_uuid: str
    created_at: dt.datetime | None
    updated_at: dt.datetime | None


def not_found(rp_uuid: str) -> ProviderNotFound:
    return ProviderNotFound(f"No resource provider with uuid {rp_uuid} found", provider=rp_uuid)


async def get(session: AsyncSession, rp_uuid: str, *, for_update: bool = False) -> ResourceProvider:
    query = select(ResourceProvider).where(ResourceProvider.uuid == rp_uuid)
    if for_update:
        query = query.with_for_update()
    rp = await session.scalar(query)
    if rp is None:
        raise not_found(rp_uuid)
    return rp


async def by_uuids(session: AsyncSession, uuids: Iterable[str], *, for_update: bool = False
                   ) -> dict[str, ResourceProvider]:
    """The providers named, locked in id order when ``for_update`` (so that
    two writers never wait for each other in opposite orders)."""
    out: dict[str, ResourceProvider] = {}
    query = _BY_UUIDS_FOR_UPDATE if for_update else _BY_UUIDS
    for chunk in chunks(sorted(set(uuids))):
        out.update({rp.uuid: rp for rp in await session.scalars(query, {"uuids": chunk})})
    return out


# Built once: every claim runs it.
_BY_UUIDS = (select(ResourceProvider).where(ResourceProvider.uuid.in_(bindparam("uuids", expanding=True)))
             .order_by(ResourceProvider.id))
_BY_UUIDS_FOR_UPDATE = _BY_UUIDS.with_for_update()


async def describe(session: AsyncSession, rows: list[ResourceProvider]) -> list[ProviderInfo]:
    """Providers with their parent's and root's uuids."""
    ids = {r.parent_provider_id for r in rows} | {r.root_provider_id for r in rows}
    ids.discard(None)
    known = {r.id: r.uuid for r in rows}
    wanted = [i for i in ids if i not in known]
    for chunk in chunks(wanted):
        rows_ = await session.execute(select(ResourceProvider.id, ResourceProvider.uuid)
                                      .where(ResourceProvider.id.in_(chunk)))
        known.update({pid: rp_uuid for pid, rp_uuid in rows_})
    return [ProviderInfo(r.id, r.uuid, r.name, r.generation,
                         known.get(r.parent_provider_id) if r.parent_provider_id else None,
                         known.get(r.root_provider_id or r.id, r.uuid), r.created_at, r.updated_at)
            for r in rows]


async def info(session: AsyncSession, rp: ResourceProvider) -> ProviderInfo:
    return (await describe(session, [rp]))[0]


async def list_(session: AsyncSession, query: ProviderQuery | None = None) -> list[ProviderInfo]:
    """Providers matching every filter of ``query``, by id."""
    stmt = select(ResourceProvider).where(*filters.provider_conditions(query or ProviderQuery()))
    stmt = stmt.order_by(ResourceProvider.id)
    return await describe(session, list(await session.scalars(stmt)))


async def create(session: AsyncSession, name: str, rp_uuid: str | None = None,
                 parent_uuid: str | None = None) -> ResourceProvider:
    rp_uuid = rp_uuid or str(uuidlib.uuid4())
    parent = None
    if parent_uuid is not None:
        parent = await session.scalar(select(ResourceProvider).where(ResourceProvider.uuid == parent_uuid))
        if parent is None:
            raise PlacementInvalid(f"parent provider UUID {parent_uuid} does not exist")
    await _check_unique(session, name, rp_uuid)
    rp = ResourceProvider(uuid=rp_uuid, name=name, generation=0,
                          parent_provider_id=parent.id if parent else None)
    session.add(rp)
    try:
        await session.flush()
    except IntegrityError:
        raise DuplicateName(f"Conflicting resource provider {name} ({rp_uuid}) already exists.") from None
    rp.root_provider_id = (parent.root_provider_id or parent.id) if parent else rp.id
    await session.flush()
    return rp


async def _check_unique(session: AsyncSession, name: str, rp_uuid: str, exclude: int | None = None) -> None:
    for column, value, what in ((ResourceProvider.name, name, "name"), (ResourceProvider.uuid, rp_uuid, "uuid")):
        query = select(ResourceProvider.id).where(column == value)
        if exclude is not None:
            query = query.where(ResourceProvider.id != exclude)
        if await session.scalar(query) is not None:
            raise DuplicateName(f"Conflicting resource provider {what} {value} already exists.")


async def ensure_provider(db: Database, rp_uuid: str, name: str, parent_uuid: str | None = None
                          ) -> ResourceProvider:
    """The provider ``rp_uuid``, created (named ``name``) if it does not
    exist yet. A compute host calls this when it starts; concurrent calls for
    the same provider all get the one provider."""
    for _ in range(3):
        try:
            async with db.session.begin() as session:
                rp = await session.scalar(select(ResourceProvider).where(ResourceProvider.uuid == rp_uuid))
                if rp is not None:
                    return rp
                return await create(session, name, rp_uuid, parent_uuid)
        except DuplicateName:
            # Lost a race to create it, or the name is taken by another uuid.
            async with db.session() as session:
                rp = await session.scalar(select(ResourceProvider).where(ResourceProvider.uuid == rp_uuid))
            if rp is not None:
                return rp
            raise
    raise AssertionError("unreachable")


async def update_provider(session: AsyncSession, rp: ResourceProvider, name: str, *,
                          parent_uuid: str | None, set_parent: bool, allow_reparent: bool) -> ResourceProvider:
    """Rename ``rp`` and (when ``set_parent``) give it ``parent_uuid`` as its
    parent. Before Placement 1.37 a parent once set cannot change."""
    await _check_unique(session, name, rp.uuid, exclude=rp.id)
    rp.name = name
    if set_parent:
        await _reparent(session, rp, parent_uuid, allow_reparent)
    try:
        await session.flush()
    except IntegrityError:
        raise DuplicateName(f"Conflicting resource provider name {name} already exists.") from None
    return rp


async def _reparent(session: AsyncSession, rp: ResourceProvider, parent_uuid: str | None,
                    allow_reparent: bool) -> None:
    current = None
    if rp.parent_provider_id is not None:
        current = await session.scalar(select(ResourceProvider.uuid).where(
            ResourceProvider.id == rp.parent_provider_id))
    if parent_uuid == current:
        return
    if not allow_reparent and current is not None:
        raise PlacementInvalid("re-parenting a provider is not currently allowed.")
    if parent_uuid is None:
        new_parent_id, new_root_id = None, rp.id
    else:
        parent = await session.scalar(select(ResourceProvider).where(ResourceProvider.uuid == parent_uuid))
        if parent is None:
            raise PlacementInvalid(f"parent provider UUID {parent_uuid} does not exist")
        subtree = await descendants(session, rp)
        if parent.id in subtree or parent.id == rp.id:
            raise PlacementInvalid("creating loop in the provider tree is not allowed.")
        new_parent_id, new_root_id = parent.id, parent.root_provider_id or parent.id
    moved = await descendants(session, rp)
    rp.parent_provider_id = new_parent_id
    rp.root_provider_id = new_root_id
    for chunk in chunks(moved):
        await session.execute(update(ResourceProvider).where(ResourceProvider.id.in_(chunk))
                              .values(root_provider_id=new_root_id).execution_options(synchronize_session=False))


async def descendants(session: AsyncSession, rp: ResourceProvider) -> set[int]:
    """Ids of every provider below ``rp`` in its tree."""
    rows = await session.execute(select(ResourceProvider.id, ResourceProvider.parent_provider_id)
                                 .where(ResourceProvider.root_provider_id == (rp.root_provider_id or rp.id)))
    children: dict[int, list[int]] = {}
    for pid, parent in rows:
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    out: set[int] = set()
    todo = [rp.id]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


async def delete(session: AsyncSession, rp_uuid: str) -> None:
    rp = await get(session, rp_uuid, for_update=True)
    if await session.scalar(select(exists().where(PlacementAllocation.provider_id == rp.id))):
        raise ProviderInUse(f"Unable to delete resource provider {rp_uuid}: Resource provider has allocations.")
    if await session.scalar(select(exists().where(ResourceProvider.parent_provider_id == rp.id))):
        raise CannotDeleteParent(f"Unable to delete parent resource provider {rp_uuid}: It has child resource "
                                 "providers.")
    for model in (ProviderInventory, ProviderTrait, ProviderAggregate):
        await session.execute(sql_delete(model).where(model.provider_id == rp.id))
    # A root is its own root: clear the self-reference before the row goes.
    await session.execute(update(ResourceProvider).where(ResourceProvider.id == rp.id)
                          .values(root_provider_id=None).execution_options(synchronize_session=False))
    await session.execute(sql_delete(ResourceProvider).where(ResourceProvider.id == rp.id)
                          .execution_options(synchronize_session=False))
    session.expunge(rp)

