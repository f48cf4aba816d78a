"""An image as the Image API v2 shows it (and as Loom's image clients
return it, in-process or over HTTP)."""

from __future__ import annotations

from typing import Any

from loom.db.models import Image, ImageMember
from loom.timeutils import isotime

# Attributes an image always shows; anything else is a custom property.
CORE = ("id", "name", "status", "visibility", "protected", "os_hidden", "owner", "disk_format",
        "container_format", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
        "min_disk", "min_ram", "tags", "created_at", "updated_at")


def image(i: Image) -> dict[str, Any]:
    out: dict[str, Any] = dict(i.properties or {})
    out.update({
        "id": i.id, "name": i.name, "status": i.status, "visibility": i.visibility,
        "protected": i.protected, "os_hidden": i.os_hidden, "owner": i.owner,
        "disk_format": i.disk_format, "container_format": i.container_format,
        "size": i.size, "virtual_size": i.virtual_size, "checksum": i.checksum,
        "os_hash_algo": i.os_hash_algo, "os_hash_value": i.os_hash_value,
        "min_disk": i.min_disk, "min_ram": i.min_ram, "tags": list(i.tags or ()),
        "created_at": isotime(i.created_at), "updated_at": isotime(i.updated_at or i.created_at),
        "self": f"/v2/images/{i.id}", "file": f"/v2/images/{i.id}/file", "schema": "/v2/schemas/image",
    })
    return out


def member(m: ImageMember) -> dict[str, Any]:
    return {"image_id": m.image_id, "member_id": m.member_id, "status": m.status,
            "created_at": isotime(m.created_at), "updated_at": isotime(m.updated_at or m.created_at),
            "schema": "/v2/schemas/member"}
