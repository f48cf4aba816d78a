"""Image records: who may see which, listing with filters, sorting and
paging, creation within quota, updates and deletion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, and_, bindparam, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.context import RequestContext
from loom.db import fast
from loom.db.models import Image, ImageMember
from loom.errors import Conflict, Forbidden, Invalid, LoomError, NotFound

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at",
             "visibility", "owner", "min_disk", "min_ram", "virtual_size")


_FILTER_KEYS = {"name", "status", "owner", "disk_format", "container_format", "id", "protected", "os_hidden",
                "size_min", "size_max", "visibility", "member_status"}


class OverLimit(LoomError):
    """A quota on images would be exceeded."""

    status = 413


def not_found(image_id: str) -> NotFound:
    return NotFound(f"No image found with ID {image_id}", image_id=image_id)


def _member_of(project_id: str | None) -> Any:
    return Image.id.in_(select(ImageMember.image_id).where(ImageMember.member_id == (project_id or "")))


def visible(ctx: RequestContext) -> Any:
    """What a caller may see at all (by id): its own, public, community, and
    images shared with its project whatever the member status."""
    if ctx.is_admin:
        return True
    return or_(Image.owner == ctx.project_id, Image.visibility.in_(("public", "community")),
               and_(Image.visibility == "shared", _member_of(ctx.project_id)))


async def get(session: AsyncSession, ctx: RequestContext, image_id: str, *, for_update: bool = False) -> Image:
    query = select(Image).where(Image.id == image_id, visible(ctx))
    if for_update:
        query = query.with_for_update()
    image = await session.scalar(query)
    if image is None:
        raise not_found(image_id)
    return image


_LOOKUP = fast.Statement(
    select(Image.id, Image.status, Image.size, Image.min_ram, Image.min_disk, Image.disk_format, Image.properties)
    .where(Image.id == bindparam("image_id"),
           or_(bindparam("admin", type_=Boolean), Image.owner == bindparam("project"),
               Image.visibility.in_(("public", "community")),
               and_(Image.visibility == "shared",
                    Image.id.in_(select(ImageMember.image_id).where(ImageMember.member_id == bindparam("project")))))))


async def lookup(session: fast.Session, ctx: RequestContext, image_id: str) -> Any:
    """What a boot reads of an image the caller may see, as a row (``get``
    without the ORM): id, status, size, min_ram, min_disk, disk_format,
    properties."""
    row = await fast.first(session, _LOOKUP, {"image_id": image_id, "admin": ctx.is_admin,
                                              "project": ctx.project_id or ""})
    if row is None:
        raise not_found(image_id)
    return row


def may_change(ctx: RequestContext, image: Image) -> bool:
    return ctx.is_admin or (image.owner is not None and image.owner == ctx.project_id)


@dataclass
class Page:
    images: list[Image]
    next_marker: str | None


async def list_(session: AsyncSession, ctx: RequestContext, filters: dict[str, Any], tags: list[str],
                sort: list[tuple[str, str]], limit: int, marker: str | None) -> Page:
    query = select(Image)
    member_status = filters.get("member_status", "accepted")
    visibility = filters.get("visibility")
    if visibility is not None and visibility not in (*VISIBILITIES, "all"):
        raise Invalid(f"Invalid visibility value: {visibility}")
    if not ctx.is_admin:
        query = query.where(_listable(ctx, visibility, member_status))
    if visibility not in (None, "all"):
        query = query.where(Image.visibility == visibility)
    for key in ("name", "status", "owner", "disk_format", "container_format", "id"):
        if filters.get(key) is not None:
            value = filters[key]
            if isinstance(value, str) and value.startswith("in:"):
                query = query.where(getattr(Image, key).in_(value[3:].split(",")))
            else:
                query = query.where(getattr(Image, key) == value)
    if "protected" in filters:
        query = query.where(Image.protected == _bool(filters["protected"], "protected"))
    hidden = filters.get("os_hidden")
    query = query.where(Image.os_hidden == (_bool(hidden, "os_hidden") if hidden is not None else False))
    for key, op in (("size_min", Image.size.__ge__), ("size_max", Image.size.__le__)):
        if filters.get(key) is not None:
            query = query.where(op(_int(filters[key], key)))
    rows = list(await session.scalars(query))
    # Any other filter names a custom property, as in Glance.
    props = {k: v for k, v in filters.items() if k not in _FILTER_KEYS}
    if props:
        rows = [i for i in rows if all((i.properties or {}).get(k) == v for k, v in props.items())]
    if tags:
        rows = [i for i in rows if set(tags) <= set(i.tags or ())]
    rows.sort(key=lambda i: i.id, reverse=sort[-1][1] == "desc" if sort else True)
    for key, direction in reversed(sort):
        rows.sort(key=lambda i, k=key: _sort_value(i, k), reverse=direction == "desc")
    if marker is not None:
        ids = [i.id for i in rows]
        if marker not in ids:
            raise Invalid(f"Invalid marker. Image {marker} could not be found.")
        rows = rows[ids.index(marker) + 1:]
    page = rows[:limit]
    return Page(page, page[-1].id if len(rows) > limit and page else None)


def _listable(ctx: RequestContext, visibility: str | None, member_status: str) -> Any:
    """Glance's default listing: own images, public ones, and images shared
    with the caller whose membership has the requested status. Community
    images are listed only when asked for."""
    if member_status not in ("accepted", "pending", "rejected", "all"):
        raise Invalid(f"Invalid member_status value: {member_status}")
    member = select(ImageMember.image_id).where(ImageMember.member_id == (ctx.project_id or ""))
    if member_status != "all":
        member = member.where(ImageMember.status == member_status)
    shared = and_(Image.visibility == "shared", Image.id.in_(member))
    own = Image.owner == ctx.project_id if ctx.project_id else false()
    if visibility == "community":
        return or_(own, Image.visibility == "community")
    if visibility == "all":
        return or_(own, Image.visibility.in_(("public", "community")), shared)
    return or_(own, Image.visibility == "public", shared)


def _sort_value(image: Image, key: str) -> Any:
    value = getattr(image, key)
    return (value is not None, value if value is not None else 0)


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise Invalid(f"Invalid value for {name}: {value}")


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"Invalid value for {name}: {value}") from None


async def count_owned(session: AsyncSession, project_id: str) -> tuple[int, int]:
    """How many images the project owns, and the bytes of their data."""
    row = (await session.execute(select(func.count(), func.coalesce(func.sum(Image.size), 0)).where(
        Image.owner == project_id))).one()
    return int(row[0]), int(row[1])


async def create(session: AsyncSession, values: dict[str, Any], quota_images: int) -> Image:
    if values.get("id") and await session.get(Image, values["id"]) is not None:
        raise Conflict(f"Image with identifier {values['id']} already exists!")
    image = Image(**values)
    session.add(image)
    await session.flush()
    # Counted after the insert, in the same transaction: concurrent creates
    # cannot both slip under the limit.
    if quota_images >= 0 and image.owner:
        count, _ = await count_owned(session, image.owner)
        if count > quota_images:
            raise OverLimit(f"Maximum number of images exceeded: the limit is {quota_images}.")
    return image


async def delete(session: AsyncSession, ctx: RequestContext, image_id: str) -> Image:
    image = await get(session, ctx, image_id, for_update=True)
    if not may_change(ctx, image):
        raise Forbidden("You are not permitted to delete this image.")
    if image.protected:
        raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
    if image.status == "saving":
        # Deleting under a running upload would leave its data behind.
        raise Conflict(f"Image {image_id} is being uploaded; try again when the upload ends.")
    await session.delete(image)
    return image


async def members(session: AsyncSession, image_id: str) -> list[ImageMember]:
    query = select(ImageMember).where(ImageMember.image_id == image_id).order_by(ImageMember.created_at)
    return list(await session.scalars(query))


async def member(session: AsyncSession, image_id: str, member_id: str) -> ImageMember:
    row = await session.get(ImageMember, (image_id, member_id))
    if row is None:
        raise NotFound(f"{member_id} is not a member of image {image_id}.")
    return row


def not_found_tag(tag: str) -> NotFound:
    return NotFound(f"Tag {tag} not found.", tag=tag)
