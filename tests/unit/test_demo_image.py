"""The demo image a fresh cloud offers: blank for the fake driver, the test
guest for the qemu driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from loom.config import Settings
from loom.errors import Invalid
from loom.objects.defaults import DEMO_SIZE, _demo_data


async def test_the_fake_driver_gets_a_blank_raw_disk(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert await _demo_data(settings) == (bytes(DEMO_SIZE), "raw")


async def test_the_qemu_driver_gets_the_guest_it_is_given(tmp_path: Path) -> None:
    guest = tmp_path / "guest.qcow2"
    guest.write_bytes(b"QFI\xfb" + bytes(100))
    settings = Settings(data_dir=tmp_path, compute={"driver": "qemu", "qemu_fallback_image": str(guest)})
    assert await _demo_data(settings) == (guest.read_bytes(), "qcow2")


async def test_a_missing_guest_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path,
                        compute={"driver": "qemu", "qemu_fallback_image": str(tmp_path / "absent.qcow2")})
    with pytest.raises(Invalid, match="cannot read the test guest image"):
        await _demo_data(settings)
