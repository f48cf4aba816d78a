"""A distributed Loom for the benchmarks: ``scripts/deploy-local.sh`` on a
database and a RabbitMQ virtual host of its own (made here, removed
after), in a throwaway run directory, stopped with ``scripts/deploy-stop.sh``."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cloud_client import ApiError, Cloud
from common import ROOT, free_port, progress

AMQP_URL = os.environ.get("LOOM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_URL = os.environ.get("LOOM_TEST_POSTGRES_URL", "postgresql://loom:loom@127.0.0.1:5432/loom_test")


@dataclass
class Deployment:
    url: str
    run_dir: Path
    password: str
    computes: int

    def pids(self, prefix: str) -> dict[str, int]:
        """The pid of each process whose name starts with ``prefix``."""
        return {p.stem: int(p.read_text()) for p in sorted((self.run_dir / "pids").glob(prefix + "*.pid"))}

    def rss_mb(self, prefix: str) -> dict[str, float]:
        """VmRSS of each such process (from /proc/<pid>/status), in MB."""
        out = {}
        for name, pid in self.pids(prefix).items():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[name] = int(line.split()[1]) / 1024
        return out


def _sudo() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo"]


def _psql(sql: str) -> None:
    parts = urlsplit(POSTGRES_URL)
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    subprocess.run(["psql", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432), "-U",
                    parts.username or "loom", "-d", parts.path.lstrip("/"), "-qtAc", sql],
                   env=env, check=True, stdout=subprocess.DEVNULL)


def _metrics_base(computes: int) -> int:
    """A base port with BASE..BASE+30+computes free (as far as one can tell)."""
    for _ in range(50):
        base = free_port()
        if base + 40 + computes > 65535:
            continue
        try:
            for port in (base + 10, base + 20, base + 29 + computes):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free range of metrics ports")


@contextmanager
def deployment(computes: int, env: dict[str, str], *, workers: int = 2, schedulers: int = 2
               ) -> Iterator[Deployment]:
    subprocess.run([str(ROOT / "scripts/services.sh"), "start"], check=True, stdout=subprocess.DEVNULL)
    tag = uuid.uuid4().hex[:10]
    database, vhost = f"loom_bench_{tag}", f"loom-bench-{tag}"
    db_url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path="/" + database))
    bus_url = urlunsplit(urlsplit(AMQP_URL)._replace(path="/" + vhost))
    user = urlsplit(AMQP_URL).username or "guest"
    run_dir = Path(tempfile.mkdtemp(prefix="loom-bench-deploy-"))
    port = free_port()
    _psql(f"CREATE DATABASE {database}")
    subprocess.run([*_sudo(), "rabbitmqctl", "-q", "add_vhost", vhost], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*_sudo(), "rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
                   check=True, stdout=subprocess.DEVNULL)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOM_", "OS_"))}
    full_env.update({"LOOM_LOG__LEVEL": "WARNING", **env})
    try:
        started = subprocess.run(
            [str(ROOT / "scripts/deploy-local.sh"), "--computes", str(computes), "--schedulers", str(schedulers),
             "--api-workers", str(workers), "--port", str(port), "--run-dir", str(run_dir), "--db", db_url,
             "--bus", bus_url, "--metrics-base", str(_metrics_base(computes))],
            env=full_env, capture_output=True, text=True, timeout=600)
        if started.returncode != 0:
            raise RuntimeError(f"deploy-local.sh failed: {started.stderr or started.stdout}")
        password = (run_dir / "data" / "admin-password").read_text().strip()
        yield Deployment(f"http://127.0.0.1:{port}", run_dir, password, computes)
    except BaseException:
        kept = Path(tempfile.gettempdir()) / f"loom-bench-logs-{tag}"
        shutil.copytree(run_dir / "logs", kept, dirs_exist_ok=True)
        progress(f"the run failed: the deployment's logs are kept in {kept}")
        raise
    finally:
        stopped = subprocess.run([str(ROOT / "scripts/deploy-stop.sh"), "--run-dir", str(run_dir), "--timeout",
                                  "60"], capture_output=True, text=True)
        if stopped.returncode != 0:
            progress(f"deploy-stop.sh failed: {stopped.stderr}")
        subprocess.run([*_sudo(), "rabbitmqctl", "-q", "delete_vhost", vhost], check=False,
                       stdout=subprocess.DEVNULL)
        _psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        shutil.rmtree(run_dir, ignore_errors=True)


@contextmanager
def distributed_cloud(hosts: int, env: dict[str, str], workers: int, schedulers: int) -> Iterator[Cloud]:
    """A deployment with ``hosts`` fake compute processes, once they all
    have reported, as the benchmarks' Cloud."""
    with deployment(hosts, env, workers=workers, schedulers=schedulers) as d:
        cloud = Cloud(d.url, d.password)
        cloud.deployment = d  # type: ignore[attr-defined]
        wait_for_hypervisors(cloud, hosts)
        progress(f"deploy-local.sh with {hosts} fake compute processes, {workers} API workers, "
                 f"{schedulers} schedulers: {d.url} (run directory {d.run_dir})")
        yield cloud


def wait_for_hypervisors(cloud: Cloud, hosts: int, timeout: float = 300) -> None:
    """Until every compute process has reported its host (the API answers
    before they all have)."""
    admin = cloud.api(cloud.admin_token)
    deadline = time.perf_counter() + timeout
    try:
        while True:
            _, body, _ = admin.request("GET", "/compute/v2.1" + "/os-hypervisors/detail")
            up = [h for h in body["hypervisors"] if h.get("state") == "up" and h.get("status") == "enabled"]
            if len(up) >= hosts:
                return
            if time.perf_counter() > deadline:
                raise ApiError(f"only {len(up)} of {hosts} hypervisors up after {timeout:.0f} s")
            time.sleep(0.5)
    finally:
        admin.close()


def compute_rss(cloud: Cloud) -> dict[str, float]:
    """VmRSS of the deployment's compute processes after the workload."""
    rss = sorted(cloud.deployment.rss_mb("compute-").values())  # type: ignore[attr-defined]
    progress(f"compute processes' VmRSS: median {statistics.median(rss):.1f} MB, largest {rss[-1]:.1f} MB "
             f"({len(rss)} processes)")
    return {"median": statistics.median(rss), "max": rss[-1], "processes": len(rss)}
