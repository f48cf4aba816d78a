"""Small SQL helpers the placement modules share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

# Far below SQLite's and PostgreSQL's limits on bound parameters.
CHUNK = 5000


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    batch = list(items)
    for i in range(0, len(batch), size):
        yield batch[i:i + size]


async def insert_ignore(session: AsyncSession, model: Any, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same key exists; whether it inserted.
    A concurrent insert of the same key is not an error."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    module: Any = postgresql if dialect == "postgresql" else sqlite
    result = await session.execute(module.insert(model).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)  # type: ignore[attr-defined]
