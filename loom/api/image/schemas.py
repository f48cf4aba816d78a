"""``/v2/schemas``: JSON schemas of images and members, as clients read them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.http import JSON, Call
from loom.errors import NotFound
from loom.image.images import CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES

_STR_OR_NULL = {"type": ["null", "string"]}
IMAGE: dict[str, Any] = {
    "name": "image",
    "additionalProperties": {"type": "string"},
    "links": [{"href": "{self}", "rel": "self"}, {"href": "{file}", "rel": "enclosure"},
              {"href": "{schema}", "rel": "describedby"}],
    "properties": {
        "id": {"type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
               "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$", "description": "An identifier for the image"},
        "name": {**_STR_OR_NULL, "maxLength": 255, "description": "Descriptive name for the image"},
        "status": {"type": "string", "readOnly": True, "enum": [
            "queued", "saving", "active", "killed", "deleted", "uploading", "importing",
            "pending_delete", "deactivated"]},
        "visibility": {"type": "string", "enum": list(VISIBILITIES)},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "checksum": {**_STR_OR_NULL, "readOnly": True, "maxLength": 32},
        "os_hash_algo": {**_STR_OR_NULL, "readOnly": True, "maxLength": 64},
        "os_hash_value": {**_STR_OR_NULL, "readOnly": True, "maxLength": 128},
        "owner": {**_STR_OR_NULL, "maxLength": 255},
        "size": {"type": ["null", "integer"], "readOnly": True},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True},
        "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS]},
        "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS]},
        "created_at": {"type": "string", "readOnly": True},
        "updated_at": {"type": "string", "readOnly": True},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
        "min_ram": {"type": "integer"},
        "min_disk": {"type": "integer"},
        "self": {"type": "string", "readOnly": True},
        "file": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
        "locations": {"type": "array", "items": {"type": "object"}},
    },
}
MEMBER: dict[str, Any] = {
    "name": "member",
    "properties": {
        "created_at": {"type": "string"}, "updated_at": {"type": "string"},
        "image_id": {"type": "string"}, "member_id": {"type": "string"},
        "schema": {"type": "string", "readOnly": True},
        "status": {"type": "string", "enum": ["pending", "accepted", "rejected"]},
    },
}


def _collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "properties": {name: {"type": "array", "items": item},
                                         "schema": {"type": "string"}, "first": {"type": "string"},
                                         "next": {"type": "string"}},
            "links": [{"href": "{first}", "rel": "first"}, {"href": "{next}", "rel": "next"},
                      {"href": "{schema}", "rel": "describedby"}]}


SCHEMAS = {"image": IMAGE, "images": _collection("images", IMAGE), "member": MEMBER,
           "members": _collection("members", MEMBER)}


async def show(call: Call) -> Response:
    schema = SCHEMAS.get(call.params["name"])
    if schema is None:
        raise NotFound(f"No schema named {call.params['name']}.")
    return JSON(schema)
