"""What ``qemu-img info`` says of an instance's disk, and growing a disk
(never shrinking it) for a new flavor."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from loom import errors
from loom.virt.qemu.images import GIB, run


@dataclass(frozen=True)
class DiskInfo:
    path: Path
    format: str
    virtual_size: int
    backing_file: str | None
    backing_format: str | None
    data_file: str | None


async def info(qemu_img: str, path: Path) -> DiskInfo:
    """The disk's header as qemu-img reads it (``-U``: a running QEMU may
    hold the file's lock)."""
    data = json.loads(await run(qemu_img, "info", "-U", "--output=json", str(path)))
    specific = (data.get("format-specific") or {}).get("data") or {}
    return DiskInfo(path, str(data["format"]), int(data["virtual-size"]),
                    data.get("full-backing-filename") or data.get("backing-filename"),
                    data.get("backing-filename-format"), specific.get("data-file"))


def check_qcow2(disk: DiskInfo, backing_dir: Path | None) -> None:
    """Refuse a disk that is not a plain qcow2 of ours: no external data
    file, and a backing file only inside ``backing_dir`` (a host's base
    images), none at all if that is None."""
    if disk.format != "qcow2" or disk.data_file:
        raise errors.Invalid(f"{disk.path} is not a plain qcow2 disk ({disk.format}, data file {disk.data_file})")
    if disk.backing_file is None:
        return
    backing = Path(disk.backing_file)
    if backing_dir is None or not backing.is_absolute() or backing.resolve().parent != backing_dir.resolve():
        raise errors.Invalid(f"{disk.path} is backed by {disk.backing_file}, not by a base image of its host")


async def grow(qemu_img: str, disk: DiskInfo, size_gb: int, what: str) -> int | None:
    """Grow ``disk`` to ``size_gb`` (0: leave it); Invalid if that is
    smaller than it is. The size it had if it grew, else None."""
    size = size_gb * GIB
    if not size_gb or size == disk.virtual_size:
        return None
    if size < disk.virtual_size:
        raise errors.Invalid(f"the {what} cannot shrink from {disk.virtual_size / GIB:g} GB to {size_gb} GB")
    await run(qemu_img, "resize", "-q", "-f", "qcow2", str(disk.path), str(size))
    return disk.virtual_size


async def shrink_back(qemu_img: str, path: Path, size: int) -> None:
    """Undo ``grow`` of a disk no guest has run on since."""
    await run(qemu_img, "resize", "-q", "-f", "qcow2", "--shrink", str(path), str(size))
