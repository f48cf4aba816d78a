"""``/servers``: create (the boot path starts here), show, update and
delete; listing is in server_list."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

from starlette.responses import Response

from loom import placement
from loom.api.compute import server_groups, server_shelve, server_soft_delete, server_views
from loom.api.compute.base import base_url, enforce, field_error, links
from loom.api.http import JSON, Call, empty
from loom.compute.rpcapi import ComputeAPI
from loom.conductor.rpcapi import ConductorAPI
from loom.db import fast
from loom.errors import Invalid, NotFound
from loom.image import images as image_records
from loom.objects import aggregates, flavors, instances, keypairs, quotas
from loom.objects import server_groups as group_records
from loom.scheduler.request import FlavorSpec, RequestSpec
from loom.timeutils import utcnow

USER_DATA_MAX = 65535
_HOSTNAME_BAD = re.compile(r"[^a-z0-9-]+")


def _target(call: Call, project_id: str | None = None) -> dict[str, Any]:
    return {"project_id": project_id or call.ctx.project_id, "user_id": call.ctx.user_id}


def _hostname(name: str) -> str:
    host = _HOSTNAME_BAD.sub("-", name.lower()).strip("-")[:63].strip("-")
    return host or "server"


def _metadata(value: Any, field: str = "metadata") -> dict[str, str]:
    if not isinstance(value, dict):
        raise field_error(field, value, f"{value!r} is not of type 'object'")
    for k, v in value.items():
        if not isinstance(k, str) or not 0 < len(k) <= 255:
            raise field_error(field, value, "Metadata keys are strings of 1 to 255 characters")
        if not isinstance(v, str) or len(v) > 255:
            raise field_error(field, value, "Metadata values are strings of at most 255 characters")
    return dict(value)


async def _boot_records(tx: fast.Session, call: Call, flavor_ref: str, image_ref: str,
                        key_name: Any) -> tuple[Any, dict[str, str], Any, str | None]:
    """The flavor (and its extra specs), image and key a create names, each
    checked; a missing one is the request's fault (400)."""
    try:
        flavor = await flavors.lookup(tx, call.ctx, flavor_ref)
    except NotFound:
        raise Invalid(f"Flavor {flavor_ref} could not be found.") from None
    specs = await flavors.extra_specs_by_id(tx, flavor.id)
    try:
        image = await image_records.lookup(tx, call.ctx, image_ref)
    except NotFound:
        raise Invalid(f"Image {image_ref} could not be found.") from None
    key_data = None
    if key_name is not None:
        try:
            key_data = await keypairs.public_key(tx, call.ctx.user_id or "", str(key_name))
        except NotFound:
            raise Invalid(f"Invalid key_name provided: {key_name}") from None
    if image.status != "active":
        raise Invalid(f"Image {image_ref} is not active.")
    if flavor.root_gb and image.size and image.size > flavor.root_gb * (1 << 30):
        raise Invalid(f"Flavor's disk is too small for requested image. Flavor disk is {flavor.root_gb << 30} "
                      f"bytes, image is {image.size} bytes.")
    if image.min_ram and flavor.memory_mb < image.min_ram:
        raise Invalid("Flavor's memory is too small for requested image.")
    return flavor, specs, image, key_data


async def create(call: Call) -> Response:
    enforce(call, "os_compute_api:servers:create")
    body = await call.json_object("server")
    v = call.version
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise field_error("name", name, "'name' is a required property: a string of 1 to 255 characters")
    flavor_ref = body.get("flavorRef")
    if not isinstance(flavor_ref, (str, int)) or str(flavor_ref) == "":
        raise field_error("flavorRef", flavor_ref, "'flavorRef' is a required property")
    image_ref = body.get("imageRef")
    if not isinstance(image_ref, str) or not image_ref:
        raise field_error("imageRef", image_ref, "an image is required (booting from volume comes later)")
    min_count, max_count = body.get("min_count", 1), body.get("max_count", body.get("min_count", 1))
    for field, value in (("min_count", min_count), ("max_count", max_count)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise field_error(field, value, "must be an integer of at least 1")
    if min_count > max_count:
        raise Invalid("min_count must be <= max_count")
    metadata = _metadata(body.get("metadata", {}))
    user_data = body.get("user_data")
    if user_data is not None:
        if not isinstance(user_data, str) or len(user_data) > USER_DATA_MAX:
            raise field_error("user_data", "...", f"must be base64 text of at most {USER_DATA_MAX} characters")
        try:
            base64.b64decode(user_data, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("User data needs to be valid base 64.") from None
    networks = body.get("networks")
    if v.at_least("2.37") and networks is None:
        raise field_error("networks", None, "'networks' is a required property")
    if networks is not None and networks not in ("auto", "none") and not isinstance(networks, list):
        raise field_error("networks", networks, "must be 'auto', 'none' or a list")
    description = body.get("description")
    if description is not None and not v.at_least("2.19"):
        raise Invalid("Invalid input for field/attribute server. Additional properties are not allowed "
                      "('description' was unexpected)")
    tags = body.get("tags", [])
    if tags and not v.at_least("2.52"):
        raise Invalid("Invalid input for field/attribute server. Additional properties are not allowed "
                      "('tags' was unexpected)")
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 60 and "/" not in t
                                             and "," not in t for t in tags) or len(tags) > 50:
        raise field_error("tags", tags, "at most 50 tags of 1 to 60 characters, without '/' or ','")
    az = body.get("availability_zone")
    if az is not None and (not isinstance(az, str) or not az):
        raise field_error("availability_zone", az, "must be a non-empty string")
    raw = await call.json_object()
    hints = raw.get("os:scheduler_hints") or raw.get("OS-SCH-HNT:scheduler_hints") or {}
    if not isinstance(hints, dict):
        raise field_error("os:scheduler_hints", hints, "must be an object")
    server_groups.group_hint(hints)  # a malformed hint fails with the body's checks, before any lookup

    group = None
    if az is not None or server_groups.group_hint(hints) is not None:
        async with call.deps.db.session() as session:
            group = await server_groups.hinted_group(session, call.ctx, hints)
            if az is not None and az not in await aggregates.available_zones(session):
                raise Invalid("The requested availability zone is not available")
    project_id, user_id = call.ctx.project_id or "", call.ctx.user_id or ""
    async with call.deps.db.transaction() as tx:
        if metadata:  # no items fit any limit
            await quotas.check_metadata_items(tx, call.deps.settings.quota, project_id, user_id, len(metadata))
        flavor, specs, image, key_data = await _boot_records(tx, call, str(flavor_ref), image_ref, body.get("key_name"))
        flavor_doc = {"flavorid": flavor.flavorid, "name": flavor.name, "vcpus": flavor.vcpus,
                      "memory_mb": flavor.memory_mb, "root_gb": flavor.root_gb, "ephemeral_gb": flavor.ephemeral_gb,
                      "swap": flavor.swap, "extra_specs": specs}
        reservation = f"r-{uuid.uuid4().hex[:8]}"
        rows = []
        for index in range(max_count):
            display = name if max_count == 1 else f"{name}-{index + 1}"
            rows.append({
                "project_id": project_id, "user_id": user_id, "display_name": display,
                "display_description": description, "hostname": _hostname(display), "vm_state": "building",
                "task_state": "scheduling", "flavor": flavor_doc, "image_ref": image.id,
                "key_name": body.get("key_name"), "key_data": key_data, "user_data": user_data,
                "metadata_": metadata, "tags": list(dict.fromkeys(tags)), "reservation_id": reservation,
                "launch_index": index, "availability_zone": az, "config_drive": bool(body.get("config_drive")),
            })
        uuids = await instances.create_many(tx, rows, project_id, call.deps.settings.quota, min_count=min_count)
        for uuid_ in uuids:
            await instances.start_action(tx, call.ctx, uuid_, "create")
        await server_groups.join(tx, group, uuids)
        if group is not None:
            await quotas.check_server_group_members(tx, call.deps.settings.quota, project_id, user_id, group.id)
    spec = RequestSpec(
        project_id=call.ctx.project_id or "", user_id=call.ctx.user_id or "",
        flavor=FlavorSpec(**{k: flavor_doc[k] for k in ("flavorid", "name", "vcpus", "memory_mb", "root_gb",
                                                        "ephemeral_gb", "swap", "extra_specs")}),
        image={"id": image.id, "properties": dict(image.properties or {}), "disk_format": image.disk_format,
               "min_ram": image.min_ram, "min_disk": image.min_disk, "size": image.size},
        num_instances=len(uuids), availability_zone=az, scheduler_hints=hints if isinstance(hints, dict) else {},
        instance_group=server_groups.request_group(group))
    await ConductorAPI(call.deps.bus).build_instances(call.ctx, spec.to_dict(), uuids)
    if body.get("return_reservation_id"):
        return JSON({"reservation_id": reservation}, status_code=202)
    server = {"id": uuids[0], "links": links(call, "servers", uuids[0]), "OS-DCF:diskConfig": "MANUAL",
              "security_groups": [{"name": "default"}], "adminPass": base64.b32encode(uuid.uuid4().bytes)[:12].decode()}
    return JSON({"server": server}, status_code=202, headers={"Location": f"{base_url(call)}/servers/{uuids[0]}"})


async def show(call: Call) -> Response:
    enforce(call, "os_compute_api:servers:show")
    async with call.deps.db.session() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
        server = server_views.detail(call, row, admin=call.ctx.is_admin)
        if call.version.at_least("2.71"):
            server["server_groups"] = await group_records.groups_of(session, row.uuid)
    return JSON({"server": server})


async def update(call: Call) -> Response:
    body = await call.json_object("server")
    async with call.deps.db.session.begin() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
        enforce(call, "os_compute_api:servers:update", _target(call, row.project_id))
        values: dict[str, Any] = {}
        if "name" in body:
            if not isinstance(body["name"], str) or not body["name"].strip() or len(body["name"]) > 255:
                raise field_error("name", body["name"], "must be a string of 1 to 255 characters")
            values["display_name"] = body["name"]
        if "description" in body:
            if not call.version.at_least("2.19"):
                raise Invalid("Additional properties are not allowed ('description' was unexpected)")
            values["display_description"] = body["description"]
        unknown = set(body) - {"name", "description", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig", "hostname"}
        if unknown:
            raise Invalid(f"Additional properties are not allowed ({', '.join(sorted(unknown))} was unexpected)")
        row = await instances.update_fields(session, row.uuid, values) or row
        server = server_views.detail(call, row, admin=call.ctx.is_admin)
        if call.version.at_least("2.71"):
            server["server_groups"] = await group_records.groups_of(session, row.uuid)
    return JSON({"server": server})


async def delete(call: Call) -> Response:
    if call.deps.settings.compute.reclaim_instance_interval > 0 and await server_soft_delete.soft_delete(call):
        return empty(204)
    await delete_now(call)
    return empty(204)


async def delete_now(call: Call, rule: str = "os_compute_api:servers:delete") -> None:
    """Delete the server now (also forceDelete, with its own policy rule)."""
    async with call.deps.db.session.begin() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
        enforce(call, rule, _target(call, row.project_id))
        instances.check_unlocked(call.ctx, row)
        await instances.start_action(session, call.ctx, row.uuid, "delete")
        host = row.host
        shelved_image = server_shelve.shelved_image(row)
        if not host:
            now = utcnow()
            await instances.set_fields(session, row.uuid, {
                "vm_state": "deleted", "task_state": None, "deleted": True, "deleted_at": now, "terminated_at": now})
            await group_records.remove_member(session, row.uuid)
        else:
            await instances.set_fields(session, row.uuid, {"task_state": "deleting"})
    if not host:
        await placement.release(call.deps.db, row.uuid)
    else:
        await ComputeAPI(call.deps.bus).terminate_instance(call.ctx, host, row.uuid)
    if shelved_image:
        await server_shelve.delete_shelved_image(call, row.uuid, shelved_image)

