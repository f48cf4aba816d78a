"""``createImage`` and ``createBackup``: the API creates the image record
(queued, with the properties Nova gives a snapshot), moves the server into
its task state and casts to the host, which takes and uploads the snapshot
(loom/compute/snapshot.py). ``create_snapshot_image`` also makes shelve
images."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from loom.api.compute.action_base import (
    Handler,
    Transition,
    authorized,
    begin,
    body_object,
    check_ready,
)
from loom.api.compute.base import base_url, field_error
from loom.api.http import JSON, Call, empty
from loom.compute.rpcapi import ComputeAPI
from loom.db.models import Image, Instance
from loom.errors import Forbidden, QuotaExceeded
from loom.image import images as image_records
from loom.image.client import LocalImageClient
from loom.objects import quotas
from loom.policy.enforcer import ADMIN_OR_PROJECT_MEMBER, Rule

CREATE_IMAGE = Transition("createImage", "os_compute_api:servers:create_image",
                          ("active", "stopped", "paused", "suspended"), "image_snapshot_pending", locks=False)
CREATE_BACKUP = Transition("createBackup", "os_compute_api:os-create-backup", ("active", "stopped"),
                           "image_backup", locks=False)
# Base image properties a snapshot does not inherit (Nova's, and its default
# non_inheritable_image_properties), nor any in the os_glance namespace.
NON_INHERITABLE = frozenset({"img_signature", "img_signature_hash_method", "img_signature_key_type",
                             "img_signature_certificate_uuid", "cache_in_nova", "bittorrent"})
_METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
_DIGITS = re.compile(r"^[0-9]*$")


def image_name(call: Call, value: Any) -> str:
    """Nova's ``name``: 1 to 255 characters, no surrounding whitespace (2.0
    strips it instead)."""
    if not isinstance(value, str):
        raise field_error("name", value, f"{value!r} is not of type 'string'")
    if str(call.version) == "2.0":
        value = value.strip()
    if not value:
        raise field_error("name", value, f"{value!r} is too short")
    if len(value) > 255:
        raise field_error("name", value, f"{value!r} is too long")
    if value != value.strip() or not value.isprintable():
        raise field_error("name", value, "An invalid 'name' value was provided. The name must be: printable "
                                         "characters. Can not start or end with whitespace.")
    return value


def image_metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise field_error("metadata", value, f"{value!r} is not of type 'object'")
    bad = [k for k in value if not _METADATA_KEY.match(k)]
    if bad:
        raise field_error("metadata", value, f"Additional properties are not allowed "
                                             f"({', '.join(map(repr, sorted(bad)))} was unexpected)")
    for v in value.values():
        if not isinstance(v, str):
            raise field_error("metadata", value, f"{v!r} is not of type 'string'")
        if len(v) > 255:
            raise field_error("metadata", value, f"{v!r} is too long")
    return dict(value)


async def check_metadata_quota(call: Call, metadata: dict[str, str]) -> None:
    """Before 2.39 the image's metadata counts against metadata_items."""
    if not metadata or call.version.at_least("2.39"):
        return
    async with call.deps.db.session() as session:
        try:
            await quotas.check_metadata_items(session, call.deps.settings.quota, call.ctx.project_id or "",
                                              call.ctx.user_id or "", len(metadata))
        except QuotaExceeded:
            raise Forbidden("Image metadata limit exceeded") from None


async def precheck(call: Call, t: Transition) -> Instance:
    """What ``begin`` will check, before an image is made for the action
    (``begin`` checks again under the row's lock)."""
    async with call.deps.db.session() as session:
        row = await authorized(session, call, t.rule)
    check_ready(call, row, t)
    return row


async def create_snapshot_image(call: Call, row: Instance, name: str, image_type: str,
                                extra: dict[str, str] | None = None) -> dict[str, Any]:
    """A queued image for a snapshot of ``row``, as Nova makes it: the base
    image's properties (less the non-inheritable ones), instance_uuid,
    user_id, image_type and base_image_ref, min_disk and min_ram from the
    flavor and image, ``extra`` winning. A snapshot's formats are left for
    the host to set; a backup keeps the base image's. Another project's
    server gives a shared image naming its owner."""
    async with call.deps.db.session() as session:
        base = await session.get(Image, row.image_ref) if row.image_ref else None
    properties = {k: v for k, v in ((base.properties or {}) if base else {}).items()
                  if k not in NON_INHERITABLE and not k.startswith("os_glance")}
    properties.setdefault("base_image_ref", row.image_ref or "")
    properties.update({"instance_uuid": row.uuid, "user_id": str(call.ctx.user_id), "image_type": image_type})
    fields: dict[str, Any] = {"name": name, "min_ram": (base.min_ram if base else 0) or 0,
                              "min_disk": max((base.min_disk if base else 0) or 0, int(row.flavor.get("root_gb", 0)))}
    if image_type != "snapshot" and base is not None:
        fields.update(disk_format=base.disk_format, container_format=base.container_format)
    if call.ctx.project_id != row.project_id:
        fields["visibility"] = "shared"
        properties["instance_owner"] = row.project_id
    else:
        fields["visibility"] = "private"
    properties.update(extra or {})
    try:
        return await LocalImageClient(call.deps.images).create(call.ctx, **properties, **fields)
    except image_records.OverLimit as exc:
        raise Forbidden(exc.message) from None  # Nova answers an over-quota snapshot with a 403


async def delete_image(call: Call, image_id: str) -> None:
    await LocalImageClient(call.deps.images).delete(call.ctx.elevated(), image_id)


async def _begin_or_delete(call: Call, t: Transition, image_id: str) -> Instance:
    try:
        return await begin(call, t)
    except BaseException:
        await delete_image(call, image_id)
        raise


async def _create_image(call: Call, value: Any) -> Response:
    body = body_object("createImage", value, ("name", "metadata"), ("name",))
    name = image_name(call, body["name"])
    metadata = image_metadata(body.get("metadata", {}))
    await check_metadata_quota(call, metadata)
    row = await precheck(call, CREATE_IMAGE)
    image = await create_snapshot_image(call, row, name, "snapshot", metadata)
    row = await _begin_or_delete(call, CREATE_IMAGE, image["id"])
    assert row.host is not None
    await ComputeAPI(call.deps.bus).snapshot_instance(call.ctx, row.host, row.uuid, image["id"])
    if call.version.at_least("2.45"):
        return JSON({"image_id": image["id"]}, status_code=202)
    return empty(202, {"Location": f"{call.deps.settings.public_url}/image/images/{image['id']}"})


def _rotation(value: Any) -> int:
    """Nova's non_negative_integer: an integer, or a string of digits."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise field_error("rotation", value, f"{value!r} is not of type 'integer', 'string'")
    if isinstance(value, str) and (not value or not _DIGITS.match(value)):
        raise field_error("rotation", value, f"{value!r} does not match '^[0-9]*$'")
    if int(value) < 0:
        raise field_error("rotation", value, f"{value} is less than the minimum of 0")
    return int(value)


async def _create_backup(call: Call, value: Any) -> Response:
    body = body_object("createBackup", value, ("name", "backup_type", "rotation", "metadata"),
                       ("name", "backup_type", "rotation"))
    name = image_name(call, body["name"])
    backup_type = body["backup_type"]
    if not isinstance(backup_type, str):
        raise field_error("backup_type", backup_type, f"{backup_type!r} is not of type 'string'")
    rotation = _rotation(body["rotation"])
    metadata = image_metadata(body.get("metadata", {}))
    await check_metadata_quota(call, metadata)
    row = await precheck(call, CREATE_BACKUP)
    image = await create_snapshot_image(call, row, name, "backup", {**metadata, "backup_type": backup_type})
    row = await _begin_or_delete(call, CREATE_BACKUP, image["id"])
    assert row.host is not None
    await ComputeAPI(call.deps.bus).backup_instance(call.ctx, row.host, row.uuid, image["id"], backup_type,
                                                    rotation)
    if call.version.at_least("2.45"):
        return JSON({"image_id": image["id"]}, status_code=202)
    # Before 2.45 the image is named only when the rotation keeps it.
    return empty(202, {"Location": f"{base_url(call)}/images/{image['id']}"} if rotation > 0 else None)


ACTIONS: dict[str, Handler] = {"createImage": _create_image, "createBackup": _create_backup}

RULES = [
    Rule("os_compute_api:servers:create_image", ADMIN_OR_PROJECT_MEMBER, "Create an image from a server."),
    Rule("os_compute_api:os-create-backup", ADMIN_OR_PROJECT_MEMBER, "Create a back up of a server."),
]
