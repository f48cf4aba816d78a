"""Migrations: every move of an instance between hosts or flavors (cold
migrate, resize, live migration, evacuation), as Nova records them. While a
move is under way the migration's uuid is the placement consumer holding
the source host's allocation, and the instance's uuid holds the
destination's."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from loom.db.models.base import Base, TimestampMixin, new_uuid


class Migration(TimestampMixin, Base):
    __tablename__ = "migrations"
    __table_args__ = (
        Index("ix_migrations_instance", "instance_uuid"),
        Index("ix_migrations_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False, default=new_uuid)
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    # migration, resize, live-migration or evacuation
    migration_type: Mapped[str] = mapped_column(String(255), nullable=False)
    # Nova's statuses: pre-migrating, migrating, post-migrating, finished,
    # confirming, confirmed, reverting, reverted, error, failed, accepted,
    # done, queued, preparing, running, completed, cancelled ...
    status: Mapped[str] = mapped_column(String(255), nullable=False)
    source_compute: Mapped[str | None] = mapped_column(String(255))
    source_node: Mapped[str | None] = mapped_column(String(255))
    dest_compute: Mapped[str | None] = mapped_column(String(255))
    dest_node: Mapped[str | None] = mapped_column(String(255))
    dest_host: Mapped[str | None] = mapped_column(String(255))
    old_flavor_id: Mapped[str | None] = mapped_column(String(255))
    new_flavor_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    # Progress of a live migration, in bytes (past 2 GiB: 64 bits).
    memory_total: Mapped[int | None] = mapped_column(BigInteger)
    memory_processed: Mapped[int | None] = mapped_column(BigInteger)
    memory_remaining: Mapped[int | None] = mapped_column(BigInteger)
    disk_total: Mapped[int | None] = mapped_column(BigInteger)
    disk_processed: Mapped[int | None] = mapped_column(BigInteger)
    disk_remaining: Mapped[int | None] = mapped_column(BigInteger)
    hidden: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
