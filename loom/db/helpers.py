"""Small query helpers shared by every domain module."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.models import Base
from loom.errors import Conflict, NotFound

M = TypeVar("M", bound=Base)


async def get_or_404(session: AsyncSession, model: type[M], ident: Any, kind: str) -> M:
    row = await session.get(model, ident)
    if row is None:
        raise NotFound(f"Could not find {kind}: {ident}.", kind=kind, id=ident)
    return row


async def flush_or_conflict(session: AsyncSession, message: str) -> None:
    """Flush pending writes; a unique-constraint clash becomes a Conflict."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(message) from None


def apply_updates(row: Any, values: dict[str, Any], allowed: set[str]) -> None:
    for key, value in values.items():
        if key in allowed:
            setattr(row, key, value)
