"""A fake host reads each image once, however many spawns ask for it at the
same moment; a failed read leaves the others to try for themselves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from loom.virt.driver import SpawnFailed
from loom.virt.fake.images import _READING, _cached_image
from tests.unit.test_virt_fake import spec


async def test_concurrent_spawns_of_one_image_read_it_once() -> None:
    reads = 0
    gate = asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        nonlocal reads
        reads += 1
        await gate.wait()
        yield b"image data"

    cache: dict[str, tuple[str | None, int]] = {}
    spawns = [asyncio.create_task(_cached_image(cache, source, spec(image_id="img-1"))) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*spawns)
    assert reads == 1
    assert len(set(results)) == 1 and results[0][1] == len(b"image data")
    assert not _READING


async def test_when_the_read_fails_the_waiting_spawns_read_again() -> None:
    reads = 0

    async def flaky() -> AsyncIterator[bytes]:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        if reads == 1:
            raise OSError("connection reset")
        yield b"data"

    cache: dict[str, tuple[str | None, int]] = {}
    first = asyncio.create_task(_cached_image(cache, flaky, spec(image_id="img-2")))
    await asyncio.sleep(0)
    second = asyncio.create_task(_cached_image(cache, flaky, spec(image_id="img-2")))
    with pytest.raises(SpawnFailed, match="connection reset"):
        await first
    assert (await second)[1] == 4
    assert reads == 2 and not _READING
