"""The QEMU driver's base-image cache: fetched once, inspected as it streams
in, only raw and qcow2, never a partial file left behind. No QEMU."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loom.virt.driver import ImageSource, SpawnFailed
from loom.virt.qemu.images import ImageCache

RAW = bytes(range(256)) * 4096  # 1 MiB


def source(data: bytes, opened: list[int] | None = None) -> ImageSource:
    async def read() -> AsyncIterator[bytes]:
        if opened is not None:
            opened.append(1)
        for start in range(0, len(data), 64 << 10):
            yield data[start:start + (64 << 10)]

    return read


async def test_an_image_is_fetched_once_by_id(tmp_path: Path) -> None:
    cache, opened = ImageCache(tmp_path / "_base"), list[int]()
    first = await cache.fetch("img-1", source(RAW, opened))
    assert (first.format, first.virtual_size) == ("raw", len(RAW))
    assert first.path.read_bytes() == RAW and not first.path.stat().st_mode & 0o222  # read-only
    again = await cache.fetch("img-1", source(b"other", opened))
    assert again == first and opened == [1]
    assert cache.has("img-1") and not cache.has("img-2") and not cache.has(None)
    assert await cache.fetch("img-1", None) == first  # cached: no source needed


async def test_an_image_without_an_id_is_kept_by_content(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "_base")
    a = await cache.fetch(None, source(RAW))
    b = await cache.fetch(None, source(RAW))
    assert a.path == b.path and a.path.name.startswith("sha256-")


async def test_an_id_that_is_no_plain_name_is_hashed(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "_base")
    image = await cache.fetch("../../etc/passwd", source(RAW))
    assert image.path.parent == tmp_path / "_base" and image.path.name.startswith("id-")


async def test_nothing_to_boot(tmp_path: Path) -> None:
    with pytest.raises(SpawnFailed, match="no image to boot"):
        await ImageCache(tmp_path / "_base").fetch(None, None)
    with pytest.raises(SpawnFailed, match="not cached"):
        await ImageCache(tmp_path / "_base").fetch("img-9", None)


@pytest.mark.parametrize(("content", "reason"), [
    (b"QFI\xfb" + bytes(60), "cannot be used"),  # a truncated qcow2 header
    (bytes(0x8001) + b"CD001" + bytes(0x10000), "is iso"),  # an ISO: not a disk to boot
])
async def test_refused_images_leave_nothing(tmp_path: Path, content: bytes, reason: str) -> None:
    cache = ImageCache(tmp_path / "_base")
    with pytest.raises(SpawnFailed, match=reason):
        await cache.fetch("bad", source(content))
    assert list((tmp_path / "_base").iterdir()) == []


async def test_a_failing_source_leaves_nothing(tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield RAW[:1024]
        raise ConnectionError("image service went away")

    with pytest.raises(SpawnFailed, match="went away"):
        await ImageCache(tmp_path / "_base").fetch("img-1", broken)
    assert list((tmp_path / "_base").iterdir()) == []
