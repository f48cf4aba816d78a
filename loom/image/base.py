"""The interface through which other Loom services reach images: in
process where there is the database (client.LocalImageClient), over the
Image API elsewhere (remote.HttpImageClient). Imports nothing of the
database, so that compute hosts do not load it."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from typing import Any

from loom.context import RequestContext


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

    async def close(self) -> None:
        """Release what the client holds (connections); nothing by default."""
        return None
