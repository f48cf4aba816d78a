"""Server groups: a placement policy (affinity, anti-affinity and their
soft variants) shared by the servers that are its members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from loom.db.models.base import Base, TimestampMixin, new_uuid


class ServerGroup(TimestampMixin, Base):
    __tablename__ = "server_groups"
    __table_args__ = (Index("ix_server_groups_project", "project_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    policy: Mapped[str] = mapped_column(String(255), nullable=False)
    # {"max_server_per_host": N} for anti-affinity (2.64)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)


class ServerGroupMember(Base):
    """An instance in a group; an instance is in at most one group."""

    __tablename__ = "server_group_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("server_groups.id", ondelete="CASCADE"), nullable=False,
                                          index=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
