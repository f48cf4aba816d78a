"""``loom api --workers 2``: ``GET /metrics`` on the API shows the totals
of both workers, whichever answers, and still answers once a worker was
killed and started again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from loom.metrics.workers import merge
from tests.functional.cloud import free_port

LOOM = [sys.executable, "-m", "loom.cmd.main"]
SERIES = re.compile(r'^loom_api_request_seconds_count\{api="healthz",method="GET",status="200"\} (\S+)$', re.M)


def healthz_count(text: str) -> float:
    found = SERIES.search(text)
    return float(found.group(1)) if found else 0.0


class Api:
    def __init__(self, process: subprocess.Popen[bytes], url: str, metrics_base: int) -> None:
        self.process, self.url, self.metrics_base = process, url, metrics_base

    def worker_text(self, index: int) -> str:
        """One worker's own metrics, from its own listener."""
        return httpx.get(f"http://127.0.0.1:{self.metrics_base + index}/metrics", timeout=10).text

    def worker_count(self, index: int) -> float:
        return healthz_count(self.worker_text(index))

    def total_text(self) -> str:
        r = httpx.get(self.url + "/metrics", timeout=30)
        assert r.status_code == 200, r.text
        return r.text

    def hit(self, requests: int) -> None:
        """``requests`` health checks, each on a new connection, 8 at a time."""
        def one(_: int) -> None:
            assert httpx.get(self.url + "/healthz", timeout=30).status_code == 200
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(requests)))


def wait_for(check, what: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOM_", "OS_"))}
    env.update({"LOOM_DATA_DIR": str(tmp_path), "LOOM_BUS__URL": "memory://", "LOOM_LOG__LEVEL": "WARNING",
                "LOOM_IDENTITY__PASSWORD_HASH_ROUNDS": "4", "LOOM_IMAGE__DEMO_IMAGE": "false"})
    subprocess.run([*LOOM, "bootstrap"], env=env, check=True, capture_output=True, timeout=120)
    port, metrics_base = free_port(), free_port()
    while free_port() == metrics_base + 1:  # pragma: no cover - the next port must be free too
        metrics_base = free_port()
    process = subprocess.Popen([*LOOM, "api", "--workers", "2", "--port", str(port), "--metrics-port",
                                str(metrics_base)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    a = Api(process, f"http://127.0.0.1:{port}", metrics_base)
    try:
        wait_for(lambda: all(a.worker_text(i) for i in (0, 1)) and httpx.get(a.url + "/healthz").is_success,
                 "both workers answer")
        yield a
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def spread(api: Api) -> tuple[float, float]:
    """Send health checks until both workers have answered some; each one's count."""
    def both() -> tuple[float, float] | None:
        api.hit(40)
        counts = (api.worker_count(0), api.worker_count(1))
        return counts if all(counts) else None
    return wait_for(both, "the kernel gives each worker some connections", timeout=120)


def test_metrics_on_the_api_are_the_workers_totals(api: Api) -> None:
    first, second = spread(api)
    # Any worker may answer: every answer holds both workers' counts.
    for _ in range(6):
        assert healthz_count(api.total_text()) == first + second

    # A killed worker is started again: the totals are the live workers'.
    workers = children(api.process.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    wait_for(lambda: len(now := children(api.process.pid)) == 2 and workers[0] not in now,
             "the killed worker is replaced")
    wait_for(lambda: all(api.worker_text(i) for i in (0, 1)), "both workers answer again")
    first, second = spread(api)
    for _ in range(6):
        assert healthz_count(api.total_text()) == first + second


def test_merge_adds_counters_and_keeps_shared_gauges() -> None:
    one = ('# HELP loom_instances Instances\n# TYPE loom_instances gauge\nloom_instances{vm_state="active"} 5.0\n'
           '# HELP x_total X\n# TYPE x_total counter\nx_total{a="1"} 2.0\nx_created{a="1"} 100.0\n')
    two = ('# HELP loom_instances Instances\n# TYPE loom_instances gauge\nloom_instances{vm_state="active"} 5.0\n'
           '# HELP x_total X\n# TYPE x_total counter\nx_total{a="1"} 3.0\nx_created{a="1"} 50.0\n'
           'x_total{a="2"} 1.0\n')
    text = merge([one, two]).decode()
    assert 'loom_instances{vm_state="active"} 5.0' in text
    assert 'x_total{a="1"} 5.0' in text
    assert 'x_total{a="2"} 1.0' in text
    assert 'x_created{a="1"} 50.0' in text
