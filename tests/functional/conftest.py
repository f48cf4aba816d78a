"""Functional tier: every service in one process over the in-memory bus,
on a throwaway SQLite database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from loom.bus.memory import MemoryTransport
from loom.bus.rpc import Bus
from loom.config import Settings, load_settings
from loom.db import migrate
from loom.db.engine import Database
from tests.functional.cloud import Cloud, running_cloud


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={}, overrides={
        "data_dir": str(tmp_path),
        "bus.url": f"memory://{uuid.uuid4().hex}",
        "api.port": 0,
        "service.host": "test-host",
        "service.report_interval": 0.05,
        "service.down_time": 0.5,
        "service.shutdown_timeout": 5,
    })


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url)
    await migrate.upgrade(database)
    yield database
    await database.close()


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    b = Bus(MemoryTransport(settings.bus.url), rpc_timeout=5)
    await b.start()
    yield b
    await b.close()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A running cloud shared by one test module; tests make their own
    projects and users so they do not step on each other."""
    with running_cloud(tmp_path_factory.mktemp("cloud")) as c:
        yield c
