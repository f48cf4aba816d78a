"""``loom status``: every service up or down, with its host, binary, last
heartbeat and load.

The services come from the API's ``os-services`` and the compute hosts'
load from ``os-hypervisors`` (as an admin, with the usual ``OS_*``
credentials), or straight from the database with ``--db``. Given the
services' metrics listeners (``--metrics``), the RPC rate each handles is
measured too: two scrapes a second apart.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from loom.timeutils import utcnow

SERVICE_INFO = "loom_service_info"
HANDLED = "loom_rpc_server_seconds_count"


@dataclass
class ServiceStatus:
    binary: str
    host: str
    up: bool
    disabled: bool
    last_seen: dt.datetime | None
    load: str = ""
    rpc_rate: float | None = None


def compute_load(running_vms: int, vcpus_used: int, vcpus: int, memory_mb_used: int, memory_mb: int) -> str:
    return f"{running_vms} vms, {vcpus_used}/{vcpus} vcpus, {memory_mb_used}/{memory_mb} MB"


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


async def from_database(db_url: str, down_time: float) -> list[ServiceStatus]:
    from sqlalchemy import select

    from loom.db import services
    from loom.db.engine import Database
    from loom.db.models import ComputeNode

    db = Database(db_url, pool_size=1)
    try:
        rows = await services.list_services(db)
        async with db.session() as session:
            nodes = list(await session.scalars(select(ComputeNode)))
    finally:
        await db.close()
    loads = {n.host: compute_load(n.running_vms, n.vcpus_used, n.vcpus, n.memory_mb_used, n.memory_mb)
             for n in nodes}
    return [ServiceStatus(r.binary, r.host, services.is_up(r, down_time), r.disabled, r.last_seen_up,
                          loads.get(r.host, "") if r.binary.endswith("compute") else "") for r in rows]


def from_api(client: httpx.Client) -> list[ServiceStatus]:
    """``client``: an admin's, with the compute API's base URL."""
    r = client.get("/os-services")
    r.raise_for_status()
    h = client.get("/os-hypervisors/detail", headers={"OpenStack-API-Version": "compute 2.79"})
    h.raise_for_status()
    loads = {hv["service"]["host"]: compute_load(hv.get("running_vms", 0), hv.get("vcpus_used", 0),
                                                 hv.get("vcpus", 0), hv.get("memory_mb_used", 0),
                                                 hv.get("memory_mb", 0))
             for hv in h.json()["hypervisors"]}
    return [ServiceStatus(s["binary"], s["host"], s["state"] == "up", s["status"] == "disabled",
                          _parse_time(s.get("updated_at")),
                          loads.get(s["host"], "") if s["binary"].endswith("compute") else "")
            for s in r.json()["services"]]


def parse_metrics(text: str) -> dict[tuple[str, str], float]:
    """Messages handled so far per (binary, host) from one scrape: the
    process's ``loom_service_info`` says which services it runs."""
    from prometheus_client.parser import text_string_to_metric_families

    services: list[tuple[str, str, str]] = []
    handled: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == SERVICE_INFO and sample.value:
                services.append((sample.labels["binary"], sample.labels["host"], sample.labels["topic"]))
            elif sample.name == HANDLED:
                topic = sample.labels.get("topic", "")
                handled[topic] = handled.get(topic, 0.0) + sample.value
    # Several hosts of one topic in a process (loom up's fake hosts) share
    # the count: it is the process's load.
    return {(binary, host): handled.get(topic, 0.0) for binary, host, topic in services}


def rpc_rates(urls: Sequence[str], interval: float = 1.0) -> dict[tuple[str, str], float]:
    """Messages per second each service handles, from two scrapes."""

    def one(url: str) -> dict[tuple[str, str], float]:
        try:
            return parse_metrics(httpx.get(url, timeout=2).text)
        except httpx.HTTPError:
            return {}  # that service shows no rate

    def scrape() -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        with ThreadPoolExecutor(min(len(urls), 16) or 1) as pool:
            for found in pool.map(one, urls):
                out.update(found)
        return out

    first = scrape()
    started = time.monotonic()
    time.sleep(interval)
    second = scrape()
    elapsed = time.monotonic() - started
    return {key: max(second[key] - first.get(key, 0.0), 0.0) / elapsed for key in second}


def render(rows: Iterable[ServiceStatus], now: dt.datetime | None = None) -> str:
    now = now or utcnow()
    table = [("BINARY", "HOST", "STATE", "STATUS", "HEARTBEAT", "RPC/S", "LOAD")]
    for s in sorted(rows, key=lambda s: (s.binary, s.host)):
        seen = "never" if s.last_seen is None else f"{max((now - s.last_seen).total_seconds(), 0):.0f}s ago"
        rate = "" if s.rpc_rate is None else f"{s.rpc_rate:.1f}"
        table.append((s.binary, s.host, "up" if s.up else "DOWN", "disabled" if s.disabled else "enabled", seen,
                      rate, s.load))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in table)


def admin_client(auth_url: str, username: str, password: str, project: str, user_domain: str = "Default",
                 project_domain: str = "Default") -> httpx.Client:
    """A compute API client with a token for these credentials; the
    compute endpoint is taken from the token's catalog."""
    body: dict[str, Any] = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": username, "domain": {"name": user_domain}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": project_domain}}}}}
    r = httpx.post(auth_url.rstrip("/") + "/auth/tokens", json=body, timeout=10)
    r.raise_for_status()
    compute = next(e["url"] for svc in r.json()["token"]["catalog"] if svc["type"] == "compute"
                   for e in svc["endpoints"] if e["interface"] == "public")
    return httpx.Client(base_url=compute, timeout=10, headers={"X-Auth-Token": r.headers["X-Subject-Token"]})
