"""``/servers/{id}/tags`` (microversion 2.26+): simple string tags on a
server, listed, checked, added and removed one at a time or all at once."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from loom.api.compute.base import base_url, enforce
from loom.api.http import JSON, Call, Endpoint, empty
from loom.db.models import Instance
from loom.errors import Invalid, NotFound
from loom.objects import instances
from loom.policy.enforcer import ADMIN_OR_PROJECT_MEMBER, ADMIN_OR_PROJECT_READER, Rule

MAX_TAGS = 50
MAX_TAG_LENGTH = 60
_TAG_PATTERN = "^[^,/]*$"
_TAG = re.compile(_TAG_PATTERN)
# Nova changes tags only in these states.


def _require_version(call: Call) -> None:
    # Before 2.26 the resource does not exist, as Nova answers.
    if not call.version.at_least("2.26"):
        raise NotFound("The resource could not be found.")


def tag_error(tag: Any) -> str | None:
    """Why ``tag`` breaks Nova's tag schema, in jsonschema's words, or None."""
    if not isinstance(tag, str):
        return f"{tag!r} is not of type 'string'"
    if len(tag) > MAX_TAG_LENGTH:
        return f"{tag!r} is too long"
    if not tag:
        return f"{tag!r} is too short"
    if not _TAG.match(tag):
        return f"{tag!r} does not match {_TAG_PATTERN!r}"
    return None


def _target(row: Instance) -> dict[str, Any]:
    return {"project_id": row.project_id, "user_id": row.user_id}


async def _load(call: Call, rule: str) -> Instance:
    _require_version(call)
    async with call.deps.db.session() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
    enforce(call, rule, _target(row))
    return row


async def _save(call: Call, rule: str, action: str, change: Any) -> Any:
    """Run ``change(tags) -> (new tags, result)`` on the server's tags under
    its lock, after Nova's policy and state checks."""
    async with call.deps.db.session.begin() as session:
        row = await instances.get_for_update(session, call.ctx, call.params["server_id"])
        enforce(call, rule, _target(row))
        instances.check_state(row, action, instances.MUTABLE_STATES)
        tags, result = change(list(row.tags or ()))
        if tags != list(row.tags or ()):
            await instances.update_fields(session, row.uuid, {"tags": tags})
    return result


async def index(call: Call) -> Response:
    row = await _load(call, "os_compute_api:os-server-tags:index")
    return JSON({"tags": list(row.tags or ())})


async def show(call: Call) -> Response:
    row = await _load(call, "os_compute_api:os-server-tags:show")
    tag = call.params["tag"]
    if tag not in (row.tags or ()):
        raise NotFound(f"Server {row.uuid} has no tag '{tag}'")
    return empty(204)


async def update(call: Call) -> Response:
    _require_version(call)
    if (await call.request.body()).strip() not in (b"", b"null"):
        raise Invalid(f"{await call.body()!r} is not of type 'null'")  # the request takes no body
    tag = call.params["tag"]

    def add(tags: list[str]) -> tuple[list[str], bool]:
        why = tag_error(tag)
        if why:
            raise Invalid(
                f"Tag '{tag}' is invalid. It must be a non empty string without characters '/' and ','. "
                f"Validation error message: {why}"
            )
        # Nova counts before it looks, so a full server refuses even a tag it has.
        if len(tags) >= MAX_TAGS:
            raise Invalid(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
        if tag in tags:
            return tags, False
        return [*tags, tag], True

    added = await _save(call, "os_compute_api:os-server-tags:update", "update tag", add)
    if not added:
        return empty(204)
    location = f"{base_url(call)}/servers/{call.params['server_id']}/tags/{quote(tag, safe='')}"
    return empty(201, headers={"Location": location})


async def update_all(call: Call) -> Response:
    _require_version(call)
    body = await call.json_object()
    if "tags" not in body:
        raise Invalid("'tags' is a required property", field="tags")
    extra = sorted(set(body) - {"tags"})
    if extra:
        raise Invalid(
            f"Additional properties are not allowed ({', '.join(repr(k) for k in extra)} "
            f"{'was' if len(extra) == 1 else 'were'} unexpected)"
        )
    wanted = body["tags"]
    if not isinstance(wanted, list):
        raise Invalid(
            f"Invalid input for field/attribute tags. Value: {wanted}. {wanted!r} is not of type 'array'", field="tags"
        )
    if len(wanted) > MAX_TAGS:
        raise Invalid(f"Invalid input for field/attribute tags. Value: {wanted}. {wanted!r} is too long", field="tags")
    for index_, tag in enumerate(wanted):
        why = tag_error(tag)
        if why:
            # Nova names the item by its index.
            raise Invalid(f"Invalid input for field/attribute {index_}. Value: {tag}. {why}", field="tags")
    tags = list(dict.fromkeys(wanted))
    await _save(call, "os_compute_api:os-server-tags:update_all", "update tags", lambda _: (tags, None))
    return JSON({"tags": tags})


async def delete(call: Call) -> Response:
    _require_version(call)
    tag = call.params["tag"]

    def remove(tags: list[str]) -> tuple[list[str], None]:
        if tag not in tags:
            raise NotFound(f"Instance {call.params['server_id']} has no tag '{tag}'")
        return [t for t in tags if t != tag], None

    await _save(call, "os_compute_api:os-server-tags:delete", "delete tag", remove)
    return empty(204)


async def delete_all(call: Call) -> Response:
    _require_version(call)
    await _save(call, "os_compute_api:os-server-tags:delete_all", "delete tags", lambda _: ([], None))
    return empty(204)


_TAGS = "/servers/{server_id}/tags"
_TAG_PATH = "/servers/{server_id}/tags/{tag}"
ENDPOINTS = [
    Endpoint("GET", _TAGS, index),
    Endpoint("PUT", _TAGS, update_all),
    Endpoint("DELETE", _TAGS, delete_all),
    Endpoint("GET", _TAG_PATH, show),
    Endpoint("PUT", _TAG_PATH, update),
    Endpoint("DELETE", _TAG_PATH, delete),
]
RULES = [
    Rule("os_compute_api:os-server-tags:index", ADMIN_OR_PROJECT_READER, "List a server's tags.", (("GET", _TAGS),)),
    Rule(
        "os_compute_api:os-server-tags:show",
        ADMIN_OR_PROJECT_READER,
        "Check whether a server has a tag.",
        (("GET", _TAG_PATH),),
    ),
    Rule(
        "os_compute_api:os-server-tags:update",
        ADMIN_OR_PROJECT_MEMBER,
        "Add one tag to a server.",
        (("PUT", _TAG_PATH),),
    ),
    Rule(
        "os_compute_api:os-server-tags:update_all",
        ADMIN_OR_PROJECT_MEMBER,
        "Replace all of a server's tags.",
        (("PUT", _TAGS),),
    ),
    Rule(
        "os_compute_api:os-server-tags:delete",
        ADMIN_OR_PROJECT_MEMBER,
        "Remove one tag from a server.",
        (("DELETE", _TAG_PATH),),
    ),
    Rule(
        "os_compute_api:os-server-tags:delete_all",
        ADMIN_OR_PROJECT_MEMBER,
        "Remove all of a server's tags.",
        (("DELETE", _TAGS),),
    ),
]
