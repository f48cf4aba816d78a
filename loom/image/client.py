"""Images in process, for processes with the database (the embedded mode,
the API); hosts without it use loom.image.remote.HttpImageClient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from loom.context import RequestContext
from loom.errors import Conflict, Forbidden
from loom.image import images, upload, views
from loom.image.base import ImageClient
from loom.image.service import ImageService

__all__ = ["ImageClient", "LocalImageClient"]


class LocalImageClient(ImageClient):
    def __init__(self, service: ImageService) -> None:
        self.service = service

    async def show(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        async with self.service.db.session() as session:
            return views.image(await images.get(session, ctx, image_id))

    async def download(self, ctx: RequestContext, image_id: str) -> AsyncIterator[bytes]:
        image = await self.show(ctx, image_id)
        if image["status"] != "active":
            raise Conflict(f"Image {image_id} is {image['status']}, not active: it has no data to read.")
        async for chunk in self.service.store.read(image_id, self.service.settings.image.chunk_size):
            yield chunk

    async def create(self, ctx: RequestContext, **fields: Any) -> dict[str, Any]:
        core = {k: fields.pop(k) for k in list(fields) if k in views.CORE}
        async with self.service.db.session.begin() as session:
            image = await images.create(session, {
                **core, "owner": fields.pop("owner", ctx.project_id),
                "visibility": fields.pop("visibility", "private"), "properties": fields, "status": "queued"},
                self.service.settings.image.quota_images)
        return views.image(image)

    async def upload(self, ctx: RequestContext, image_id: str, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        image = await upload.upload(self.service.db, self.service.store, ctx, image_id, chunks,
                                    settings=self.service.settings.image)
        return views.image(image)

    async def update(self, ctx: RequestContext, image_id: str, **fields: Any) -> dict[str, Any]:
        async with self.service.db.session.begin() as session:
            image = await images.get(session, ctx, image_id, for_update=True)
            if not images.may_change(ctx, image):
                raise Forbidden("You are not permitted to modify this image.")
            formats = {"disk_format", "container_format"} & set(fields)
            if formats and image.status != "queued":
                raise Forbidden(f"Attribute {sorted(formats)[0]} can be only replaced for a queued image.")
            properties = dict(image.properties or {})
            for key, value in fields.items():
                if key in _SETTABLE:
                    setattr(image, key, value)
                elif key in views.CORE:
                    raise Forbidden(f"Attribute '{key}' is read-only.")
                else:
                    properties[key] = value
            image.properties = properties
        return views.image(image)

    async def list_(self, ctx: RequestContext, **filters: str) -> list[dict[str, Any]]:
        async with self.service.db.session() as session:
            page = await images.list_(session, ctx, dict(filters), [], [("created_at", "desc")], _LIST_ALL, None)
        return [views.image(i) for i in page.images]

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        async with self.service.db.session.begin() as session:
            image = await images.delete(session, ctx, image_id)
        await self.service.store.delete(image.id)


# Attributes an update may set; the others are the service's.
_SETTABLE = ("name", "visibility", "protected", "os_hidden", "min_disk", "min_ram", "disk_format",
             "container_format")
_LIST_ALL = 1 << 20
