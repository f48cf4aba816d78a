"""``/v2/images/{id}/file``: streaming upload and download."""

from __future__ import annotations

from starlette.responses import Response, StreamingResponse

from loom.api.http import Call, empty
from loom.api.image.images import UnsupportedMediaType, enforce
from loom.errors import Forbidden
from loom.image import images
from loom.image import upload as uploads


async def upload(call: Call) -> Response:
    enforce(call, "image:upload_image")
    content_type = call.request.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    if content_type != "application/octet-stream":
        raise UnsupportedMediaType(f"Unsupported Content-Type {content_type!r}: use application/octet-stream.")
    service = call.deps.images
    await uploads.upload(call.deps.db, service.store, call.ctx, call.params["image_id"], call.request.stream(),
                         settings=call.deps.settings.image)
    return empty()


async def download(call: Call) -> Response:
    enforce(call, "image:download_image")
    async with call.deps.db.session() as session:
        image = await images.get(session, call.ctx, call.params["image_id"])
    if image.status == "deactivated" and not call.ctx.is_admin:
        raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
    store = call.deps.images.store
    if image.status not in ("active", "deactivated") or not store.exists(image.id):
        return empty()
    headers = {"Content-Length": str(image.size), "Content-MD5": image.checksum or "",
               "Content-Disposition": f'attachment; filename="{image.id}"'}
    body = store.read(image.id, call.deps.settings.image.chunk_size)
    return StreamingResponse(body, media_type="application/octet-stream", headers=headers)
