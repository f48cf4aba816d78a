"""Compute nodes: what each hypervisor last reported about itself. The
hypervisors API shows these; placement holds the allocatable inventory."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from loom.db.models.base import Base, TimestampMixin


class ComputeNode(TimestampMixin, Base):
    __tablename__ = "compute_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The uuid of the node's root resource provider in placement.
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    hypervisor_hostname: Mapped[str] = mapped_column(String(255), nullable=False)
    hypervisor_type: Mapped[str] = mapped_column(String(255), nullable=False)
    hypervisor_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    host_ip: Mapped[str | None] = mapped_column(String(64))
    vcpus: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    local_gb: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    vcpus_used: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    memory_mb_used: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    local_gb_used: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    running_vms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Builds that failed here since the last success (the scheduler weighs hosts down by it).
    failed_builds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cpu_info: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    reported_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
