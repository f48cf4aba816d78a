"""The QEMU driver's rescue command line and its refusals of a move that
cannot be done, without QEMU."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from loom import errors
from loom.virt.driver import InstanceSpec
from loom.virt.qemu import disks, resize
from loom.virt.qemu.command import GuestConfig, InstancePaths, command_line
from loom.virt.qemu.driver import QemuGuest

UUID = "0f8b5d7e-1c2a-4b3c-9d4e-5f6a7b8c9d0e"
PATHS = InstancePaths(Path("/srv/loom/instances") / UUID)


def config(**overrides: Any) -> GuestConfig:
    return GuestConfig(**{"uuid": UUID, "name": "vm", "vcpus": 1, "memory_mb": 128, "paths": PATHS, **overrides})


def disk_devices(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "-device" and args[i + 1].startswith("virtio-blk")]


def test_a_rescued_guest_boots_the_rescue_disk_with_its_own_disk_second() -> None:
    args = command_line(config(rescue=True, ephemeral=True, config_drive=True))
    devices = disk_devices(args)
    assert devices[0] == "virtio-blk-pci,drive=rescue,id=disk-rescue,bootindex=0,serial=loom-rescue"
    assert devices[1] == "virtio-blk-pci,drive=root,id=disk-root"  # attached, not booted
    assert [d for d in devices if "bootindex" in d] == [devices[0]]
    assert not any("eph0" in d for d in devices)  # as Nova's rescue: no ephemeral disk
    assert f"driver=file,filename={PATHS.rescue_disk},node-name=rescue-file" in args


def test_a_guest_not_rescued_boots_its_own_disk() -> None:
    devices = disk_devices(command_line(config()))
    assert devices == ["virtio-blk-pci,drive=root,id=disk-root,bootindex=0"]


def spec(**overrides: Any) -> InstanceSpec:
    fields: dict[str, Any] = {"uuid": UUID, "name": "vm", "hostname": "vm", "vcpus": 1, "memory_mb": 128,
                              "root_gb": 2, "ephemeral_gb": 1}
    return InstanceSpec(**{**fields, **overrides})


@pytest.mark.parametrize(("change", "message"), [
    ({"root_gb": 1}, "root disk cannot shrink from 2 GB to 1 GB"),
    ({"root_gb": 0}, "root disk cannot shrink"),
    ({"ephemeral_gb": 0}, "ephemeral disk cannot shrink"),
    ({"uuid": "another"}, "with the spec of another"),
])
def test_a_move_that_would_shrink_a_disk_is_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    guest = QemuGuest(spec(), InstancePaths(tmp_path / UUID))
    with pytest.raises(errors.Invalid, match=message):
        resize._check_target(guest, dataclasses.replace(spec(), **change), UUID, "resize")


@pytest.mark.parametrize("disk_info", [{}, {"path": "relative/kept/" + UUID}, {"path": f"/srv/elsewhere/{UUID}"},
                                       {"path": "/srv/kept/another"}])
def test_disk_info_must_name_a_kept_copy(disk_info: dict[str, Any]) -> None:
    with pytest.raises(errors.Invalid, match="no kept copy"):
        resize._handed_over(disk_info, UUID, "host-b")


def test_a_handed_over_disk_must_be_backed_by_its_hosts_base_images(tmp_path: Path) -> None:
    base = tmp_path / "_base"
    ours = disks.DiskInfo(tmp_path / "disk.qcow2", "qcow2", 1 << 30, str(base / "image"), "qcow2", None)
    disks.check_qcow2(ours, base)
    for bad in (dataclasses.replace(ours, backing_file="/etc/shadow"),
                dataclasses.replace(ours, backing_file="image"),
                dataclasses.replace(ours, data_file="/dev/sda"),
                dataclasses.replace(ours, format="raw")):
        with pytest.raises(errors.Invalid):
            disks.check_qcow2(bad, base)
    with pytest.raises(errors.Invalid, match="backed by"):
        disks.check_qcow2(ours, None)  # an ephemeral disk has no backing file
