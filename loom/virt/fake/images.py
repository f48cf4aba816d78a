"""Reading an image as a host copies it to disk, once per image."""

from __future__ import annotations

import asyncio
import hashlib

from loom import errors
from loom.virt.driver import (
    ImageSource,
    InstanceSpec,
    SpawnFailed,
)

GIB = 1 << 30


# Images being read now, by (cache, image id): the spawns that ask for one
# meanwhile wait for that read instead of reading it again (a host copies an
# image once, as Nova's image cache does under a lock per image).
_READING: dict[tuple[int, str], asyncio.Future[None]] = {}


async def _cached_image(cache: dict[str, tuple[str | None, int]], open_image: ImageSource | None,
                        spec: InstanceSpec) -> tuple[str | None, int]:
    """``_read_image`` for a spawn, once per image id; the size is checked
    against each instance's root disk all the same."""
    if open_image is None or not spec.image_id:
        return await _read_image(open_image, spec, limit_gb=spec.root_gb)
    key = (id(cache), spec.image_id)
    while spec.image_id not in cache:
        reading = _READING.get(key)
        if reading is not None:
            await asyncio.shield(reading)  # if that read failed, this spawn tries for itself
            continue
        reading = _READING[key] = asyncio.get_running_loop().create_future()
        try:
            cache[spec.image_id] = await _read_image(open_image, spec, limit_gb=0)
        finally:
            del _READING[key]
            reading.set_result(None)
    digest, size = cache[spec.image_id]
    if spec.root_gb and size > spec.root_gb * GIB:
        raise SpawnFailed(f"image {spec.image_id} is larger than the {spec.root_gb} GB root disk "
                          f"of instance {spec.uuid}", instance=spec.uuid)
    return digest, size


async def _read_image(open_image: ImageSource | None, spec: InstanceSpec, *,
                      limit_gb: int) -> tuple[str | None, int]:
    """Read the image as a real driver copies it to disk: its sha256 and size.
    A non-zero ``limit_gb`` is the disk it must fit in."""
    if open_image is None:
        return None, 0
    digest, size = hashlib.sha256(), 0
    try:
        async for chunk in open_image():
            digest.update(chunk)
            size += len(chunk)
            if limit_gb and size > limit_gb * GIB:
                raise SpawnFailed(f"image {spec.image_id} is larger than the {limit_gb} GB root disk "
                                  f"of instance {spec.uuid}", instance=spec.uuid)
    except errors.LoomError:
        raise
    except Exception as exc:
        raise SpawnFailed(f"reading image {spec.image_id} for instance {spec.uuid} failed: {exc}",
                          instance=spec.uuid) from exc
    return digest.hexdigest(), size
