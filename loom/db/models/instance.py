"""Instances (servers), the actions taken on them and their events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loom.db.models.base import Base, TimestampMixin, new_uuid


class Instance(TimestampMixin, Base):
    __tablename__ = "instances"
    __table_args__ = (
        Index("ix_instances_project_deleted", "project_id", "deleted"),
        Index("ix_instances_host", "host"),
        Index("ix_instances_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    display_name: Mapped[str] = mapped_column(String(255), nullable=False)
    display_description: Mapped[str | None] = mapped_column(Text)
    hostname: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    node: Mapped[str | None] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    # Nova's states: vm_state is where the server is, task_state what is
    # happening to it, power_state what the hypervisor last reported.
    vm_state: Mapped[str] = mapped_column(String(255), nullable=False, default="building")
    task_state: Mapped[str | None] = mapped_column(String(255))
    power_state: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # The flavor as it was at boot (flavors may change or go away later).
    flavor: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    image_ref: Mapped[str | None] = mapped_column(String(255))
    key_name: Mapped[str | None] = mapped_column(String(255))
    key_data: Mapped[str | None] = mapped_column(Text)
    user_data: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, nullable=False, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    reservation_id: Mapped[str] = mapped_column(String(255), nullable=False)
    launch_index: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    launched_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    terminated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    locked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(255))
    locked_reason: Mapped[str | None] = mapped_column(Text)
    config_drive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    progress: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Facts the system keeps about the instance, never shown to users (Nova's
    # system_metadata): what shelve, rescue and soft delete must remember.
    system_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    # During a resize: the flavor it had and the one it is going to.
    old_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # {"code", "message", "details", "created"} when the server went to ERROR.
    fault: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class InstanceAction(Base):
    __tablename__ = "instance_actions"
    __table_args__ = (Index("ix_instance_actions_instance", "instance_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    action: Mapped[str] = mapped_column(String(255), nullable=False)
    request_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    start_time: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    finish_time: Mapped[dt.datetime | None] = mapped_column(DateTime)
    message: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class InstanceActionEvent(Base):
    __tablename__ = "instance_action_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("instance_actions.id", ondelete="CASCADE"), nullable=False)
    event: Mapped[str] = mapped_column(String(255), nullable=False)
    start_time: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    finish_time: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Success or Error
    result: Mapped[str | None] = mapped_column(String(255))
    traceback: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
