"""The QEMU process of an instance, found through its pid file and /proc.

QEMU daemonizes, so its parent is init and it outlives the compute service.
A pid is trusted only if /proc shows a live (not zombie) process whose
command line names the instance, so a recycled pid is never mistaken for
the guest.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

from loom.virt.driver import SpawnFailed

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def start_daemon(command: list[str], timeout: float = 120.0) -> None:
    """Run a command that daemonizes (QEMU's ``-daemonize``: it returns once
    the guest is set up); SpawnFailed with its message if it fails.

    The standard library's subprocess, in a thread: it closes every
    descriptor above 2 in the child. uvloop's subprocesses leak one of the
    loop's pipes into the child, the daemonized QEMU keeps it open for its
    whole life, and the loop then waits for that pipe's end forever."""

    def start() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, close_fds=True, timeout=timeout, check=False)

    try:
        result = await asyncio.to_thread(start)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpawnFailed(f"cannot run {command[0]}: {exc}") from None
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
        raise SpawnFailed(f"{command[0]} failed: {message}")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return raw[raw.rfind(")") + 2:].split()


def guest_pid(pidfile: Path, uuid: str) -> int | None:
    """The pid of the live QEMU running instance ``uuid``, if any."""
    try:
        pid = int(pidfile.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if f"loom-{uuid}".encode() in cmdline else None


def cpu_time_ns(pid: int) -> int:
    """User and system time the process has used (every vCPU thread's)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0
    # utime and stime are fields 14 and 15 of stat; fields[0] is field 3.
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLOCK_TICKS


def uptime_s(pid: int) -> float:
    """Seconds since the process started."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    started = int(fields[19]) / CLOCK_TICKS  # field 22: start time after boot
    with open("/proc/uptime", encoding="utf-8") as f:
        booted_for = float(f.read().split()[0])
    return max(0.0, booted_for - started)


async def wait_gone(pidfile: Path, uuid: str, timeout: float) -> bool:
    """Whether the guest's process is gone within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while guest_pid(pidfile, uuid) is not None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def kill(pidfile: Path, uuid: str, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it lingers; returns once it is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pid = guest_pid(pidfile, uuid)
        if pid is None:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if await wait_gone(pidfile, uuid, timeout):
            return
