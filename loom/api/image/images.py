"""``/v2/images``: create, list, show, update (JSON patch), delete,
deactivate and reactivate, tags."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from loom.api.http import JSON, Call, empty
from loom.db.models import Image
from loom.errors import Conflict, Forbidden, Invalid
from loom.image import images, views
from loom.image.images import CONTAINER_FORMATS, DISK_FORMATS, SORT_KEYS, VISIBILITIES

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
# Set by the service, never by a user.
READ_ONLY = {"id", "status", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "created_at",
             "updated_at", "self", "file", "schema", "direct_url", "locations", "deleted", "deleted_at"}
PATCH_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")
_PROPERTY_NAME = re.compile(r"^[^\s/]{1,255}$")


def enforce(call: Call, rule: str, target: dict[str, Any] | None = None) -> None:
    call.deps.enforcer.enforce(rule, call.ctx, target or {"project_id": call.ctx.project_id})


def _check_attr(key: str, value: Any) -> None:
    """Validate one attribute as a request would set it."""
    if key == "name" and value is not None and (not isinstance(value, str) or len(value) > 255):
        raise Invalid("Invalid input for field 'name': must be a string of at most 255 characters.")
    elif key == "visibility" and value not in VISIBILITIES:
        raise Invalid(f"Invalid value '{value}' for visibility: use one of {', '.join(VISIBILITIES)}.")
    elif key in ("protected", "os_hidden") and not isinstance(value, bool):
        raise Invalid(f"Invalid value for {key}: must be a boolean.")
    elif key in ("min_disk", "min_ram") and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise Invalid(f"Invalid value for {key}: must be a non-negative integer.")
    elif key == "disk_format" and value is not None and value not in DISK_FORMATS:
        raise Invalid(f"Invalid disk format '{value}': use one of {', '.join(DISK_FORMATS)}.")
    elif key == "container_format" and value is not None and value not in CONTAINER_FORMATS:
        raise Invalid(f"Invalid container format '{value}': use one of {', '.join(CONTAINER_FORMATS)}.")
    elif key == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t) <= 255 for t in value):
            raise Invalid("Invalid value for tags: must be a list of strings of at most 255 characters.")
    elif key == "owner" and value is not None and not isinstance(value, str):
        raise Invalid("Invalid value for owner: must be a string.")
    elif key not in views.CORE and key != "owner":
        if not _PROPERTY_NAME.match(key) or key.startswith("os_glance"):
            raise Forbidden(f"Attribute '{key}' is reserved.")
        if not isinstance(value, str):
            raise Invalid(f"Invalid value for property '{key}': custom properties are strings.")


def _check_visibility(call: Call, visibility: str | None) -> None:
    if visibility == "public":
        enforce(call, "image:publicize_image")
    elif visibility == "community":
        enforce(call, "image:communitize_image")


async def create(call: Call) -> Response:
    enforce(call, "image:add_image")
    body = await call.json_object()
    for key, value in body.items():
        if key in READ_ONLY - {"id"}:
            raise Forbidden(f"Attribute '{key}' is read-only.")
        if key != "id":
            _check_attr(key, value)
    image_id = body.get("id") or str(uuid.uuid4())
    try:
        image_id = str(uuid.UUID(str(image_id)))
    except ValueError:
        raise Invalid(f"Invalid image id {image_id!r}: it must be a UUID.") from None
    owner = body.get("owner", call.ctx.project_id)
    if owner != call.ctx.project_id:
        enforce(call, "image:set_owner")
    visibility = body.get("visibility", "shared")
    _check_visibility(call, visibility)
    core = {k: body[k] for k in ("name", "protected", "os_hidden", "min_disk", "min_ram", "disk_format",
                                  "container_format", "tags") if k in body}
    props = {k: v for k, v in body.items() if k not in views.CORE and k not in ("owner", "visibility")}
    if "tags" in core:
        core["tags"] = list(dict.fromkeys(core["tags"]))
    async with call.deps.db.session.begin() as session:
        image = await images.create(session, {
            **core, "id": image_id, "owner": owner, "visibility": visibility, "properties": props,
            "status": "queued"}, call.deps.settings.image.quota_images)
    return JSON(views.image(image), status_code=201, headers={"Location": call.url(f"/image/v2/images/{image.id}")})


def _limit(call: Call) -> int:
    raw = call.query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise Invalid(f"limit param must be an integer, not {raw!r}") from None
    if limit < 0:
        raise Invalid("limit param must be positive")
    return min(limit, MAX_LIMIT)


def _sort(call: Call) -> list[tuple[str, str]]:
    q = call.request.query_params
    pairs: list[tuple[str, str]] = []
    if "sort" in q:
        if "sort_key" in q or "sort_dir" in q:
            raise Invalid("The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'.")
        for part in q["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((key, direction or "desc"))
    else:
        keys, dirs = q.getlist("sort_key") or ["created_at"], q.getlist("sort_dir")
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise Invalid("The number of sort_dir values must match the number of sort_key values.")
        pairs = [(k, dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")) for i, k in enumerate(keys)]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise Invalid(f"Unsupported sort key: {key}")
        if direction not in ("asc", "desc"):
            raise Invalid(f"Invalid sort direction: {direction}")
    return pairs


async def list_(call: Call) -> Response:
    enforce(call, "image:get_images")
    limit, sort = _limit(call), _sort(call)
    filters = {k: v for k, v in call.query.items() if k not in ("limit", "marker", "sort", "sort_key",
                                                                   "sort_dir", "tag")}
    async with call.deps.db.session() as session:
        page = await images.list_(session, call.ctx, filters, call.query_list("tag"), sort, limit,
                                  call.query.get("marker"))
    body: dict[str, Any] = {"images": [views.image(i) for i in page.images], "first": "/v2/images",
                            "schema": "/v2/schemas/images"}
    if page.next_marker:
        params = [(k, v) for k, v in call.request.query_params.multi_items() if k != "marker"]
        params.append(("marker", page.next_marker))
        if "limit" not in call.query:
            params.append(("limit", str(limit)))
        body["next"] = "/v2/images?" + urlencode(params)
    return JSON(body)


async def show(call: Call) -> Response:
    enforce(call, "image:get_image")
    async with call.deps.db.session() as session:
        image = await images.get(session, call.ctx, call.params["image_id"])
    return JSON(views.image(image))


async def update(call: Call) -> Response:
    enforce(call, "image:modify_image")
    content_type = call.request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in PATCH_TYPES:
        raise UnsupportedMediaType(f"Unsupported Content-Type {content_type!r}: use {PATCH_TYPES[0]}.")
    ops = await call.body()
    if not isinstance(ops, list):
        raise Invalid("A JSON patch is a list of operations.")
    async with call.deps.db.session.begin() as session:
        image = await images.get(session, call.ctx, call.params["image_id"], for_update=True)
        if not images.may_change(call.ctx, image):
            raise Forbidden("You are not permitted to modify this image.")
        state = views.image(image)
        for op in ops:
            _apply(call, image, state, op)
        _store(image, state)
    return JSON(views.image(image))


def _apply(call: Call, image: Image, state: dict[str, Any], op: Any) -> None:
    if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove") or "path" not in op:
        raise Invalid("Each patch operation needs 'op' (add, replace or remove) and 'path'.")
    path = str(op["path"])
    if not path.startswith("/") or path.count("/") != 1:
        raise Invalid(f"Invalid JSON pointer for this resource: '{path}'")
    key = path[1:]
    if key in READ_ONLY:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if key == "owner":
        enforce(call, "image:set_owner")
    if op["op"] == "remove":
        if key in views.CORE:
            raise Forbidden(f"Attribute '{key}' cannot be removed.")
        if key not in state:
            raise Conflict(f"Property {key} does not exist.")
        del state[key]
        return
    if "value" not in op:
        raise Invalid(f"Operation {op['op']} on '{path}' needs a value.")
    value = op["value"]
    if op["op"] == "replace" and key not in state:
        raise Conflict(f"Property {key} does not exist.")
    _check_attr(key, value)
    if key in ("disk_format", "container_format") and image.status != "queued":
        raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
    if key == "visibility":
        _check_visibility(call, value)
    state[key] = value


def _store(image: Image, state: dict[str, Any]) -> None:
    for key in ("name", "visibility", "protected", "os_hidden", "min_disk", "min_ram", "disk_format",
                "container_format", "owner"):
        setattr(image, key, state.get(key))
    image.tags = list(dict.fromkeys(state.get("tags") or ()))
    image.properties = {k: v for k, v in state.items() if k not in views.CORE and k not in READ_ONLY}


async def delete(call: Call) -> Response:
    enforce(call, "image:delete_image")
    async with call.deps.db.session.begin() as session:
        image = await images.delete(session, call.ctx, call.params["image_id"])
    await call.deps.images.store.delete(image.id)
    return empty()


async def _set_status(call: Call, rule: str, allowed: tuple[str, ...], new: str) -> Response:
    enforce(call, rule)
    async with call.deps.db.session.begin() as session:
        image = await images.get(session, call.ctx, call.params["image_id"], for_update=True)
        if image.status == new:
            return empty()
        if image.status not in allowed:
            raise Conflict(f"Not allowed to {rule.split(':')[1]} image in status '{image.status}'")
        image.status = new
    return empty()


async def deactivate(call: Call) -> Response:
    return await _set_status(call, "image:deactivate", ("active",), "deactivated")


async def reactivate(call: Call) -> Response:
    return await _set_status(call, "image:reactivate", ("deactivated",), "active")


async def tag(call: Call) -> Response:
    """PUT adds a tag, DELETE removes it."""
    enforce(call, "image:modify_image")
    value = call.params["tag"]
    async with call.deps.db.session.begin() as session:
        image = await images.get(session, call.ctx, call.params["image_id"], for_update=True)
        if not images.may_change(call.ctx, image):
            raise Forbidden("You are not permitted to modify this image.")
        tags = list(image.tags or ())
        if call.request.method == "PUT":
            _check_attr("tags", [value])
            if value not in tags:
                image.tags = [*tags, value]
        else:
            if value not in tags:
                raise images.not_found_tag(value)
            image.tags = [t for t in tags if t != value]
    return empty()


class UnsupportedMediaType(Invalid):
    """The request's content type is not one this resource accepts."""

    status = 415
