"""The Image API over HTTP, for hosts without the database (compute
hosts): authenticated as the service user, at the configured endpoint or
the catalog's, both found on first use (the API may start after them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from loom.context import RequestContext
from loom.errors import Conflict, Forbidden, Invalid, LoomError, NotFound, Unauthorized
from loom.identity.session import ServiceSession, TokenAuth
from loom.image.base import ImageClient


class ImageOverLimit(LoomError):
    """A quota on images would be exceeded (the Image API's 413)."""

    status = 413


_ERRORS: dict[int, type[LoomError]] = {400: Invalid, 401: Unauthorized, 403: Forbidden, 404: NotFound,
                                       409: Conflict, 413: ImageOverLimit}


class HttpImageClient(ImageClient):
    """Every call as the service user (admin): the API has already checked
    that the request's user may use the image. Nova forwards the user's own
    token; Loom's requests do not carry one past the API."""

    def __init__(self, session: ServiceSession, endpoint: str = "", *, timeout: float = 60,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.session = session
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    async def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            endpoint = self.endpoint or await self.session.endpoint("image")
            if self._http is None:
                self.endpoint = endpoint
                self._http = httpx.AsyncClient(base_url=endpoint + "/v2", auth=TokenAuth(self.session),
                                               timeout=self.timeout, transport=self._transport)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        await self.session.close()

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
        r = await (await self._client()).get(f"/images/{image_id}")
        self._raise(r)
        return dict(r.json())

    async def download(self, ctx: RequestContext, image_id: str) -> AsyncIterator[bytes]:
        async with (await self._client()).stream("GET", f"/images/{image_id}/file") as r:
            if r.status_code >= 400:
                await r.aread()
                self._raise(r)
            if r.status_code == 204:
                raise Conflict(f"Image {image_id} has no data.")
            async for chunk in r.aiter_bytes():
                yield chunk

    async def create(self, ctx: RequestContext, **fields: Any) -> dict[str, Any]:
        # The owner is the request's project, not the service user's.
        if ctx.project_id and "owner" not in fields:
            fields["owner"] = ctx.project_id
        r = await (await self._client()).post("/images", json=fields)
        self._raise(r)
        return dict(r.json())

    async def upload(self, ctx: RequestContext, image_id: str, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        r = await (await self._client()).put(f"/images/{image_id}/file", content=chunks,
                                             headers={"Content-Type": "application/octet-stream"})
        self._raise(r)
        return await self.show(ctx, image_id)

    async def update(self, ctx: RequestContext, image_id: str, **fields: Any) -> dict[str, Any]:
        patch = [{"op": "add", "path": f"/{key}", "value": value} for key, value in fields.items()]
        r = await (await self._client()).patch(
            f"/images/{image_id}", json=patch,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        self._raise(r)
        return dict(r.json())

    async def list_(self, ctx: RequestContext, **filters: str) -> list[dict[str, Any]]:
        http = await self._client()
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {**filters, "sort": "created_at:desc", "limit": 1000}
        while True:
            r = await http.get("/images", params=params)
            self._raise(r)
            page = r.json()
            found += page["images"]
            if not page.get("next") or not page["images"]:
                return found
            params["marker"] = page["images"][-1]["id"]

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        self._raise(await (await self._client()).delete(f"/images/{image_id}"))
