"""What the live migration, evacuation and migrations API tests share
(beyond move_support): the other of the two hosts, a server's migrations
from the API, waiting for a migration's status. There are no tests here."""

from __future__ import annotations

import time
from typing import Any

import httpx

HOSTS = ("test-host-1", "test-host-2")


def other(host: str) -> str:
    return next(h for h in HOSTS if h != host)


def migrations(nova: httpx.Client, server_id: str) -> list[dict[str, Any]]:
    """The server's migrations, newest first (os-migrations at 2.59 and later)."""
    r = nova.get("/os-migrations", params={"instance_uuid": server_id})
    assert r.status_code == 200, r.text
    return list(r.json()["migrations"])


def wait_migration(nova: httpx.Client, server_id: str, statuses: set[str], timeout: float = 20) -> dict[str, Any]:
    """The server's newest migration once its status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        found = migrations(nova, server_id)
        if found and found[0]["status"] in statuses:
            return found[0]
        assert time.monotonic() < deadline, f"migration stayed {found[0]['status'] if found else None}"
        time.sleep(0.05)
