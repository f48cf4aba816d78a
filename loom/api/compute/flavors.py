"""``/flavors``, flavor extra specs and flavor access."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from loom.api.compute.base import enforce, int_param, links
from loom.api.http import JSON, Call, MethodNotAllowed, empty
from loom.db.models.compute import Flavor
from loom.errors import Forbidden, Invalid, NotFound
from loom.objects import flavors

MAX_LIMIT = 1000


def view(call: Call, f: Flavor, specs: dict[str, str] | None = None, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f.flavorid, "name": f.name, "links": links(call, "flavors", f.flavorid)}
    v = call.version
    if v.at_least("2.55"):
        out["description"] = f.description
    if not detail:
        return out
    out.update({
        "ram": f.memory_mb, "disk": f.root_gb, "vcpus": f.vcpus,
        "swap": f.swap if v.at_least("2.75") else (f.swap or ""),
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb, "OS-FLV-DISABLED:disabled": f.disabled,
        "os-flavor-access:is_public": f.is_public, "rxtx_factor": f.rxtx_factor,
    })
    if v.at_least("2.61") and specs is not None:
        out["extra_specs"] = specs
    return out


def _is_public_filter(call: Call) -> bool | None:
    raw = call.query.get("is_public")
    if not call.ctx.is_admin:
        return True
    if raw is None:
        return True
    if raw.lower() == "none":
        return None
    if raw.lower() in ("true", "t", "1", "yes", "y", "on"):
        return True
    if raw.lower() in ("false", "f", "0", "no", "n", "off"):
        return False
    raise Invalid(f"Invalid is_public filter [{raw}]")


async def _list(call: Call, detail: bool) -> Response:
    limit = int_param(call, "limit") or MAX_LIMIT
    async with call.deps.db.session() as session:
        rows = await flavors.list_(
            session, call.ctx, is_public=_is_public_filter(call), min_ram=int_param(call, "minRam"),
            min_disk=int_param(call, "minDisk"), sort_key=call.query.get("sort_key", "flavorid"),
            sort_dir=call.query.get("sort_dir", "asc"), limit=min(limit, MAX_LIMIT),
            marker=call.query.get("marker"))
        specs = await flavors.extra_specs_of(session, rows) if detail and call.version.at_least("2.61") else {}
    body: dict[str, Any] = {"flavors": [view(call, f, specs.get(f.id), detail) for f in rows]}
    if rows and len(rows) == limit and "limit" in call.query:
        body["flavors_links"] = [{"rel": "next", "href": f"{links(call, 'flavors', '')[0]['href'].rstrip('/')}"
                                  f"{'/detail' if detail else ''}?limit={limit}&marker={rows[-1].flavorid}"}]
    return JSON(body)


async def list_(call: Call) -> Response:
    return await _list(call, detail=False)


async def detail(call: Call) -> Response:
    return await _list(call, detail=True)


async def show(call: Call) -> Response:
    async with call.deps.db.session() as session:
        flavor = await flavors.get(session, call.ctx, call.params["flavor_id"])
        specs = await flavors.extra_specs(session, flavor)
    return JSON({"flavor": view(call, flavor, specs)})


def _int_field(body: dict[str, Any], name: str, default: int | None, minimum: int, maximum: int = 2**31 - 1) -> int:
    value = body.get(name, default)
    if value is None:
        raise Invalid(f"Invalid input for field/attribute {name}. Value: None. '{name}' is a required property")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"Invalid input for field/attribute {name}. Value: {value}. '{value}' is not an integer")
    if not minimum <= value <= maximum:
        raise Invalid(f"Invalid input for field/attribute {name}. Value: {value}. must be between {minimum} and "
                      f"{maximum}")
    return value


async def create(call: Call) -> Response:
    enforce(call, "os_compute_api:os-flavor-manage:create")
    body = await call.json_object("flavor")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise Invalid(f"Invalid input for field/attribute name. Value: {name!r}. must be a non-empty string of "
                      "at most 255 characters")
    flavorid = body.get("id")
    if flavorid is not None and (not isinstance(flavorid, (str, int)) or str(flavorid) in ("", "auto")):
        flavorid = None
    description = body.get("description")
    if description is not None and not call.version.at_least("2.55"):
        raise Invalid("Invalid input for field/attribute flavor. Additional properties are not allowed "
                      "('description' was unexpected)")
    is_public = body.get("os-flavor-access:is_public", True)
    if not isinstance(is_public, bool):
        raise Invalid("Invalid input for field/attribute os-flavor-access:is_public: must be a boolean.")
    rxtx = body.get("rxtx_factor", 1.0)
    if isinstance(rxtx, bool) or not isinstance(rxtx, (int, float)) or rxtx <= 0:
        raise Invalid("Invalid input for field/attribute rxtx_factor: must be a positive number.")
    values = {
        "name": name.strip(), "flavorid": str(flavorid) if flavorid is not None else None,
        "memory_mb": _int_field(body, "ram", None, 1), "vcpus": _int_field(body, "vcpus", None, 1),
        "root_gb": _int_field(body, "disk", None, 0), "swap": _int_field(body, "swap", 0, 0),
        "ephemeral_gb": _int_field(body, "OS-FLV-EXT-DATA:ephemeral", 0, 0), "rxtx_factor": float(rxtx),
        "is_public": is_public, "description": description,
    }
    async with call.deps.db.session.begin() as session:
        flavor = await flavors.create(session, values)
    return JSON({"flavor": view(call, flavor, {})})


async def update(call: Call) -> Response:
    if not call.version.at_least("2.55"):
        raise MethodNotAllowed("PUT")
    enforce(call, "os_compute_api:os-flavor-manage:update")
    body = await call.json_object("flavor")
    if set(body) != {"description"}:
        raise Invalid("Invalid input for field/attribute flavor: only 'description' can be updated.")
    async with call.deps.db.session.begin() as session:
        flavor = await flavors.get(session, call.ctx, call.params["flavor_id"])
        flavor.description = body["description"]
        specs = await flavors.extra_specs(session, flavor)
    return JSON({"flavor": view(call, flavor, specs)})


async def delete(call: Call) -> Response:
    enforce(call, "os_compute_api:os-flavor-manage:delete")
    async with call.deps.db.session.begin() as session:
        await flavors.delete(session, call.params["flavor_id"])
    return empty(202)


async def list_extra_specs(call: Call) -> Response:
    enforce(call, "os_compute_api:os-flavor-extra-specs:index")
    async with call.deps.db.session() as session:
        flavor = await flavors.get(session, call.ctx, call.params["flavor_id"])
        specs = await flavors.extra_specs(session, flavor)
    return JSON({"extra_specs": specs})


async def create_extra_specs(call: Call) -> Response:
    enforce(call, "os_compute_api:os-flavor-extra-specs:create")
    body = await call.json_object()
    specs = flavors.validate_extra_specs(body.get("extra_specs"))
    async with call.deps.db.session.begin() as session:
        flavor = await flavors.get(session, call.ctx, call.params["flavor_id"])
        await flavors.set_extra_specs(session, flavor, specs)
    return JSON({"extra_specs": specs})


async def show_extra_spec(call: Call) -> Response:
    enforce(call, "os_compute_api:os-flavor-extra-specs:show")
    key = call.params["key"]
    async with call.deps.db.session() as session:
        flavor = await flavors.get(session, call.ctx, call.params["flavor_id"])
        specs = await flavors.extra_specs(session, flavor)
    if key not in specs:
        raise NotFound(f"Flavor {flavor.flavorid} has no extra specs with key {key}.")
    return JSON({key: specs[key]})


async def update_extra_spec(call: Call) -> Response:
    enforce(call, "os_compute_api:os-flavor-extra-specs:update")
    key = call.params["key"]
    body = await call.json_object()
    if list(body) != [key]:
        raise Invalid("Request body and URI mismatch")
    specs = flavors.validate_extra_specs(body)
    async with call.deps.db.session.begin() as session:
        flavor = await flavors.get(session, call.ctx, call.params["flavor_id"])
        await flavors.set_extra_specs(session, flavor, specs)
    return JSON(specs)


async def delete_extra_spec(call: Call) -> Response:
    enforce(call, "os_compute_api:os-flavor-extra-specs:delete")
    async with call.deps.db.session.begin() as session:
        flavor = await flavors.get(session, call.ctx, call.params["flavor_id"])
        await flavors.delete_extra_spec(session, flavor, call.params["key"])
    return empty(202)


async def list_access(call: Call) -> Response:
    enforce(call, "os_compute_api:os-flavor-access")
    async with call.deps.db.session() as session:
        flavor = await flavors.get(session, call.ctx, call.params["flavor_id"])
        if flavor.is_public:
            raise Forbidden("Access list not available for public flavors.")
        projects = await flavors.access(session, flavor)
    return JSON({"flavor_access": [{"flavor_id": flavor.flavorid, "tenant_id": p} for p in projects]})


async def action(call: Call) -> Response:
    """``POST /flavors/{id}/action`` with addTenantAccess or removeTenantAccess."""
    body = await call.json_object()
    if len(body) != 1 or next(iter(body)) not in ("addTenantAccess", "removeTenantAccess"):
        raise Invalid("Invalid action: use addTenantAccess or removeTenantAccess.")
    name, args = next(iter(body.items()))
    rule = "add_tenant_access" if name == "addTenantAccess" else "remove_tenant_access"
    enforce(call, f"os_compute_api:os-flavor-access:{rule}")
    project = args.get("tenant") if isinstance(args, dict) else None
    if not isinstance(project, str) or not project:
        raise Invalid(f"Invalid input for field/attribute {name}: 'tenant' is a required property")
    async with call.deps.db.session.begin() as session:
        flavor = await flavors.get(session, call.ctx, call.params["flavor_id"])
        if name == "addTenantAccess":
            await flavors.add_access(session, flavor, project)
        else:
            await flavors.remove_access(session, flavor, project)
        projects = await flavors.access(session, flavor)
    return JSON({"flavor_access": [{"flavor_id": flavor.flavorid, "tenant_id": p} for p in projects]})
