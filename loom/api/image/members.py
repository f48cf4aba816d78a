"""``/v2/images/{id}/members``: sharing an image with other projects."""

from __future__ import annotations

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.api.image.images import enforce
from loom.db.models import ImageMember
from loom.errors import Conflict, Forbidden, Invalid
from loom.image import images, views

STATUSES = ("pending", "accepted", "rejected")


async def _shared_image(call: Call, session: object, owner_only: bool) -> object:
    image = await images.get(session, call.ctx, call.params["image_id"])  # type: ignore[arg-type]
    if image.visibility != "shared":
        raise Forbidden(f"Only shared images have members: image {image.id} is {image.visibility}.")
    if owner_only and not images.may_change(call.ctx, image):
        raise Forbidden("Only the image owner can manage its members.")
    return image


async def create(call: Call) -> Response:
    enforce(call, "image:add_member")
    body = await call.json_object()
    member_id = body.get("member")
    if not isinstance(member_id, str) or not member_id:
        raise Invalid("'member' is a required property: the id of the project to share with.")
    async with call.deps.db.session.begin() as session:
        image = await _shared_image(call, session, owner_only=True)
        if await session.get(ImageMember, (image.id, member_id)) is not None:  # type: ignore[attr-defined]
            raise Conflict(f"Member {member_id} already exists for image {image.id}.")  # type: ignore[attr-defined]
        row = ImageMember(image_id=image.id, member_id=member_id, status="pending")  # type: ignore[attr-defined]
        session.add(row)
        await session.flush()
    return JSON(views.member(row))


async def list_(call: Call) -> Response:
    enforce(call, "image:get_members")
    async with call.deps.db.session() as session:
        image = await _shared_image(call, session, owner_only=False)
        rows = await images.members(session, image.id)  # type: ignore[attr-defined]
    if not images.may_change(call.ctx, image):  # type: ignore[arg-type]
        # A member sees only its own membership.
        rows = [r for r in rows if r.member_id == call.ctx.project_id]
    return JSON({"members": [views.member(r) for r in rows], "schema": "/v2/schemas/members"})


async def show(call: Call) -> Response:
    enforce(call, "image:get_members")
    async with call.deps.db.session() as session:
        image = await _shared_image(call, session, owner_only=False)
        row = await images.member(session, image.id, call.params["member_id"])  # type: ignore[attr-defined]
    if not images.may_change(call.ctx, image) and row.member_id != call.ctx.project_id:  # type: ignore[arg-type]
        raise images.not_found(call.params["image_id"])
    return JSON(views.member(row))


async def update(call: Call) -> Response:
    """The member project accepts or rejects the share."""
    enforce(call, "image:modify_member")
    body = await call.json_object()
    status = body.get("status")
    if status not in STATUSES:
        raise Invalid(f"Invalid status {status!r}: use one of {', '.join(STATUSES)}.")
    async with call.deps.db.session.begin() as session:
        image = await _shared_image(call, session, owner_only=False)
        row = await images.member(session, image.id, call.params["member_id"])  # type: ignore[attr-defined]
        if row.member_id != call.ctx.project_id and not call.ctx.is_admin:
            raise Forbidden("Only the member project can accept or reject a shared image.")
        row.status = status
    return JSON(views.member(row))


async def delete(call: Call) -> Response:
    enforce(call, "image:delete_member")
    async with call.deps.db.session.begin() as session:
        image = await _shared_image(call, session, owner_only=True)
        row = await images.member(session, image.id, call.params["member_id"])  # type: ignore[attr-defined]
        await session.delete(row)
    return empty()
