"""The ``rebuild`` server action: the same server (id, flavor, host,
placement allocation) boots a new or the same image, optionally with a new
name, metadata, description (2.19), key pair (2.54) and user data (2.57).

The body is checked per microversion as Nova's schemas do; then the
server's lock and state, the image (it must exist, be visible, be active
and fit the flavor) and the key pair. The server moves into ``rebuilding``
with the new values in one conditional update; the conductor checks a new
image against the server's host before the host rebuilds it."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
import string
import uuid
from typing import Any

from starlette.responses import Response

from loom.api.compute import server_views
from loom.api.compute.action_base import Handler, Transition, begin, body_object, check_state, target
from loom.api.compute.base import base_url, enforce, field_error
from loom.api.http import JSON, Call
from loom.conductor.rpcapi import ConductorAPI
from loom.db.models import Image, Instance
from loom.errors import Invalid, NotFound
from loom.image import images as image_records
from loom.objects import instances, keypairs, quotas
from loom.objects import server_groups as group_records
from loom.policy.enforcer import ADMIN_OR_PROJECT_MEMBER, Rule
from loom.scheduler.request import FlavorSpec, RequestSpec

REBUILD = Transition("rebuild", "os_compute_api:servers:rebuild", ("active", "stopped", "error"), "rebuilding")
TRUSTED_CERTS_RULE = "os_compute_api:servers:rebuild:trusted_certs"
USER_DATA_MAX = 65535
GIB = 1 << 30
_BOOLEANS = {"true": True, "1": True, "on": True, "yes": True, "false": False, "0": False, "off": False,
             "no": False}
# Keys of the server view that the rebuild response leaves out before 2.75.
_NOT_BEFORE_2_75 = ("OS-EXT-AZ:availability_zone", "config_drive", "OS-SRV-USG:launched_at",
                    "OS-SRV-USG:terminated_at", "security_groups", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
                    "OS-EXT-STS:power_state", "os-extended-volumes:volumes_attached", "host_status")
_PASSWORD_CHARS = string.ascii_letters + string.digits


def generate_password(length: int = 12) -> str:
    """A password as Nova makes one when the request has none."""
    return "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(length))


def _allowed(call: Call) -> set[str]:
    v = call.version
    allowed = {"name", "imageRef", "adminPass", "metadata", "preserve_ephemeral", "OS-DCF:diskConfig",
               "accessIPv4", "accessIPv6"}
    if not v.at_least("2.57"):
        allowed.add("personality")
    if v.at_least("2.19"):
        allowed.add("description")
    if v.at_least("2.54"):
        allowed.add("key_name")
    if v.at_least("2.57"):
        allowed.add("user_data")
    if v.at_least("2.63"):
        allowed.add("trusted_image_certificates")
    return allowed


def _string(name: str, value: Any, *, minimum: int = 0, maximum: int = 255, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str):
        kinds = "'string', 'null'" if nullable else "'string'"
        raise field_error(name, value, f"{value!r} is not of type {kinds}")
    if len(value) < minimum:
        raise field_error(name, value, f"{value!r} is too short")
    if len(value) > maximum:
        raise field_error(name, value, f"{value!r} is too long")


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise field_error("metadata", value, f"{value!r} is not of type 'object'")
    for key, item in value.items():
        if not 0 < len(key) <= 255:
            raise field_error("metadata", value, f"{key!r} does not match any of the regexes: "
                                                 "'^[a-zA-Z0-9-_:. ]{1,255}$'")
        if not isinstance(item, str) or len(item) > 255:
            raise field_error("metadata", value, f"{item!r} is not a string of at most 255 characters")
    return dict(value)


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise field_error(name, value, f"{value!r} is not one of [True, 'True', 'true', '1', 'on', 'yes', False, "
                                   "'False', 'false', '0', 'off', 'no']")


def _check_body(call: Call, value: Any) -> dict[str, Any]:
    """The body as Nova's rebuild schema for the request's microversion checks it."""
    body = body_object("rebuild", value, _allowed(call), required=("imageRef",))
    image_ref = body["imageRef"]
    if not isinstance(image_ref, str):
        raise field_error("imageRef", image_ref, f"{image_ref!r} is not of type 'string'")
    try:
        uuid.UUID(image_ref)
    except ValueError:
        raise field_error("imageRef", image_ref, f"{image_ref!r} is not a 'uuid'") from None
    if "name" in body:
        name = body["name"]
        _string("name", name, minimum=1)
        if name.strip() != name or not name.strip():
            raise field_error("name", name, f"{name!r} does not match '^(?! )[^\\x00-\\x1f]*(?<! )$'")
    if "adminPass" in body and not isinstance(body["adminPass"], str):
        raise field_error("adminPass", "...", "adminPass is not of type 'string'")  # never echo a password
    if "metadata" in body:
        _metadata(body["metadata"])
    if "preserve_ephemeral" in body:
        _boolean("preserve_ephemeral", body["preserve_ephemeral"])
    disk_config = body.get("OS-DCF:diskConfig", "MANUAL")
    if disk_config not in ("AUTO", "MANUAL"):
        raise field_error("OS-DCF:diskConfig", disk_config, f"{disk_config!r} is not one of ['AUTO', 'MANUAL']")
    for field, kind, parse in (("accessIPv4", "ipv4", ipaddress.IPv4Address),
                               ("accessIPv6", "ipv6", ipaddress.IPv6Address)):
        if field in body:
            try:
                parse(body[field])
            except (ValueError, TypeError):
                raise field_error(field, body[field], f"{body[field]!r} is not a '{kind}'") from None
    if "description" in body:
        _string("description", body["description"], nullable=True)
    if "key_name" in body:
        _string("key_name", body["key_name"], minimum=1, nullable=True)
    if body.get("user_data") is not None:
        data = body["user_data"]
        if not isinstance(data, str) or len(data) > USER_DATA_MAX:
            raise field_error("user_data", "...", f"must be base64 text of at most {USER_DATA_MAX} characters")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise field_error("user_data", "...", "is not a 'base64'") from None
    certs = body.get("trusted_image_certificates")
    if certs is not None:
        if not isinstance(certs, list) or not certs:
            raise field_error("trusted_image_certificates", certs, f"{certs!r} is not of type 'array', 'null'")
        raise Invalid(f"Image signature certificate validation failed for certificate: {certs[0]}. "
                      "Loom does not verify image signatures.")
    return body


def _check_image(image: Image, flavor: dict[str, Any]) -> None:
    """Nova's checks of an image against the server's flavor, with its messages."""
    if image.status != "active":
        raise Invalid(f"Image {image.id} is not active.")
    if image.min_ram and int(flavor["memory_mb"]) < image.min_ram:
        raise Invalid("Flavor's memory is too small for requested image.")
    root = int(flavor["root_gb"]) * GIB
    if root and image.size and image.size > root:
        raise Invalid(f"Flavor's disk is too small for requested image. Flavor disk is {root} bytes, image is "
                      f"{image.size} bytes.")
    if root and image.min_disk and image.min_disk * GIB > root:
        raise Invalid("Flavor's disk is smaller than the minimum size specified in image metadata. Flavor disk is "
                      f"{root} bytes, minimum size is {image.min_disk * GIB} bytes.")


async def _prepare(call: Call, body: dict[str, Any]) -> tuple[Instance, Image, dict[str, Any]]:
    """Everything checked before the server is touched: policy, lock and
    state (Nova refuses those before looking at the image), the image, the
    key pair and the metadata quota. The row, the image and the values to
    write."""
    async with call.deps.db.session() as session:
        row = await instances.get(session, call.ctx, call.params["server_id"])
        enforce(call, REBUILD.rule, target(row))
        if "trusted_image_certificates" in body:
            enforce(call, TRUSTED_CERTS_RULE, target(row))
        instances.check_unlocked(call.ctx, row)
        check_state(row, REBUILD)
        try:
            image = await image_records.get(session, call.ctx, body["imageRef"])
        except NotFound:
            raise Invalid("Cannot find image for rebuild") from None
        values: dict[str, Any] = {"image_ref": image.id, "progress": 0}
        if "key_name" in body:
            key_name = body["key_name"]
            values["key_name"], values["key_data"] = key_name, None
            if key_name is not None:
                try:
                    values["key_data"] = (await keypairs.get(session, call.ctx.user_id or "", key_name)).public_key
                except NotFound:
                    raise Invalid("Invalid key_name provided.") from None
        if "metadata" in body:
            values["metadata_"] = _metadata(body["metadata"])
            await quotas.check_metadata_items(session, call.deps.settings.quota, row.project_id, row.user_id,
                                              len(values["metadata_"]))
    _check_image(image, row.flavor)
    if "name" in body:
        values["display_name"] = body["name"]
    if "description" in body:
        values["display_description"] = body["description"]
    if "user_data" in body:
        values["user_data"] = body["user_data"]
    return row, image, values


def _spec(row: Instance, image: Image) -> dict[str, Any]:
    """What the scheduler checks the new image against the host with."""
    flavor = FlavorSpec(**{k: row.flavor[k] for k in ("flavorid", "name", "vcpus", "memory_mb", "root_gb")},
                        ephemeral_gb=row.flavor.get("ephemeral_gb", 0), swap=row.flavor.get("swap", 0),
                        extra_specs=dict(row.flavor.get("extra_specs") or {}))
    return RequestSpec(project_id=row.project_id, user_id=row.user_id, flavor=flavor,
                       image={"id": image.id, "properties": dict(image.properties or {}),
                              "disk_format": image.disk_format, "min_ram": image.min_ram,
                              "min_disk": image.min_disk, "size": image.size}).to_dict()


async def _view(call: Call, uuid: str, password: str) -> dict[str, Any]:
    """Nova's rebuild response: the server as shown, fewer attributes before
    2.75, with the admin password and (2.57) the user data."""
    v = call.version
    async with call.deps.db.session() as session:
        row = await instances.get(session, call.ctx, uuid)
        server = server_views.detail(call, row, admin=call.ctx.is_admin)
        server.pop("OS-EXT-SRV-ATTR:user_data", None)
        if not v.at_least("2.75"):
            for key in [k for k in server if k.startswith("OS-EXT-SRV-ATTR:") or k in _NOT_BEFORE_2_75]:
                del server[key]
            if not v.at_least("2.54"):
                server.pop("key_name", None)
        if v.at_least("2.71"):
            server["server_groups"] = await group_records.groups_of(session, row.uuid)
        if v.at_least("2.57"):
            server["user_data"] = row.user_data
    server["adminPass"] = password
    return server


async def _rebuild(call: Call, value: Any) -> Response:
    body = _check_body(call, value)
    password = body.get("adminPass")
    if password is None:
        password = generate_password()
    row, image, values = await _prepare(call, body)
    # Taken again under the row's lock: a concurrent action loses here.
    before = await begin(call, REBUILD, values)
    await ConductorAPI(call.deps.bus).rebuild_instance(
        call.ctx, before.uuid, before.image_ref, before.vm_state, _spec(row, image),
        _boolean("preserve_ephemeral", body.get("preserve_ephemeral", False)))
    server = await _view(call, before.uuid, password)
    return JSON({"server": server}, status_code=202, headers={"Location": f"{base_url(call)}/servers/{before.uuid}"})


ACTIONS: dict[str, Handler] = {"rebuild": _rebuild}

RULES = [
    Rule(REBUILD.rule, ADMIN_OR_PROJECT_MEMBER, "Rebuild a server."),
    Rule(TRUSTED_CERTS_RULE, ADMIN_OR_PROJECT_MEMBER,
         "Rebuild a server with trusted image certificate IDs (2.63)."),
]
