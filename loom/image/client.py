"""One interface through which other Loom services reach images: in-process
in the embedded mode, over the Image API on hosts without the database."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from typing import Any

import httpx

from loom.context import RequestContext
from loom.errors import Conflict, Forbidden, Invalid, LoomError, NotFound, Unauthorized
from loom.image import images, upload, views
from loom.image.service import ImageService


class ImageClient(abc.ABC):
    @abc.abstractmethod
    async def show(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        """The image as the Image API shows it; NotFound if the caller cannot see it."""

    @abc.abstractmethod
    def download(self, ctx: RequestContext, image_id: str) -> AsyncIterator[bytes]:
        """The image's data, streamed."""

    @abc.abstractmethod
    async def create(self, ctx: RequestContext, **fields: Any) -> dict[str, Any]:
        """A new queued image (for snapshots)."""

    @abc.abstractmethod
    async def upload(self, ctx: RequestContext, image_id: str, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        """Upload a queued image's data; returns the image, now active."""

    @abc.abstractmethod
    async def update(self, ctx: RequestContext, image_id: str, **fields: Any) -> dict[str, Any]:
        """Set core attributes or custom properties (the formats only while
        queued: a snapshot's are known once the hypervisor has taken it)."""

    @abc.abstractmethod
    async def list_(self, ctx: RequestContext, **filters: str) -> list[dict[str, Any]]:
        """The images the caller sees whose attributes or properties equal
        ``filters``, newest first."""

    @abc.abstractmethod
    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        """Delete the image and its data."""


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


_ERRORS: dict[int, type[LoomError]] = {400: Invalid, 401: Unauthorized, 403: Forbidden, 404: NotFound,
                                       409: Conflict, 413: images.OverLimit}


class HttpImageClient(ImageClient):
    """The Image API over HTTP with a token, for hosts without the database."""

    def __init__(self, endpoint: str, token: str, *, timeout: float = 60) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.endpoint + "/v2", headers={"X-Auth-Token": token},
                                      timeout=timeout)

    async def close(self) -> None:
        await self.http.aclose()

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise _ERRORS.get(response.status_code, LoomError)(message)

    async def show(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/images/{image_id}")
        self._raise(r)
        return dict(r.json())

    async def download(self, ctx: RequestContext, image_id: str) -> AsyncIterator[bytes]:
        async with self.http.stream("GET", f"/images/{image_id}/file") as r:
            if r.status_code >= 400:
                await r.aread()
                self._raise(r)
            if r.status_code == 204:
                raise Conflict(f"Image {image_id} has no data.")
            async for chunk in r.aiter_bytes():
                yield chunk

    async def create(self, ctx: RequestContext, **fields: Any) -> dict[str, Any]:
        r = await self.http.post("/images", json=fields)
        self._raise(r)
        return dict(r.json())

    async def upload(self, ctx: RequestContext, image_id: str, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        r = await self.http.put(f"/images/{image_id}/file", content=chunks,
                                headers={"Content-Type": "application/octet-stream"})
        self._raise(r)
        return await self.show(ctx, image_id)

    async def update(self, ctx: RequestContext, image_id: str, **fields: Any) -> dict[str, Any]:
        patch = [{"op": "add", "path": f"/{key}", "value": value} for key, value in fields.items()]
        r = await self.http.patch(f"/images/{image_id}", json=patch,
                                  headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        self._raise(r)
        return dict(r.json())

    async def list_(self, ctx: RequestContext, **filters: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {**filters, "sort": "created_at:desc", "limit": 1000}
        while True:
            r = await self.http.get("/images", params=params)
            self._raise(r)
            page = r.json()
            found += page["images"]
            if not page.get("next") or not page["images"]:
                return found
            params["marker"] = page["images"][-1]["id"]

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        self._raise(await self.http.delete(f"/images/{image_id}"))
