"""Image data on the local file system.

An upload is written to ``staging/`` under a name of its own and moved into
``data/`` only once it is complete and verified, so the data directory
never holds a partial image. Writing and hashing run in worker threads, in
parallel with each other and with the event loop receiving the next
chunks; memory stays bounded by two batches in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from loom.errors import LoomError

BATCH = 4 << 20


class TooLarge(LoomError):
    """The image data is larger than allowed."""

    status = 413


@dataclass
class Staged:
    image_id: str
    path: Path
    size: int
    md5: str
    sha512: str


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.staging = root / "staging"
        self.data.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)

    def path(self, image_id: str) -> Path:
        return self.data / image_id

    def exists(self, image_id: str) -> bool:
        return self.path(image_id).exists()

    async def stage(self, image_id: str, chunks: AsyncIterator[bytes], *, max_size: int,
                    on_chunk: Callable[[bytes], None] | None = None) -> Staged:
        """Write the stream to a staging file, hashing as it goes. On any
        failure the staging file is removed before the error propagates."""
        path = self.staging / f"{image_id}.{uuid.uuid4().hex}.part"
        loop = asyncio.get_running_loop()
        f = await loop.run_in_executor(None, _open_new, path)
        md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
        size = 0
        pending: asyncio.Future[Any] | None = None
        batch: list[bytes] = []
        batched = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > max_size:
                    raise TooLarge(f"Image data exceeds the limit of {max_size} bytes.", limit=max_size)
                if on_chunk is not None:
                    on_chunk(chunk)
                batch.append(chunk)
                batched += len(chunk)
                if batched >= BATCH:
                    if pending is not None:
                        await pending
                    pending = _process(loop, f, md5, sha512, b"".join(batch))
                    batch, batched = [], 0
            if pending is not None:
                await pending
            if batch:
                await _process(loop, f, md5, sha512, b"".join(batch))
            await loop.run_in_executor(None, _finish, f)
        except BaseException:
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            await loop.run_in_executor(None, _abandon, f, path)
            raise
        return Staged(image_id, path, size, md5.hexdigest(), sha512.hexdigest())

    async def commit(self, staged: Staged) -> None:
        await asyncio.get_running_loop().run_in_executor(None, os.replace, staged.path, self.path(staged.image_id))

    async def discard(self, staged: Staged) -> None:
        await asyncio.get_running_loop().run_in_executor(None, _unlink, staged.path)

    async def delete(self, image_id: str) -> None:
        await asyncio.get_running_loop().run_in_executor(None, _unlink, self.path(image_id))

    def clean_staging(self, image_id: str | None = None) -> int:
        """Remove staging files (of one image, or all): what a dead upload left."""
        removed = 0
        for part in self.staging.glob(f"{image_id}.*.part" if image_id else "*.part"):
            _unlink(part)
            removed += 1
        return removed

    def staged_image_ids(self) -> set[str]:
        return {part.name.split(".", 1)[0] for part in self.staging.glob("*.part")}

    async def read(self, image_id: str, chunk_size: int) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        f = await loop.run_in_executor(None, open, self.path(image_id), "rb")
        try:
            while True:
                chunk = await loop.run_in_executor(None, f.read, chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            await loop.run_in_executor(None, f.close)


def _process(loop: asyncio.AbstractEventLoop, f: BinaryIO, md5: Any, sha512: Any, data: bytes) -> asyncio.Future[Any]:
    # Three threads at once: hashlib and file writes release the GIL.
    return asyncio.gather(
        loop.run_in_executor(None, f.write, data),
        loop.run_in_executor(None, md5.update, data),
        loop.run_in_executor(None, sha512.update, data),
    )


def _open_new(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb", buffering=0)


def _finish(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


def _abandon(f: BinaryIO, path: Path) -> None:
    try:
        f.close()
    finally:
        _unlink(path)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
