"""Console authorisation tokens (Nova's console_auth_tokens): each lets one
connection through the console proxy to one guest's console, until it
expires. Only a hash of the token is kept."""

from __future__ import annotations

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from loom.db.models.base import Base, TimestampMixin


class ConsoleAuthToken(TimestampMixin, Base):
    __tablename__ = "console_auth_tokens"
    __table_args__ = (
        Index("ix_console_auth_tokens_instance", "instance_uuid"),
        Index("ix_console_auth_tokens_expires", "expires"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # novnc or serial: what the proxy bridges the connection to.
    console_type: Mapped[str] = mapped_column(String(255), nullable=False)
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    # Where the console listens: the compute host, and a unix socket path
    # there or a TCP port.
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    port: Mapped[int | None] = mapped_column(Integer)
    internal_access_path: Mapped[str | None] = mapped_column(String(255))
    # Seconds since the epoch.
    expires: Mapped[int] = mapped_column(Integer, nullable=False)
