"""``/os-aggregates``: host aggregates (list, create, show, update, delete)
and their actions add_host, remove_host and set_metadata. An aggregate's
``availability_zone`` is its metadata key of that name."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from loom.api.compute.base import enforce
from loom.api.compute.services import no_extra_keys
from loom.api.http import JSON, Call, Endpoint, empty
from loom.db import services
from loom.errors import Conflict, Invalid, NotFound
from loom.objects import aggregates
from loom.objects.aggregates import AggregateRecord
from loom.policy.enforcer import ADMIN, Rule
from loom.scheduler.hosts import AZ_METADATA_KEY, COMPUTE_BINARY
from loom.timeutils import isotime

_HOST = re.compile(r"^[a-zA-Z0-9-._]{1,255}$")
_META_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")


def view(call: Call, agg: AggregateRecord, *, members: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "availability_zone": agg.availability_zone,
        "created_at": isotime(agg.created_at),
        "deleted": False,
        "deleted_at": None,
        "id": agg.id,
        "name": agg.name,
        "updated_at": isotime(agg.updated_at),
    }
    if members:
        out.update(hosts=list(agg.hosts), metadata=dict(agg.metadata))
    if call.version.at_least("2.41"):
        out["uuid"] = agg.uuid
    return out


def _id(call: Call) -> int:
    raw = call.params["aggregate_id"]
    if not raw.lstrip("-").isdigit():
        raise Invalid("Invalid input received: id must be an integer")
    return int(raw)


def _name(call: Call, value: Any, field: str = "name", *, zone: bool = False, strip: bool = False) -> str:
    """A name (or zone name) of 1 to 255 printable characters. Surrounding
    spaces are refused from 2.1 unless ``strip`` (then, and in 2.0, they are
    stripped); zone names may not hold ':'."""
    if isinstance(value, str) and (strip or str(call.version) == "2.0"):
        value = value.strip()
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 255
        or value != value.strip()
        or not value.isprintable()
        or (zone and ":" in value)
    ):
        rule = "printable characters except ':'" if zone else "printable characters"
        raise Invalid(
            f"Invalid input for field/attribute {field}. Value: {value}. An invalid 'name' value was "
            f"provided. The name must be: {rule}. Can not start or end with whitespace."
        )
    return value


def _zone(call: Call, body: dict[str, Any]) -> str | None:
    value = body.get("availability_zone")
    return None if value is None else _name(call, value, "availability_zone", zone=True)


async def list_(call: Call) -> Response:
    enforce(call, "os_compute_api:os-aggregates:index")
    async with call.deps.db.session() as session:
        found = await aggregates.load(session)
    return JSON({"aggregates": [view(call, a) for a in found]})


async def create(call: Call) -> Response:
    body = await call.json_object("aggregate")
    no_extra_keys(body, {"name", "availability_zone"})
    if "name" not in body:
        raise Invalid("Invalid input for field/attribute aggregate. 'name' is a required property")
    name, zone = _name(call, body["name"]), _zone(call, body)
    enforce(call, "os_compute_api:os-aggregates:create")
    async with call.deps.db.session.begin() as session:
        agg = await aggregates.create(session, name, zone)
    return JSON({"aggregate": view(call, agg, members=False)})


async def show(call: Call) -> Response:
    enforce(call, "os_compute_api:os-aggregates:show")
    aggregate_id = _id(call)
    async with call.deps.db.session() as session:
        agg = await aggregates.get(session, aggregate_id)
    return JSON({"aggregate": view(call, agg)})


async def update(call: Call) -> Response:
    body = await call.json_object("aggregate")
    no_extra_keys(body, {"name", "availability_zone"})
    if not body:
        raise Invalid(
            "Invalid input for field/attribute aggregate. Value: {}. {} is not valid under any of the given schemas"
        )
    name = _name(call, body["name"], strip=True) if "name" in body else None
    zone = _zone(call, body)
    enforce(call, "os_compute_api:os-aggregates:update")
    aggregate_id = _id(call)
    async with call.deps.db.session.begin() as session:
        agg = await aggregates.get(session, aggregate_id)
        if name is not None:
            await aggregates.rename(session, agg.id, name)
        if "availability_zone" in body:
            await aggregates.check_zone_change(
                session, agg, {AZ_METADATA_KEY: zone}, aggregates.UPDATE, check_instances=True
            )
            await aggregates.update_metadata(session, agg.id, {AZ_METADATA_KEY: zone})
        agg = await aggregates.get(session, agg.id)
    return JSON({"aggregate": view(call, agg)})


async def delete(call: Call) -> Response:
    enforce(call, "os_compute_api:os-aggregates:delete")
    aggregate_id = _id(call)
    async with call.deps.db.session.begin() as session:
        await aggregates.delete(session, await aggregates.get(session, aggregate_id))
    return empty(200)


async def action(call: Call) -> Response:
    """``POST /os-aggregates/{id}/action`` with add_host, remove_host or set_metadata."""
    body = await call.json_object()
    if len(body) != 1 or next(iter(body)) not in _ACTIONS:
        raise Invalid("Invalid action: use add_host, remove_host or set_metadata.")
    name, args = next(iter(body.items()))
    if not isinstance(args, dict):
        raise Invalid(f"Invalid input for field/attribute {name}. Value: {args}. {args!r} is not of type 'object'")
    enforce(call, f"os_compute_api:os-aggregates:{name}")
    aggregate_id = _id(call)
    async with call.deps.db.session.begin() as session:
        agg = await _ACTIONS[name](session, aggregate_id, args)
    return JSON({"aggregate": view(call, agg)})


def _host_arg(name: str, args: dict[str, Any]) -> str:
    no_extra_keys(args, {"host"})
    host = args.get("host")
    if not isinstance(host, str) or not _HOST.match(host):
        raise Invalid(
            f"Invalid input for field/attribute {name}.host. Value: {host}. 'host' is a required "
            "property: a host name of 1 to 255 letters, digits, '-', '.' or '_'"
        )
    return host


async def _is_compute_host(session: AsyncSession, host: str) -> bool:
    return await services.find(session, host=host, binary=COMPUTE_BINARY) is not None


async def _add_host(session: AsyncSession, aggregate_id: int, args: dict[str, Any]) -> AggregateRecord:
    host = _host_arg("add_host", args)
    if not await _is_compute_host(session, host):
        raise NotFound(f"Compute host {host} could not be found.")
    agg = await aggregates.get(session, aggregate_id)
    try:
        await aggregates.check_zone_change(session, agg, agg.metadata, aggregates.ADD, hosts=[host])
    except Invalid as exc:
        raise Conflict(exc.message) from None  # Nova answers 409 here
    await aggregates.add_host(session, agg, host)
    return await aggregates.get(session, aggregate_id)


async def _remove_host(session: AsyncSession, aggregate_id: int, args: dict[str, Any]) -> AggregateRecord:
    host = _host_arg("remove_host", args)
    try:
        if not await _is_compute_host(session, host):
            raise NotFound(f"Compute host {host} could not be found.")
        await aggregates.remove_host(session, await aggregates.get(session, aggregate_id), host)
    except NotFound:
        raise NotFound(f"Cannot remove host {host} in aggregate {aggregate_id}") from None
    return await aggregates.get(session, aggregate_id)


async def _set_metadata(session: AsyncSession, aggregate_id: int, args: dict[str, Any]) -> AggregateRecord:
    no_extra_keys(args, {"metadata"})
    metadata = args.get("metadata")
    if not isinstance(metadata, dict):
        raise Invalid(
            "Invalid input for field/attribute set_metadata. 'metadata' is a required property and must be an object"
        )
    for key, value in metadata.items():
        if not _META_KEY.match(key):
            raise Invalid(
                f"Invalid input for field/attribute metadata. Value: {metadata}. Additional properties "
                f"are not allowed ('{key}' was unexpected)"
            )
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise Invalid(
                f"Invalid input for field/attribute {key}. Value: {value}. must be a string of at most "
                "255 characters or null"
            )
    agg = await aggregates.get(session, aggregate_id)
    await aggregates.check_zone_change(session, agg, metadata, aggregates.UPDATE_META, check_instances=True)
    await aggregates.update_metadata(session, agg.id, metadata)
    return await aggregates.get(session, aggregate_id)


_ACTIONS = {"add_host": _add_host, "remove_host": _remove_host, "set_metadata": _set_metadata}

ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/os-aggregates", list_),
    Endpoint("POST", "/os-aggregates", create),
    Endpoint("GET", "/os-aggregates/{aggregate_id}", show),
    Endpoint("PUT", "/os-aggregates/{aggregate_id}", update),
    Endpoint("DELETE", "/os-aggregates/{aggregate_id}", delete),
    Endpoint("POST", "/os-aggregates/{aggregate_id}/action", action),
]
RULES: list[Rule] = [
    Rule(f"os_compute_api:os-aggregates:{name}", ADMIN, description)
    for name, description in (
        ("index", "List all aggregates."),
        ("create", "Create an aggregate."),
        ("show", "Show the details of an aggregate."),
        ("update", "Update the name or availability zone of an aggregate."),
        ("delete", "Delete an aggregate."),
        ("add_host", "Add a host to an aggregate."),
        ("remove_host", "Remove a host from an aggregate."),
        ("set_metadata", "Create or replace the metadata of an aggregate."),
    )
]
