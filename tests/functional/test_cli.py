"""The ``loom`` command as a user runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

LOOM = [sys.executable, "-m", "loom.cmd.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_")}
    env.update(extra)
    return env


def test_bare_loom_prints_help() -> None:
    out = subprocess.run(LOOM, capture_output=True, text=True, check=True, env=clean_env())
    assert "Usage: loom" in out.stdout
    for command in ("up", "api", "conductor", "scheduler", "compute", "db"):
        assert command in out.stdout


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run([*LOOM, "up", "--bus", "carrier-pigeon://x"], capture_output=True,
                         text=True, env=clean_env(LOOM_DATA_DIR=str(tmp_path)))
    assert out.returncode != 0
    assert "unsupported message bus URL" in out.stderr


def test_compute_refuses_a_database_url() -> None:
    out = subprocess.run([*LOOM, "compute", "--db", "sqlite:///x.db"], capture_output=True, text=True,
                         env=clean_env())
    assert out.returncode != 0 and "never open the database" in out.stderr


def test_db_upgrade(tmp_path: Path) -> None:
    out = subprocess.run([*LOOM, "db", "upgrade"], capture_output=True, text=True, check=True,
                         env=clean_env(LOOM_DATA_DIR=str(tmp_path)))
    assert "database at revision" in out.stdout
    assert (tmp_path / "loom.db").exists()


def test_up_serves_http_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*LOOM, "up", "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=clean_env())
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "loom up did not answer in time"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert r.headers["x-openstack-request-id"].startswith("req-")
        root = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert root.status_code == 200
        # State lives in ./.loom by default.
        assert (tmp_path / ".loom" / "loom.db").exists()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output
    for name in ("loom-conductor", "loom-scheduler", "loom-compute"):
        assert f"{name}@" in output and "stopped" in output


def test_a_service_still_starting_stops_on_sigterm(tmp_path: Path) -> None:
    """A compute with no conductor to register with waits; SIGTERM ends that."""
    proc = subprocess.Popen([*LOOM, "compute", "--bus", "memory://", "--host", "lonely"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env())
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until it is waiting
            if "cannot register yet" in line:
                break
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "signal received while starting" in output
