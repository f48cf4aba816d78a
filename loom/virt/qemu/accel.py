"""KVM or TCG: chosen by booting a kernel, not by finding ``/dev/kvm``.

Some hosts (nested virtualisation without the right CPU features, for one)
have a ``/dev/kvm`` that opens and creates VMs, yet every ordinary guest dies
in its firmware or kernel with "KVM internal error". So with ``auto`` the
driver boots the host's own kernel (``/boot/vmlinuz-*``, or a configured
one) under KVM with no root file system: reaching the kernel's "VFS: Unable
to mount root" panic proves KVM runs a real kernel. The answer is kept in a
file per host, keyed by what could change it (QEMU's version, the host
kernel, the KVM device), so the probe runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)

KVM_DEVICE = Path("/dev/kvm")
# What a kernel prints once it has run all the way to mounting its root.
BOOTED_MARKERS = (b"Kernel panic", b"VFS: Unable to mount root", b"Run /init")
CHOICES = ("auto", "kvm", "tcg")


@dataclass(frozen=True)
class Choice:
    accelerator: str
    reason: str


def kvm_usable(device: Path = KVM_DEVICE) -> str | None:
    """Why ``/dev/kvm`` cannot be used, or None if it opens."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return f"{device} cannot be opened ({exc.strerror})"
    os.close(fd)
    return None


def find_kernel(configured: str = "") -> Path | None:
    if configured:
        return Path(configured)
    kernels = sorted(Path("/boot").glob("vmlinuz-*"), key=lambda p: p.stat().st_mtime)
    return kernels[-1] if kernels else None


def probe_command(binary: str, kernel: Path) -> list[str]:
    return [binary, "-nodefaults", "-no-user-config", "-machine", "pc", "-accel", "kvm", "-cpu", "host",
            "-m", "128", "-display", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1 loom.probe"]


async def boots_with_kvm(binary: str, kernel: Path, timeout: float) -> tuple[bool, str]:
    """Boot ``kernel`` under KVM; (whether it got as far as mounting its
    root, what was seen)."""
    proc = await asyncio.create_subprocess_exec(*probe_command(binary, kernel), stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    seen = b""
    try:
        async with asyncio.timeout(timeout):
            while chunk := await proc.stdout.read(4096):
                seen = (seen + chunk)[-65536:]
                if any(marker in seen for marker in BOOTED_MARKERS):
                    return True, "a kernel booted under KVM"
    except TimeoutError:
        pass
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()
    last = seen.decode(errors="replace").strip().splitlines()[:3]
    return False, "a kernel did not boot under KVM: " + (" / ".join(last) or f"no output in {timeout:.0f}s")


async def qemu_version(binary: str) -> str:
    proc = await asyncio.create_subprocess_exec(binary, "--version", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return out.decode(errors="replace").splitlines()[0] if out else ""


async def choose(setting: str, *, binary: str, cache: Path, kernel: str = "", timeout: float = 30.0) -> Choice:
    """The accelerator to run guests with, per ``setting`` (auto, kvm, tcg)."""
    if setting not in CHOICES:
        raise ValueError(f"unknown accelerator setting {setting!r}: expected one of {', '.join(CHOICES)}")
    if setting != "auto":
        return Choice(setting, "configured")
    unusable = kvm_usable()
    if unusable:
        return Choice("tcg", unusable)
    probe_kernel = find_kernel(kernel)
    if probe_kernel is None or not probe_kernel.is_file():
        return Choice("tcg", "no kernel to verify KVM with (set compute.qemu_probe_kernel)")
    key: dict[str, object] = {"qemu": await qemu_version(binary), "host_kernel": platform.release(),
           "kvm": os.stat(KVM_DEVICE).st_rdev, "probe_kernel": str(probe_kernel)}
    saved = _cached(cache, key)
    if saved is not None:
        return saved
    ok, reason = await boots_with_kvm(binary, probe_kernel, timeout)
    choice = Choice("kvm" if ok else "tcg", reason)
    LOG.info("QEMU accelerator: %s (%s)", choice.accelerator, choice.reason)
    _save(cache, key, choice)
    return choice


def _cached(cache: Path, key: dict[str, object]) -> Choice | None:
    try:
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved["key"] == key:
            return Choice(saved["accelerator"], saved["reason"] + " (cached)")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _save(cache: Path, key: dict[str, object], choice: Choice) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "accelerator": choice.accelerator, "reason": choice.reason}),
                     encoding="utf-8")
