"""Traits: the standard ones (os-traits' names, constants) and custom
``CUSTOM_*`` ones (rows); which providers have which (a set replaced as a
whole, checked against the provider's generation)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, exists, insert, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db import fast
from loom.db.models import CustomTrait, ProviderTrait, ResourceProvider
from loom.placement import generations
from loom.placement.errors import PlacementInvalid, PlacementNotFound, TraitInUse
from loom.placement.sql import chunks, insert_ignore
from loom.placement.standard import CUSTOM_NAME, STANDARD_TRAITS
from loom.timeutils import utcnow


def is_standard(name: str) -> bool:
    return name in STANDARD_TRAITS


def check_custom_name(name: str) -> None:
    if not CUSTOM_NAME.match(name):
        raise PlacementInvalid(f"The trait {name!r} is invalid: a custom trait starts with CUSTOM_ and has only "
                               "the characters A-Z, 0-9 and _.")


async def all_names(session: AsyncSession) -> list[str]:
    custom = await session.scalars(select(CustomTrait.name))
    return sorted(STANDARD_TRAITS | set(custom))


async def exists_(session: AsyncSession, name: str) -> bool:
    return is_standard(name) or await session.get(CustomTrait, name) is not None


async def missing(session: AsyncSession, names: Iterable[str]) -> set[str]:
    custom = {n for n in names if not is_standard(n)}
    if not custom:
        return set()
    found = set(await session.scalars(select(CustomTrait.name).where(CustomTrait.name.in_(custom))))
    return custom - found


async def require(session: AsyncSession, names: Iterable[str]) -> None:
    unknown = await missing(session, names)
    if unknown:
        raise PlacementInvalid(f"No such trait(s): {', '.join(sorted(unknown))}.")


async def associated(session: AsyncSession) -> set[str]:
    """Every trait at least one provider has."""
    return set(await session.scalars(select(ProviderTrait.trait).distinct()))


async def ensure(session: AsyncSession, name: str) -> bool:
    """Create custom trait ``name`` unless it exists; whether it was created."""
    if is_standard(name):
        return False
    check_custom_name(name)
    if await session.get(CustomTrait, name) is not None:
        return False
    return await insert_ignore(session, CustomTrait, {"name": name, "created_at": utcnow()})


async def delete(session: AsyncSession, name: str) -> None:
    if is_standard(name):
        raise PlacementInvalid(f"Cannot delete standard trait {name}.")
    row = await session.get(CustomTrait, name)
    if row is None:
        raise PlacementNotFound(f"No such trait(s): {name}.")
    if await session.scalar(select(exists().where(ProviderTrait.trait == name))):
        raise TraitInUse(f"The trait {name} is in use by a resource provider.")
    await session.delete(row)


async def of_provider(session: AsyncSession, provider_id: int) -> list[str]:
    query = select(ProviderTrait.trait).where(ProviderTrait.provider_id == provider_id).order_by(ProviderTrait.trait)
    return list(await session.scalars(query))


_OF_PROVIDERS = fast.Statement(select(ProviderTrait.provider_id, ProviderTrait.trait)
                               .where(ProviderTrait.provider_id.in_(bindparam("ids", expanding=True))))


async def of_providers(session: fast.Session, provider_ids: Iterable[int]) -> dict[int, set[str]]:
    ids = set(provider_ids)
    out: dict[int, set[str]] = {i: set() for i in ids}
    for chunk in chunks(ids):
        rows = await fast.rows(session, _OF_PROVIDERS, {"ids": chunk})
        for pid, trait in rows:
            out[pid].add(trait)
    return out


async def set_for_provider(session: AsyncSession, rp: ResourceProvider, names: Iterable[str],
                           generation: int | None) -> int:
    """Replace the provider's traits; ``generation`` (if given) must be the
    provider's current one. Returns the provider's new generation."""
    wanted = set(names)
    await require(session, wanted)
    await generations.bump(session, rp, generation)
    await session.execute(sql_delete(ProviderTrait).where(ProviderTrait.provider_id == rp.id))
    if wanted:
        await session.execute(insert(ProviderTrait), [{"provider_id": rp.id, "trait": t} for t in sorted(wanted)])
    return rp.generation

