"""What every benchmark script shares: percentiles, the machine it ran on,
the command line, and a Loom cloud started as its own process."""

from __future__ import annotations

import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile of sorted values, interpolating between ranks."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * pct / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 0
    return {
        "nproc": nproc,
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
    }


def command_line() -> str:
    """The command as typed (interpreter included) when Linux can tell us."""
    try:
        raw = Path("/proc/self/cmdline").read_bytes()
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        if args:
            return shlex.join(args)
    except OSError:
        pass
    return shlex.join([sys.executable, *sys.argv])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    password: str
    process: subprocess.Popen[bytes]


@contextmanager
def loom_up(env: dict[str, str] | None = None, timeout: float = 60) -> Iterator[Server]:
    """``loom up`` in a fresh data directory, as its own process."""
    import httpx

    with tempfile.TemporaryDirectory(prefix="loom-bench-") as tmp:
        port = free_port()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_")}
        full_env.update({"LOOM_DATA_DIR": tmp, "LOOM_LOG__LEVEL": "WARNING", **(env or {})})
        proc = subprocess.Popen([sys.executable, "-m", "loom.cmd.main", "up", "--port", str(port)],
                                cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("loom up did not start")
                time.sleep(0.1)
            password = (Path(tmp) / "admin-password").read_text().strip()
            yield Server(url, Path(tmp), password, proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
