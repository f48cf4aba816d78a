"""What the host has, as host_resources reports it: memory, CPU model and
flags, QEMU's version."""

from __future__ import annotations

import contextlib
import os
import platform
import re

from loom.virt.driver import DriverError
from loom.virt.qemu import accel


def meminfo_kb(name: str) -> int:
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise DriverError(f"/proc/meminfo has no {name}")


def cpu_info() -> dict[str, object]:
    model = vendor = ""
    flags: list[str] = []
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and not model:
                model = value
            elif key == "vendor_id" and not vendor:
                vendor = value
            elif key == "flags" and not flags:
                flags = value.split()
    cores = os.cpu_count() or 1
    return {"arch": platform.machine(), "model": model, "vendor": vendor, "features": flags,
            "topology": {"sockets": 1, "cores": cores, "threads": 1}}


def version_number(banner: str) -> int:
    """QEMU's version as Nova reports it: 7.2.22 is 7002022."""
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", banner)
    if match is None:
        raise DriverError(f"cannot tell QEMU's version from {banner!r}")
    major, minor, micro = map(int, match.groups())
    return major * 1_000_000 + minor * 1000 + micro


async def qemu_version(binary: str) -> tuple[int, str]:
    """The version number and QEMU's banner."""
    banner = await accel.qemu_version(binary)
    return version_number(banner), banner
