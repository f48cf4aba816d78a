"""``/allocations/{consumer_uuid}``, ``POST /allocations`` and
``/resource_providers/{uuid}/allocations``."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from loom.api.http import Call
from loom.api.placement.base import at_least, enforce, no_content, respond
from loom.api.placement.schemas import normal_uuid
from loom.placement import allocations, providers
from loom.placement.allocations import ANY, ConsumerAllocations
from loom.placement.errors import PlacementInvalid, PlacementNotFound

# Who owns allocations written before 1.8, as Placement's default
# incomplete_consumer_project_id / _user_id say.
INCOMPLETE = "00000000-0000-0000-0000-000000000000"
_RC = re.compile(r"^[A-Z0-9_]+$")
_CONSUMER_TYPE = re.compile(r"^[A-Z0-9_]+$")


def _bad(message: str) -> PlacementInvalid:
    return PlacementInvalid(f"JSON does not validate: {message}")


def _resources(value: Any, where: str) -> dict[str, int]:
    if not isinstance(value, dict) or not value:
        raise _bad(f"{where}: 'resources' must be an object with at least one resource class")
    for rc, amount in value.items():
        if not _RC.match(rc):
            raise _bad(f"{where}: {rc!r} is not a valid resource class name")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
            raise _bad(f"{where}: {amount!r} is less than the minimum of 1 for {rc}")
    return dict(value)


def _owner(body: dict[str, Any], key: str, required: bool) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _bad(f"'{key}' is a required property")
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        raise _bad(f"'{key}' must be a string of 1 to 255 characters")
    return value


def consumer_body(call: Call, body: Any, *, in_post: bool = False) -> ConsumerAllocations:
    """One consumer's allocations as the request's microversion writes them."""
    if not isinstance(body, dict):
        raise _bad("the body must be an object")
    known = {"allocations"}
    if at_least(call, 8):
        known |= {"project_id", "user_id"}
    if at_least(call, 28):
        known.add("consumer_generation")
    if at_least(call, 34):
        known.add("mappings")
    if at_least(call, 38):
        known.add("consumer_type")
    for key in body:
        if key not in known:
            raise _bad(f"Additional properties are not allowed ('{key}' was unexpected)")
    raw = body.get("allocations")
    wanted: dict[str, dict[str, int]] = {}
    if not at_least(call, 12):
        if not isinstance(raw, list) or not raw:
            raise _bad("'allocations' must be a non-empty array")
        for item in raw:
            if not isinstance(item, dict) or set(item) != {"resource_provider", "resources"}:
                raise _bad("each allocation needs 'resource_provider' and 'resources' only")
            rp = item["resource_provider"]
            if not isinstance(rp, dict) or set(rp) != {"uuid"} or not isinstance(rp["uuid"], str):
                raise _bad("'resource_provider' must be an object with a 'uuid'")
            wanted[normal_uuid(rp["uuid"], "resource provider uuid")] = _resources(item["resources"], rp["uuid"])
    else:
        if not isinstance(raw, dict) or (not raw and not (in_post or at_least(call, 28))):
            raise _bad("'allocations' must be an object with at least one resource provider")
        for rp_uuid, entry in raw.items():
            if not isinstance(entry, dict) or "resources" not in entry or set(entry) - {"resources", "generation"}:
                raise _bad(f"{rp_uuid}: an allocation has 'resources' (and optionally 'generation') only")
            wanted[normal_uuid(rp_uuid, "resource provider uuid")] = _resources(entry["resources"], rp_uuid)
    project_id = _owner(body, "project_id", at_least(call, 8)) or (None if at_least(call, 8) else INCOMPLETE)
    user_id = _owner(body, "user_id", at_least(call, 8)) or (None if at_least(call, 8) else INCOMPLETE)
    generation: Any = ANY
    if at_least(call, 28):
        if "consumer_generation" not in body:
            raise _bad("'consumer_generation' is a required property")
        generation = body["consumer_generation"]
        if generation is not None and (not isinstance(generation, int) or isinstance(generation, bool)):
            raise _bad("'consumer_generation' must be an integer or null")
    consumer_type = None
    if at_least(call, 38):
        consumer_type = body.get("consumer_type")
        if not isinstance(consumer_type, str) or not _CONSUMER_TYPE.match(consumer_type):
            raise _bad("'consumer_type' is a required property: upper-case letters, digits and _")
    return ConsumerAllocations(wanted, project_id, user_id, generation, consumer_type)


def _consumer_uuid(call: Call) -> str:
    try:
        return normal_uuid(call.params["consumer_uuid"], "consumer_uuid")
    except PlacementInvalid:
        raise PlacementInvalid(f"Malformed consumer_uuid: {call.params['consumer_uuid']}") from None


async def show(call: Call) -> Response:
    enforce(call, "allocations:list")
    async with call.deps.db.session() as session:
        view = await allocations.for_consumer(session, call.params["consumer_uuid"])
    body: dict[str, Any] = {"allocations": view.allocations}
    if view.allocations and at_least(call, 12):
        body.update(project_id=view.project_id, user_id=view.user_id)
        if at_least(call, 28):
            body["consumer_generation"] = view.generation
        if at_least(call, 38):
            body["consumer_type"] = view.consumer_type or "unknown"
    return respond(call, body, last_modified=view.last_modified)


async def update(call: Call) -> Response:
    enforce(call, "allocations:update")
    consumer = _consumer_uuid(call)
    want = consumer_body(call, await call.body())
    await allocations.write(call.deps.db, {consumer: want})
    return no_content()


async def delete(call: Call) -> Response:
    enforce(call, "allocations:delete")
    consumer = call.params["consumer_uuid"]
    if not await allocations.release(call.deps.db, consumer):
        raise PlacementNotFound(f"No allocations for consumer '{consumer}'")
    return no_content()


async def post(call: Call) -> Response:
    if not at_least(call, 13):
        raise PlacementNotFound("The resource could not be found.")
    enforce(call, "allocations:manage")
    body = await call.body()
    if not isinstance(body, dict) or not body:
        raise _bad("the body must be an object naming at least one consumer")
    wanted = {normal_uuid(consumer, "consumer uuid"): consumer_body(call, entry, in_post=True)
              for consumer, entry in body.items()}
    await allocations.write(call.deps.db, wanted)
    return no_content()


async def for_provider(call: Call) -> Response:
    enforce(call, "resource_providers:allocations:list")
    async with call.deps.db.session() as session:
        rp = await providers.get(session, call.params["uuid"])
        found, newest = await allocations.for_provider(session, rp)
    if not at_least(call, 28):
        for entry in found.values():
            entry.pop("consumer_generation", None)
    return respond(call, {"allocations": found, "resource_provider_generation": rp.generation},
                   last_modified=newest)
