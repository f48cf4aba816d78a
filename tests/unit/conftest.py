"""Unit tier: no database, no network. Creating a database engine here
fails loudly instead of quietly making a SQLite file somewhere."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import pytest
import sqlalchemy
import sqlalchemy.engine
import sqlalchemy.ext.asyncio
import sqlalchemy.ext.asyncio.engine

import loom.db.engine

# Every name an engine can be created through. The last one is private: it
# is what sqlalchemy's create_async_engine calls, so even a reference bound
# before the guard was installed cannot get through (test_layering checks
# this still holds after a sqlalchemy upgrade).
_ENGINE_FACTORIES: list[tuple[object, str]] = [
    (sqlalchemy, "create_engine"),
    (sqlalchemy.engine, "create_engine"),
    (sqlalchemy.ext.asyncio, "create_async_engine"),
    (loom.db.engine, "create_async_engine"),
    (sqlalchemy.ext.asyncio.engine, "_create_engine"),
]


def _no_database(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError(
        "unit tests cannot touch a database; use the functional tier (tests/functional) for that"
    )


@pytest.fixture(autouse=True)
def no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for module, name in _ENGINE_FACTORIES:
        monkeypatch.setattr(module, name, _no_database, raising=False)
    # Loom modules that imported a factory by name hold their own reference.
    for module_name, module in list(sys.modules.items()):
        if module_name == "loom" or module_name.startswith("loom."):
            for name in ("create_engine", "create_async_engine"):
                if hasattr(module, name):
                    monkeypatch.setattr(module, name, _no_database)
