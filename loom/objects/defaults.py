"""What a fresh cloud offers so that it is usable at once: the classic
flavors and a small demo image (public, owned by the admin project)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from loom.config import Settings
from loom.db.engine import Database
from loom.db.models import Flavor, Image, Project
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


async def ensure(settings: Settings, db: Database) -> None:
    async with db.session.begin() as session:
        existing = set(await session.scalars(select(Flavor.name)))
        for name, flavorid, ram, vcpus, disk in FLAVORS:
            if name not in existing:
                session.add(Flavor(flavorid=flavorid, name=name, memory_mb=ram, vcpus=vcpus, root_gb=disk))
        if settings.image.demo_image and await session.scalar(
                select(Image.id).where(Image.name == DEMO_IMAGE)) is None:
            admin = await session.scalar(select(Project.id).where(Project.name == "admin"))
            data = bytes(DEMO_SIZE)
            image = Image(name=DEMO_IMAGE, status="active", visibility="public", owner=admin, disk_format="raw",
                          container_format="bare", size=len(data), virtual_size=len(data),
                          checksum=hashlib.md5(data, usedforsecurity=False).hexdigest(), os_hash_algo="sha512",
                          os_hash_value=hashlib.sha512(data).hexdigest(), properties={}, tags=[])
            session.add(image)
            await session.flush()
            store = FileStore(settings.image_dir)
            store.path(image.id).write_bytes(data)
