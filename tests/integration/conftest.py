"""Real servers for the integration tier. ``make test`` installs and starts
them; run alone, these fixtures start them with the project's script when
the packages are installed, and skip only when they are not."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from loom.db.engine import Database

ROOT = Path(__file__).resolve().parents[2]
AMQP_URL = os.environ.get("LOOM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_URL = os.environ.get(
    "LOOM_TEST_POSTGRES_URL", "postgresql://loom:loom@127.0.0.1:5432/loom_test"
)


def _start(what: str, binary: str) -> None:
    if shutil.which(binary) is None and not Path("/usr/sbin", binary).exists():
        pytest.skip(f"{binary} is not installed on this machine (make test installs it)")
    subprocess.run([str(ROOT / "scripts/services.sh"), "start", what], check=True,
                   stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    _start("rabbitmq", "rabbitmq-server")
    return AMQP_URL


@pytest.fixture
def amqp_vhost_url(amqp_url: str) -> Iterator[str]:
    """The broker with a virtual host of its own for one test: deployments
    of separate processes use fixed queue names, and two test runs on one
    machine must not take each other's messages."""
    vhost = f"loom-t-{uuid.uuid4().hex[:10]}"
    user = urlsplit(amqp_url).username or "guest"
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "rabbitmqctl", "-q", "add_vhost", vhost], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*sudo, "rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        yield urlunsplit(urlsplit(amqp_url)._replace(path="/" + vhost))
    finally:
        subprocess.run([*sudo, "rabbitmqctl", "-q", "delete_vhost", vhost], check=False,
                       stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    _start("postgres", "pg_ctlcluster")
    return POSTGRES_URL


@pytest.fixture
async def pg_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test, dropped after it."""
    name = f"loom_t_{uuid.uuid4().hex[:10]}"
    admin = Database(postgres_url)
    async with admin.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    async with admin.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        await conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    await admin.close()


def rabbitmq(action: str) -> None:
    """``restart``, ``pause`` or ``resume`` the local broker."""
    subprocess.run([str(ROOT / "scripts/services.sh"), f"{action}-rabbitmq"], check=True)
