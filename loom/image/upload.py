"""Uploading an image's data, in phases with rollback.

1. check: the image is queued, the caller may change it, the disk and
   container formats are set;
2. claim: status ``saving`` with a lease, in its own transaction, so a
   second upload is refused with 409;
3. stream: staged to a file of its own while the lease is renewed, the
   content inspected and hashed as it arrives;
4. verify: the detected format matches the declared one and is safe, the
   byte quota holds;
5. commit: the file moves into place and the image turns ``active`` with
   its size, checksums and virtual size.

Any failure after the claim removes the staged file and puts the image
back to ``queued``, so the owner can try again; nothing partial remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

from sqlalchemy import select, update

from loom.config import ImageSettings
from loom.context import RequestContext
from loom.db import locks
from loom.db.engine import Database
from loom.db.models import Image
from loom.errors import Conflict, Forbidden, Invalid
from loom.image import images
from loom.image.inspector import StreamInspector, check_declared
from loom.image.store import FileStore, Staged
from loom.timeutils import utcnow

LOG = logging.getLogger(__name__)


async def upload(db: Database, store: FileStore, ctx: RequestContext, image_id: str,
                 chunks: AsyncIterator[bytes], *, settings: ImageSettings) -> Image:
    s = settings
    image = await _claim(db, ctx, image_id, lease=s.upload_lease)
    renew = asyncio.create_task(_renew(db, image_id, s.upload_lease))
    staged: Staged | None = None
    try:
        inspector = StreamInspector(max_virtual_size=s.max_virtual_size)
        limit = await _byte_allowance(db, image, s)
        staged = await store.stage(image_id, chunks, max_size=limit, on_chunk=inspector.feed)
        inspection = inspector.finish(staged.size)
        check_declared(inspection, image.disk_format or "")
        await _check_quota(db, image, staged.size, s)
        await store.commit(staged)
        try:
            return await _activate(db, image_id, staged, inspection.virtual_size, s.quota_bytes)
        except BaseException:
            await store.delete(image_id)
            raise
    except BaseException:
        if staged is not None:
            await store.discard(staged)
        store.clean_staging(image_id)
        await _release(db, image_id)
        raise
    finally:
        renew.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renew


async def _claim(db: Database, ctx: RequestContext, image_id: str, lease: float) -> Image:
    async with db.session.begin() as session:
        image = await images.get(session, ctx, image_id, for_update=True)
        if not images.may_change(ctx, image):
            raise Forbidden("You are not permitted to upload data for this image.")
        if image.status != "queued":
            raise Conflict(f"Image status transition from {image.status} to saving is not allowed")
        if not image.disk_format or not image.container_format:
            raise Invalid("Properties disk_format, container_format must be set prior to saving data.")
        # Claimed by a conditional update: of two racing uploads one wins.
        claimed = await session.execute(
            update(Image).where(Image.id == image_id, Image.status == "queued").values(
                status="saving", upload_lease=utcnow() + dt.timedelta(seconds=lease)))
        if claimed.rowcount != 1:
            raise Conflict(f"Image {image_id} is already being uploaded.")
        await session.refresh(image)
        return image


async def _renew(db: Database, image_id: str, lease: float) -> None:
    while True:
        await asyncio.sleep(lease / 3)
        try:
            async with db.session.begin() as session:
                await session.execute(update(Image).where(Image.id == image_id, Image.status == "saving").values(
                    upload_lease=utcnow() + dt.timedelta(seconds=lease)))
        except Exception as exc:  # the upload goes on; recovery waits for the lease
            LOG.warning("could not renew the upload lease of image %s: %s", image_id, exc)


async def _byte_allowance(db: Database, image: Image, s: ImageSettings) -> int:
    limit = s.max_image_size
    quota = s.quota_bytes
    if quota >= 0 and image.owner:
        async with db.session() as session:
            _, used = await images.count_owned(session, image.owner)
        limit = min(limit, max(quota - used, 0))
    return int(limit)


async def _check_quota(db: Database, image: Image, size: int, s: ImageSettings) -> None:
    quota = s.quota_bytes
    if quota < 0 or not image.owner:
        return
    async with db.session() as session:
        _, used = await images.count_owned(session, image.owner)
    if used + size > quota:
        raise images.OverLimit(f"Image size quota exceeded: {used + size} bytes would exceed the limit of {quota}.")


async def _activate(db: Database, image_id: str, staged: Staged, virtual_size: int, quota_bytes: int) -> Image:
    async with db.session.begin() as session:
        image = await session.get(Image, image_id, with_for_update=True)
        if image is None or image.status != "saving":
            raise Conflict(f"Image {image_id} changed during the upload.")
        # Serialise with the owner's other uploads, write, then count: two
        # uploads finishing together cannot both slip under the quota.
        if image.owner:
            await locks.lock(session, f"image-quota:{image.owner}")
        image.status = "active"
        image.size = staged.size
        image.virtual_size = virtual_size
        image.checksum = staged.md5
        image.os_hash_algo = "sha512"
        image.os_hash_value = staged.sha512
        image.upload_lease = None
        await session.flush()
        if quota_bytes >= 0 and image.owner:
            _, used = await images.count_owned(session, image.owner)
            if used > quota_bytes:
                raise images.OverLimit(f"Image size quota exceeded: {used} bytes would exceed the limit of "
                                       f"{quota_bytes}.")
        return image


async def _release(db: Database, image_id: str) -> None:
    try:
        async with db.session.begin() as session:
            await session.execute(update(Image).where(Image.id == image_id, Image.status == "saving").values(
                status="queued", upload_lease=None))
    except Exception:
        LOG.exception("could not put image %s back to queued; lease recovery will", image_id)


async def recover(db: Database, store: FileStore) -> int:
    """Roll back uploads whose uploader died (their lease ran out)."""
    async with db.session.begin() as session:
        dead = list(await session.scalars(
            update(Image).where(Image.status == "saving", Image.upload_lease < utcnow()).values(
                status="queued", upload_lease=None).returning(Image.id)))
    for image_id in dead:
        store.clean_staging(image_id)
        LOG.warning("upload of image %s died with its process; the image is queued again", image_id)
    # Staging files of images no longer being uploaded are leftovers too.
    staged_ids = store.staged_image_ids()
    if staged_ids:
        async with db.session() as session:
            saving = set(await session.scalars(select(Image.id).where(
                Image.id.in_(staged_ids), Image.status == "saving")))
        for image_id in staged_ids - saving:
            store.clean_staging(image_id)
    return len(dead)
