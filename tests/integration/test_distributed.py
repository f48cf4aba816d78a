"""Each service its own process, on PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import httpx

from loom.db import services
from loom.db.engine import Database
from tests.functional.test_cli import clean_env, free_port

LOOM = [sys.executable, "-m", "loom.cmd.main"]


async def test_services_as_separate_processes(pg_url: str, amqp_vhost_url: str) -> None:
    amqp_url = amqp_vhost_url
    env = clean_env(LOOM_SERVICE__REPORT_INTERVAL="0.5")
    subprocess.run([*LOOM, "db", "upgrade", "--db", pg_url], check=True, env=env,
                   capture_output=True)
    port = free_port()
    commands = {
        "api": [*LOOM, "api", "--db", pg_url, "--bus", amqp_url, "--port", str(port)],
        "conductor": [*LOOM, "conductor", "--db", pg_url, "--bus", amqp_url, "--host", "ctl"],
        "scheduler": [*LOOM, "scheduler", "--db", pg_url, "--bus", amqp_url, "--host", "sch"],
        # Compute gets no database URL at all.
        "compute": [*LOOM, "compute", "--bus", amqp_url, "--host", "cmp1"],
    }
    procs = {name: subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True) for name, cmd in commands.items()}
    db = Database(pg_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            rows = {(r.binary, r.host) for r in await services.list_services(db)
                    if services.is_up(r, 60)}
            if {("loom-conductor", "ctl"), ("loom-scheduler", "sch"), ("loom-compute", "cmp1")} <= rows:
                break
            for name, proc in procs.items():
                assert proc.poll() is None, f"{name} exited: {proc.stdout.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"services did not register: {rows}"
            await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                try:
                    r = await http.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert r.status_code == 200
        compute = await services.get_service(db, "cmp1", "loom-compute")
        count = compute.report_count
        await asyncio.sleep(1.5)
        assert (await services.get_service(db, "cmp1", "loom-compute")).report_count > count
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        outputs = {name: proc.communicate(timeout=30)[0] for name, proc in procs.items()}
        await db.close()
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}: {outputs[name]}"
