"""Placement: resource providers and what they hold, and who consumes it.

Resource classes and traits are stored by name: the standard ones are
constants in code (``loom.placement.standard``), only custom ones have rows.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from loom.db.models.base import Base, TimestampMixin
from loom.timeutils import utcnow


class ResourceProvider(TimestampMixin, Base):
    __tablename__ = "placement_providers"
    __table_args__ = (
        Index("ix_placement_providers_root", "root_provider_id"),
        Index("ix_placement_providers_parent", "parent_provider_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # A root provider is its own root; set right after the insert.
    root_provider_id: Mapped[int | None] = mapped_column(ForeignKey("placement_providers.id"))
    parent_provider_id: Mapped[int | None] = mapped_column(ForeignKey("placement_providers.id"))


class ProviderInventory(TimestampMixin, Base):
    __tablename__ = "placement_inventories"

    provider_id: Mapped[int] = mapped_column(
        ForeignKey("placement_providers.id", ondelete="CASCADE"), primary_key=True)
    resource_class: Mapped[str] = mapped_column(String(255), primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reserved: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    min_unit: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    max_unit: Mapped[int] = mapped_column(BigInteger, nullable=False)
    step_size: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    allocation_ratio: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)


class PlacementConsumer(TimestampMixin, Base):
    __tablename__ = "placement_consumers"
    __table_args__ = (Index("ix_placement_consumers_project_user", "project_id", "user_id"),)

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # None: created before consumer types (shown as "unknown").
    consumer_type: Mapped[str | None] = mapped_column(String(255))


class PlacementAllocation(Base):
    __tablename__ = "placement_allocations"
    __table_args__ = (
        Index("ix_placement_allocations_provider_class", "provider_id", "resource_class"),
        Index("ix_placement_allocations_consumer", "consumer_uuid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("placement_providers.id"), nullable=False)
    consumer_uuid: Mapped[str] = mapped_column(ForeignKey("placement_consumers.uuid"), nullable=False)
    resource_class: Mapped[str] = mapped_column(String(255), nullable=False)
    used: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class CustomResourceClass(TimestampMixin, Base):
    __tablename__ = "placement_resource_classes"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)


class CustomTrait(Base):
    __tablename__ = "placement_traits"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class ProviderTrait(Base):
    __tablename__ = "placement_provider_traits"
    __table_args__ = (Index("ix_placement_provider_traits_trait", "trait"),)

    provider_id: Mapped[int] = mapped_column(
        ForeignKey("placement_providers.id", ondelete="CASCADE"), primary_key=True)
    trait: Mapped[str] = mapped_column(String(255), primary_key=True)


class ProviderAggregate(Base):
    __tablename__ = "placement_aggregates"
    __table_args__ = (Index("ix_placement_aggregates_aggregate", "aggregate_uuid"),)

    provider_id: Mapped[int] = mapped_column(
        ForeignKey("placement_providers.id", ondelete="CASCADE"), primary_key=True)
    aggregate_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
