"""The image service as the API and other Loom services use it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from loom.config import Settings
from loom.db.engine import Database
from loom.image import upload
from loom.image.store import FileStore

LOG = logging.getLogger(__name__)


class ImageService:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.store = FileStore(settings.image_dir)
        self._recovery: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Roll back uploads that died with an earlier process, now and then
        whenever a lease runs out."""
        await self._recover()
        self._recovery = asyncio.create_task(self._recover_forever(), name="image-upload-recovery")

    async def stop(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
            self._recovery = None

    async def _recover(self) -> None:
        try:
            await upload.recover(self.db, self.store)
        except Exception:
            LOG.exception("recovering dead uploads failed")

    async def _recover_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.image.upload_lease / 2)
            await self._recover()
