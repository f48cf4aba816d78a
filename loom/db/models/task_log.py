"""Task log: one row per run of a periodic audit on a host (Nova's
instance usage audit), shown by ``os-instance_usage_audit_log``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loom.db.models.base import Base, TimestampMixin


class TaskLog(TimestampMixin, Base):
    __tablename__ = "task_log"
    __table_args__ = (UniqueConstraint("task_name", "host", "period_beginning", "period_ending",
                                       name="uq_task_log_task_host_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(String(255), nullable=False)
    # RUNNING or DONE
    state: Mapped[str] = mapped_column(String(255), nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    period_beginning: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    period_ending: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    message: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    task_items: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    errors: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
