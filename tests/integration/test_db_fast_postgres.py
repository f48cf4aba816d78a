"""The compiled-statement cases of tests/functional/test_db_fast.py on
PostgreSQL, where loom.db.fast runs statements through the session's
connection: the same keys in, the same rows out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from loom.db import migrate
from loom.db.engine import Database
from tests.functional.test_db_fast import (  # noqa: F401 (collected here too)
    test_delete_returning_and_rollback,
    test_driver_errors_are_sqlalchemy_errors,
    test_in_lists_and_an_empty_one,
    test_insert_fills_python_defaults_and_many_rows,
    test_pending_orm_changes_are_flushed_first,
    test_rows_have_attributes,
    test_select_converts_types_as_the_session_does,
    test_update_sets_onupdate_default_and_counts_rows,
)


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url)
    await migrate.upgrade(database)
    yield database
    await database.close()
