"""SQL conditions selecting providers: by name, uuid, tree, aggregates,
traits and room for resources. Each is a subquery on the provider id, so a
whole filtered listing is one statement however many providers there are."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, literal, not_, or_, select

from loom.db.models import PlacementAllocation, ProviderAggregate, ProviderInventory, ProviderTrait, ResourceProvider
from loom.placement.request import AggregateFilter, ProviderQuery, TraitFilter

RP = ResourceProvider


def usage_by_provider(resource_class: str) -> Any:
    """``(provider_id, used)`` of one resource class, as a subquery."""
    return (select(PlacementAllocation.provider_id, func.sum(PlacementAllocation.used).label("used"))
            .where(PlacementAllocation.resource_class == resource_class)
            .group_by(PlacementAllocation.provider_id).subquery())


def capacity_expr() -> ColumnElement[Any]:
    inv = ProviderInventory
    return (inv.total - inv.reserved) * inv.allocation_ratio


def with_room(resource_class: str, amount: int) -> ColumnElement[bool]:
    """The provider can take ``amount`` more of ``resource_class``."""
    inv = ProviderInventory
    used = usage_by_provider(resource_class)
    ids = (select(inv.provider_id)
           .outerjoin(used, used.c.provider_id == inv.provider_id)
           .where(inv.resource_class == resource_class,
                  capacity_expr() >= func.coalesce(used.c.used, 0) + amount,
                  inv.min_unit <= amount, inv.max_unit >= amount,
                  literal(amount) % inv.step_size == 0))
    return RP.id.in_(ids)


def _having_traits(names: frozenset[str]) -> Any:
    return select(ProviderTrait.provider_id).where(ProviderTrait.trait.in_(sorted(names)))


def trait_conditions(traits: TraitFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [RP.id.in_(_having_traits(group)) for group in traits.any_of]
    if traits.forbidden:
        conditions.append(not_(RP.id.in_(_having_traits(traits.forbidden))))
    return conditions


def _in_aggregates(aggregates: frozenset[str]) -> ColumnElement[bool]:
    members = select(ProviderAggregate.provider_id).where(ProviderAggregate.aggregate_uuid.in_(sorted(aggregates)))
    return or_(RP.id.in_(members), RP.root_provider_id.in_(members))


def aggregate_conditions(member_of: AggregateFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [_in_aggregates(group) for group in member_of.any_of]
    if member_of.forbidden:
        conditions.append(not_(_in_aggregates(member_of.forbidden)))
    return conditions


def in_tree(rp_uuid: str) -> ColumnElement[bool]:
    root = select(func.coalesce(RP.root_provider_id, RP.id)).where(RP.uuid == rp_uuid).scalar_subquery()
    return RP.root_provider_id == root


def provider_conditions(query: ProviderQuery) -> list[ColumnElement[bool]]:
    """Conditions on ``ResourceProvider`` for ``query``."""
    conditions: list[ColumnElement[bool]] = []
    if query.name is not None:
        conditions.append(RP.name == query.name)
    if query.uuid is not None:
        conditions.append(RP.uuid == query.uuid)
    if query.in_tree is not None:
        conditions.append(in_tree(query.in_tree))
    conditions += aggregate_conditions(query.member_of)
    conditions += trait_conditions(query.traits)
    conditions += [with_room(rc, amount) for rc, amount in query.resources.items()]
    return conditions
