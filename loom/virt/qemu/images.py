"""Base images cached on the host, and the per-instance disks on them.

An image is fetched once (through the ImageSource the compute service
passes), inspected as it streams in (loom.image.inspector: only raw and
qcow2, never one whose header names another file), and kept read-only
under ``_base``: by image id when it has one (images do not change), else by
the sha256 of its content. Each instance's root disk is a qcow2 overlay
on it, so a spawn copies nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from loom import errors
from loom.image.inspector import InspectionError, StreamInspector
from loom.virt.driver import ImageSource, SpawnFailed

GIB = 1 << 30
READ_CHUNK = 1 << 20
USABLE_FORMATS = ("raw", "qcow2")


@dataclass(frozen=True)
class BaseImage:
    path: Path
    format: str
    virtual_size: int


class ImageCache:
    def __init__(self, directory: Path, *, qemu_img: str = "qemu-img") -> None:
        self.directory = directory
        self.qemu_img = qemu_img
        self._locks: dict[str, asyncio.Lock] = {}

    def has(self, image_id: str | None) -> bool:
        return bool(image_id) and self._load(_name(str(image_id))) is not None

    async def fetch(self, image_id: str | None, open_image: ImageSource | None) -> BaseImage:
        """The cached base image, fetching it first if need be."""
        self.directory.mkdir(parents=True, exist_ok=True)
        image_id = _name(image_id) if image_id else None
        if image_id:
            cached = self._load(image_id)
            if cached is not None:
                return cached
        if open_image is None:
            raise SpawnFailed(f"image {image_id} is not cached on this host and no image source was given"
                              if image_id else "no image to boot: none was given and no fallback image is set")
        key = image_id or "content"
        async with self._locks.setdefault(key, asyncio.Lock()):
            if image_id and (cached := self._load(image_id)) is not None:
                return cached  # a concurrent spawn fetched it
            return await self._download(image_id, open_image)

    def _load(self, name: str) -> BaseImage | None:
        meta = self.directory / f"{name}.json"
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        path = self.directory / name
        return BaseImage(path, data["format"], data["virtual_size"]) if path.is_file() else None

    async def _download(self, image_id: str | None, open_image: ImageSource) -> BaseImage:
        partial = self.directory / f".partial-{os.getpid()}-{id(open_image):x}-{os.urandom(4).hex()}"
        inspector, digest = StreamInspector(), hashlib.sha256()
        try:
            with partial.open("wb") as out:
                async for chunk in open_image():
                    inspector.feed(chunk)
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            inspection = inspector.finish()
        except InspectionError as exc:
            partial.unlink(missing_ok=True)
            raise SpawnFailed(f"image {image_id or '(unnamed)'} cannot be used: {exc}") from None
        except errors.LoomError:
            partial.unlink(missing_ok=True)
            raise
        except Exception as exc:
            partial.unlink(missing_ok=True)
            raise SpawnFailed(f"reading image {image_id or '(unnamed)'} failed: {exc}") from exc
        if inspection.format not in USABLE_FORMATS:
            partial.unlink(missing_ok=True)
            raise SpawnFailed(f"image {image_id or '(unnamed)'} is {inspection.format}; "
                              f"the qemu driver boots {' or '.join(USABLE_FORMATS)} disks")
        name = image_id or f"sha256-{digest.hexdigest()}"
        path = self.directory / name
        partial.chmod(0o444)
        os.replace(partial, path)
        (self.directory / f"{name}.json").write_text(
            json.dumps({"format": inspection.format, "virtual_size": inspection.virtual_size}), encoding="utf-8")
        return BaseImage(path, inspection.format, inspection.virtual_size)

    async def create_overlay(self, base: BaseImage, disk: Path, size_gb: int) -> None:
        """A qcow2 ``disk`` backed by ``base``, ``size_gb`` large (the base's
        size if 0); SpawnFailed if the image does not fit."""
        size = size_gb * GIB
        if size_gb and base.virtual_size > size:
            raise SpawnFailed(f"the image's disk ({base.virtual_size} bytes) is larger than the "
                              f"{size_gb} GB root disk")
        await run(self.qemu_img, "create", "-q", "-f", "qcow2", "-F", base.format, "-b", str(base.path),
                  str(disk), *([str(size)] if size_gb else []))

    async def create_blank(self, disk: Path, size_gb: int) -> None:
        await run(self.qemu_img, "create", "-q", "-f", "qcow2", str(disk), str(size_gb * GIB))


def _name(image_id: str) -> str:
    """A file name for the image: its id if that is a plain name (as image
    ids are), else a digest of it."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", image_id):
        return image_id
    return "id-" + hashlib.sha256(image_id.encode()).hexdigest()


async def run(*command: str) -> str:
    """Run a host tool; its output, or SpawnFailed with its error message."""
    try:
        proc = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise SpawnFailed(f"cannot run {command[0]}: {exc.strerror}") from None
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise SpawnFailed(f"{command[0]} failed: {err.decode(errors='replace').strip()}")
    return out.decode(errors="replace")


def local_source(path: Path) -> tuple[str, ImageSource]:
    """A file on the host as an image source, with a cache key that changes
    when the file does."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise SpawnFailed(f"the image file {path} cannot be read: {exc.strerror}") from None
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:32]

    async def read() -> AsyncIterator[bytes]:
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, READ_CHUNK):
                yield chunk

    return f"local-{key}", read


async def stream_file(data: BinaryIO) -> AsyncIterator[bytes]:
    """Read an open file in chunks, closing it at the end."""
    with data:
        while chunk := await asyncio.to_thread(data.read, READ_CHUNK):
            yield chunk
