"""Models and migrations describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from loom.db import migrate
from loom.db.engine import Database
from loom.db.models import Base


async def schema_diff(db: Database) -> list[object]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))


async def test_models_match_migrations(db: Database) -> None:
    assert await migrate.current_revision(db) == migrate.head_revision()
    assert await schema_diff(db) == []


async def test_downgrade_to_base_and_back(db: Database) -> None:
    await migrate.downgrade(db, "base")
    assert await migrate.current_revision(db) is None
    await migrate.upgrade(db)
    assert await schema_diff(db) == []


async def test_upgrade_is_idempotent(db: Database) -> None:
    await migrate.upgrade(db)
    assert await migrate.current_revision(db) == migrate.head_revision()


async def test_sqlite_runs_in_wal_mode(db: Database) -> None:
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
