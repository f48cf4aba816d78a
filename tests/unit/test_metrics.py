"""The metrics each process records, and ``loom status``'s reading and
rendering of them."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from prometheus_client import REGISTRY

from loom import metrics
from loom.bus.rpc import Bus, expose
from loom.bus.transport import transport_from_url
from loom.cmd import status
from loom.context import RequestContext
from loom.errors import NotFound


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Endpoint:
    @expose
    async def echo(self, ctx: RequestContext, value: int) -> int:
        return value

    @expose
    async def missing(self, ctx: RequestContext) -> None:
        raise NotFound("no such thing")


async def test_rpc_calls_and_casts_are_counted_on_both_sides() -> None:
    topic = f"metrics-{uuid.uuid4().hex[:8]}"
    bus = Bus(transport_from_url(f"memory://{topic}"), rpc_timeout=5)
    await bus.start()
    server = bus.server(topic, "h1", Endpoint())
    await server.start()
    try:
        client = bus.client(topic)
        assert await client.call(None, "echo", value=3) == 3
        with pytest.raises(NotFound):
            await client.call(None, "missing")
        await client.cast(None, "echo", value=4)
        assert await server.wait_idle(5)
        assert await client.call(None, "echo", value=5) == 5
    finally:
        await server.stop_consuming()
        await bus.close()
    assert sample("loom_rpc_client_seconds_count", topic=topic, method="echo", kind="call", outcome="ok") == 2
    assert sample("loom_rpc_client_seconds_count", topic=topic, method="missing", kind="call",
                  outcome="NotFound") == 1
    assert sample("loom_rpc_client_seconds_count", topic=topic, method="echo", kind="cast", outcome="ok") == 1
    assert sample("loom_rpc_server_seconds_count", topic=topic, method="echo", outcome="ok") == 3
    assert sample("loom_rpc_server_seconds_count", topic=topic, method="missing", outcome="NotFound") == 1
    assert sample("loom_rpc_inflight", topic=topic) == 0


async def test_unknown_methods_do_not_become_labels() -> None:
    topic = f"metrics-{uuid.uuid4().hex[:8]}"
    bus = Bus(transport_from_url(f"memory://{topic}"), rpc_timeout=5)
    await bus.start()
    server = bus.server(topic, "h1", Endpoint())
    await server.start()
    try:
        with pytest.raises(Exception, match="no method"):
            await bus.client(topic).call(None, "made_up_by_the_caller")
    finally:
        await server.stop_consuming()
        await bus.close()
    assert sample("loom_rpc_server_seconds_count", topic=topic, method="<unknown>", outcome="UnknownMethod") == 1


async def test_memory_transport_reports_queue_depth() -> None:
    transport = transport_from_url(f"memory://{uuid.uuid4().hex}")
    await transport.connect()
    sub = await transport.subscribe("q", _ignore)
    await sub.cancel()
    await transport.send("q", b"1")
    await transport.send("q", b"2")
    assert await transport.queue_depth("q") == 2
    assert await transport.queue_depth("nothing-here") is None
    await transport.close()


async def _ignore(body: bytes) -> None:
    return None


def test_exposition_names_every_family() -> None:
    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    for name in ("loom_rpc_client_seconds", "loom_rpc_server_seconds", "loom_scheduler_select_seconds",
                 "loom_scheduler_hosts_considered", "loom_scheduler_no_valid_host_total", "loom_instances",
                 "loom_db_pool_checked_out", "loom_bus_queue_depth"):
        assert f"# TYPE {name}" in text, name


def test_metrics_listener_serves_the_exposition() -> None:
    server = metrics.serve("127.0.0.1", 0)
    try:
        r = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    finally:
        server.close()
    assert r.status_code == 200 and "loom_rpc_server_seconds" in r.text


def test_status_reads_rates_per_service_from_a_scrape() -> None:
    text = "\n".join([
        '# TYPE loom_service_info gauge',
        'loom_service_info{binary="loom-scheduler",host="s1",topic="scheduler"} 1.0',
        '# TYPE loom_rpc_server_seconds histogram',
        'loom_rpc_server_seconds_count{method="select_destinations",outcome="ok",topic="scheduler"} 40.0',
        'loom_rpc_server_seconds_count{method="ping",outcome="ok",topic="scheduler"} 2.0',
        'loom_rpc_server_seconds_count{method="x",outcome="ok",topic="conductor"} 9.0',
        ''])
    assert status.parse_metrics(text) == {("loom-scheduler", "s1"): 42.0}


def test_status_renders_a_table() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0)
    rows = [
        status.ServiceStatus("loom-compute", "fake-1", True, False, now - dt.timedelta(seconds=3),
                             status.compute_load(2, 2, 16, 1024, 32768), rpc_rate=1.5),
        status.ServiceStatus("loom-conductor", "c1", False, False, now - dt.timedelta(seconds=90)),
        status.ServiceStatus("loom-scheduler", "s1", True, True, None),
    ]
    lines = status.render(rows, now).splitlines()
    assert lines[0].split() == ["BINARY", "HOST", "STATE", "STATUS", "HEARTBEAT", "RPC/S", "LOAD"]
    assert lines[1].split()[:6] == ["loom-compute", "fake-1", "up", "enabled", "3s", "ago"]
    assert "2 vms, 2/16 vcpus, 1024/32768 MB" in lines[1] and "1.5" in lines[1]
    assert lines[2].split()[:5] == ["loom-conductor", "c1", "DOWN", "enabled", "90s"]
    assert lines[3].split()[:5] == ["loom-scheduler", "s1", "up", "disabled", "never"]
