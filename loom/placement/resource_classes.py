"""Resource classes: the standard ones (constants) and custom ``CUSTOM_*``
ones (rows). Inventories and allocations refer to a class by name."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db import fast
from loom.db.models import CustomResourceClass, PlacementAllocation, ProviderInventory
from loom.placement.errors import (
    DuplicateName,
    PlacementInvalid,
    PlacementNotFound,
    ResourceClassInUse,
)
from loom.placement.sql import insert_ignore
from loom.placement.standard import CUSTOM_NAME, RESOURCE_CLASSES, STANDARD_RESOURCE_CLASSES
from loom.timeutils import utcnow


@dataclass(frozen=True)
class ResourceClass:
    name: str
    custom: bool


def is_standard(name: str) -> bool:
    return name in STANDARD_RESOURCE_CLASSES


def check_custom_name(name: str) -> None:
    if not CUSTOM_NAME.match(name):
        raise PlacementInvalid(f"Invalid resource class name {name!r}: a custom resource class starts with "
                               "CUSTOM_ and has only the characters A-Z, 0-9 and _.")


async def list_(session: AsyncSession) -> list[ResourceClass]:
    custom = await session.scalars(select(CustomResourceClass.name).order_by(CustomResourceClass.name))
    return [ResourceClass(n, False) for n in RESOURCE_CLASSES] + [ResourceClass(n, True) for n in custom]


async def get(session: AsyncSession, name: str) -> ResourceClass:
    if is_standard(name):
        return ResourceClass(name, False)
    if await session.get(CustomResourceClass, name) is None:
        raise PlacementNotFound(f"No such resource class {name}.")
    return ResourceClass(name, True)


_CUSTOM = fast.Statement(select(CustomResourceClass.name)
                         .where(CustomResourceClass.name.in_(bindparam("names", expanding=True))))


async def missing(session: fast.Session, names: set[str]) -> set[str]:
    """Which of ``names`` are neither standard nor an existing custom class."""
    custom = {n for n in names if not is_standard(n)}
    if not custom:
        return set()
    found = {row.name for row in await fast.rows(session, _CUSTOM, {"names": sorted(custom)})}
    return custom - found


async def require(session: AsyncSession, names: set[str]) -> None:
    unknown = await missing(session, names)
    if unknown:
        raise PlacementInvalid(f"Unknown resource class(es): {', '.join(sorted(unknown))}.")


async def ensure(session: AsyncSession, name: str) -> bool:
    """Create custom class ``name`` unless it exists; whether it was created."""
    if is_standard(name):
        return False
    check_custom_name(name)
    if await session.get(CustomResourceClass, name) is not None:
        return False
    return await insert_ignore(session, CustomResourceClass, {"name": name, "created_at": utcnow()})


async def create(session: AsyncSession, name: str) -> ResourceClass:
    check_custom_name(name)
    if not await ensure(session, name):
        raise DuplicateName(f"Conflicting resource class already exists: {name}")
    return ResourceClass(name, True)


async def rename(session: AsyncSession, old: str, new: str) -> ResourceClass:
    """Rename a custom class (Placement before 1.7), moving what uses it."""
    if is_standard(old):
        raise PlacementInvalid(f"Cannot update standard resource class {old}")
    check_custom_name(new)
    row = await session.get(CustomResourceClass, old)
    if row is None:
        raise PlacementNotFound(f"No such resource class {old}.")
    if is_standard(new) or await session.get(CustomResourceClass, new) is not None:
        raise DuplicateName(f"Resource class already exists: {new}")
    session.add(CustomResourceClass(name=new))
    await session.flush()
    for model in (ProviderInventory, PlacementAllocation):
        await session.execute(update(model).where(model.resource_class == old).values(resource_class=new))
    await session.delete(row)
    return ResourceClass(new, True)


async def delete(session: AsyncSession, name: str) -> None:
    if is_standard(name):
        raise PlacementInvalid(f"Cannot delete standard resource class {name}")
    row = await session.get(CustomResourceClass, name)
    if row is None:
        raise PlacementNotFound(f"No such resource class {name}.")
    if await session.scalar(select(exists().where(ProviderInventory.resource_class == name))):
        raise ResourceClassInUse(f"Unable to delete resource class {name}: it has inventories.")
    await session.delete(row)
