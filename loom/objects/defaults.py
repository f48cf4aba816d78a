"""What a fresh cloud offers so that it is usable at once: the classic
flavors and a small demo image (public, owned by the admin project)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from sqlalchemy import select

from loom.config import Settings
from loom.db.engine import Database
from loom.db.models import Flavor, Image, Project
from loom.errors import Invalid
from loom.image.store import FileStore

# name, id, memory MB, vCPUs, root disk GB: Nova's historic defaults.
FLAVORS = (
    ("m1.tiny", "1", 512, 1, 1),
    ("m1.small", "2", 2048, 1, 20),
    ("m1.medium", "3", 4096, 2, 40),
    ("m1.large", "4", 8192, 4, 80),
    ("m1.xlarge", "5", 16384, 8, 160),
)
DEMO_IMAGE = "demo"
DEMO_SIZE = 1 << 20  # a blank 1 MiB raw disk: enough for the fake driver
GUEST_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-test-guest.sh"


async def ensure(settings: Settings, db: Database) -> None:
    async with db.session.begin() as session:
        existing = set(await session.scalars(select(Flavor.name)))
        for name, flavorid, ram, vcpus, disk in FLAVORS:
            if name not in existing:
                session.add(Flavor(flavorid=flavorid, name=name, memory_mb=ram, vcpus=vcpus, root_gb=disk))
        if settings.image.demo_image and await session.scalar(
                select(Image.id).where(Image.name == DEMO_IMAGE)) is None:
            admin = await session.scalar(select(Project.id).where(Project.name == "admin"))
            data, disk_format = await _demo_data(settings)
            image = Image(name=DEMO_IMAGE, status="active", visibility="public", owner=admin, disk_format=disk_format,
                          container_format="bare", size=len(data), virtual_size=len(data),
                          checksum=hashlib.md5(data, usedforsecurity=False).hexdigest(), os_hash_algo="sha512",
                          os_hash_value=hashlib.sha512(data).hexdigest(), properties={}, tags=[])
            session.add(image)
            await session.flush()
            store = FileStore(settings.image_dir)
            store.path(image.id).write_bytes(data)


async def _demo_data(settings: Settings) -> tuple[bytes, str]:
    """The demo image's data and disk format: a blank raw disk for the fake
    driver; for the qemu driver the test guest, built first if need be."""
    if settings.compute.driver != "qemu":
        return bytes(DEMO_SIZE), "raw"
    if settings.compute.qemu_fallback_image:
        path = Path(settings.compute.qemu_fallback_image)
    else:
        path = await _build_guest(settings.data_dir / "guest")
    try:
        return path.read_bytes(), "qcow2"
    except OSError as exc:
        raise Invalid(f"cannot read the test guest image {path}: {exc}") from None


async def _build_guest(out: Path) -> Path:
    """Run scripts/build-test-guest.sh (a no-op when the guest is current)."""
    script = GUEST_SCRIPT
    if not script.is_file():
        raise Invalid(f"the qemu driver's demo image is built by {script}, which is missing; set "
                      "compute.qemu_fallback_image to a bootable qcow2 instead")
    proc = await asyncio.create_subprocess_exec(str(script), str(out), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise Invalid(f"building the test guest failed: {stderr.decode(errors='replace')[-500:]}")
    return Path(stdout.decode().strip().splitlines()[-1])
