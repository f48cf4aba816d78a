"""Flavors: sizes of servers, their extra specs and who may use the private ones."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import Boolean, bindparam, or_, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession

from loom.context import RequestContext
from loom.db import fast
from loom.db.helpers import flush_or_conflict
from loom.db.models.compute import Flavor, FlavorExtraSpec, FlavorProject
from loom.errors import Conflict, Invalid, NotFound

SORT_KEYS = ("created_at", "description", "disabled", "ephemeral_gb", "flavorid", "id", "is_public",
             "memory_mb", "name", "root_gb", "rxtx_factor", "swap", "updated_at", "vcpu_weight", "vcpus")
_SPEC_KEY = re.compile(r"^[\w.:\- ]{1,255}$")
# Values Loom understands for the extra specs it acts on.
_ENUM_SPECS = {
    "hw:cpu_policy": {"shared", "dedicated", "mixed"},
    "hw:cpu_thread_policy": {"prefer", "isolate", "require"},
    "hw:mem_page_size": None,
    "hw:watchdog_action": {"none", "pause", "poweroff", "reset", "disabled"},
    "hw_rng:allowed": {"true", "false", "True", "False"},
}
_INT_PREFIXES = ("quota:", "hw:numa_nodes", "hw:cpu_realtime_mask")


def not_found(flavor_id: str) -> NotFound:
    return NotFound(f"Flavor {flavor_id} could not be found.", flavor_id=flavor_id)


def visible(ctx: RequestContext) -> Any:
    if ctx.is_admin:
        return True
    granted = select(FlavorProject.flavor_id).where(FlavorProject.project_id == (ctx.project_id or ""))
    return or_(Flavor.is_public.is_(True), Flavor.id.in_(granted))


async def get(session: AsyncSession, ctx: RequestContext, flavor_id: str) -> Flavor:
    flavor = await session.scalar(select(Flavor).where(Flavor.flavorid == flavor_id, visible(ctx)))
    if flavor is None:
        raise not_found(flavor_id)
    return flavor


_LOOKUP = fast.Statement(
    select(Flavor.id, Flavor.flavorid, Flavor.name, Flavor.memory_mb, Flavor.vcpus, Flavor.root_gb,
           Flavor.ephemeral_gb, Flavor.swap, Flavor.is_public)
    .where(Flavor.flavorid == bindparam("flavorid"),
           or_(bindparam("admin", type_=Boolean), Flavor.is_public.is_(True),
               Flavor.id.in_(select(FlavorProject.flavor_id).where(FlavorProject.project_id == bindparam("project"))))))
_SPECS = fast.Statement(select(FlavorExtraSpec.key, FlavorExtraSpec.value)
                        .where(FlavorExtraSpec.flavor_id == bindparam("flavor_id")).order_by(FlavorExtraSpec.key))


async def lookup(session: fast.Session, ctx: RequestContext, flavor_id: str) -> Any:
    """What a boot reads of a flavor the caller may see, as a row (``get``
    without the ORM): id, flavorid, name, memory_mb, vcpus, root_gb,
    ephemeral_gb, swap, is_public."""
    row = await fast.first(session, _LOOKUP, {"flavorid": flavor_id, "admin": ctx.is_admin,
                                              "project": ctx.project_id or ""})
    if row is None:
        raise not_found(flavor_id)
    return row


async def extra_specs_by_id(session: fast.Session, flavor_id: int) -> dict[str, str]:
    """``extra_specs`` of the flavor whose row id is ``flavor_id``."""
    return dict(await fast.rows(session, _SPECS, {"flavor_id": flavor_id}))


async def list_(session: AsyncSession, ctx: RequestContext, *, is_public: bool | None, min_ram: int | None,
                min_disk: int | None, sort_key: str, sort_dir: str, limit: int, marker: str | None) -> list[Flavor]:
    if sort_key not in SORT_KEYS:
        raise Invalid(f"Invalid sort_key: {sort_key}")
    if sort_dir not in ("asc", "desc"):
        raise Invalid(f"Invalid sort_dir: {sort_dir}")
    query = select(Flavor).where(visible(ctx), Flavor.disabled.is_(False))
    if is_public is not None:
        query = query.where(Flavor.is_public.is_(is_public))
    if min_ram is not None:
        query = query.where(Flavor.memory_mb >= min_ram)
    if min_disk is not None:
        query = query.where(Flavor.root_gb >= min_disk)
    column = getattr(Flavor, sort_key)
    query = query.order_by(column.desc() if sort_dir == "desc" else column.asc(), Flavor.id.asc())
    rows = list(await session.scalars(query))
    if marker is not None:
        ids = [f.flavorid for f in rows]
        if marker not in ids:
            raise Invalid(f"marker [{marker}] not found")
        rows = rows[ids.index(marker) + 1:]
    return rows[:limit]


async def create(session: AsyncSession, values: dict[str, Any]) -> Flavor:
    flavorid = values.get("flavorid") or str(uuid.uuid4())
    if await session.scalar(select(Flavor.id).where(Flavor.flavorid == flavorid)) is not None:
        raise Conflict(f"Flavor with ID {flavorid} already exists.")
    if await session.scalar(select(Flavor.id).where(Flavor.name == values["name"])) is not None:
        raise Conflict(f"Flavor with name {values['name']} already exists.")
    flavor = Flavor(**{**values, "flavorid": flavorid})
    session.add(flavor)
    await flush_or_conflict(session, f"Flavor with name {values['name']} already exists.")
    return flavor


async def delete(session: AsyncSession, flavor_id: str) -> None:
    flavor = await session.scalar(select(Flavor).where(Flavor.flavorid == flavor_id))
    if flavor is None:
        raise not_found(flavor_id)
    await session.delete(flavor)


async def extra_specs(session: AsyncSession, flavor: Flavor) -> dict[str, str]:
    rows = await session.execute(select(FlavorExtraSpec.key, FlavorExtraSpec.value).where(
        FlavorExtraSpec.flavor_id == flavor.id).order_by(FlavorExtraSpec.key))
    return {k: v for k, v in rows}


async def extra_specs_of(session: AsyncSession, flavors: list[Flavor]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {f.id: {} for f in flavors}
    if flavors:
        rows = await session.execute(select(FlavorExtraSpec).where(FlavorExtraSpec.flavor_id.in_(list(out))))
        for spec in rows.scalars():
            out[spec.flavor_id][spec.key] = spec.value
    return out


def validate_extra_specs(specs: Any) -> dict[str, str]:
    if not isinstance(specs, dict):
        raise Invalid("Invalid input for field/attribute extra_specs: must be an object.")
    out = {}
    for key, value in specs.items():
        if not isinstance(key, str) or not _SPEC_KEY.match(key):
            raise Invalid(f"Invalid extra spec key {key!r}: 1-255 letters, digits, spaces and '_-.:'.")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Invalid(f"Invalid value for extra spec {key}: must be a string or a number.")
        value = str(value)
        if len(value) > 255:
            raise Invalid(f"Invalid value for extra spec {key}: at most 255 characters.")
        allowed = _ENUM_SPECS.get(key)
        if allowed and value not in allowed:
            raise Invalid(f"Invalid value {value!r} for extra spec {key}: use one of {', '.join(sorted(allowed))}.")
        if key.startswith(_INT_PREFIXES) and not value.lstrip("-").isdigit() and key != "hw:cpu_realtime_mask":
            raise Invalid(f"Invalid value {value!r} for extra spec {key}: must be an integer.")
        if key.startswith("resources") and ":" in key and not value.isdigit():
            raise Invalid(f"Invalid value {value!r} for extra spec {key}: must be a non-negative integer.")
        if key.startswith("trait") and ":" in key and value not in ("required", "forbidden"):
            raise Invalid(f"Invalid value {value!r} for extra spec {key}: use required or forbidden.")
        out[key] = value
    return out


async def set_extra_specs(session: AsyncSession, flavor: Flavor, specs: dict[str, str]) -> None:
    for key, value in specs.items():
        row = await session.get(FlavorExtraSpec, (flavor.id, key))
        if row is None:
            session.add(FlavorExtraSpec(flavor_id=flavor.id, key=key, value=value))
        else:
            row.value = value


async def delete_extra_spec(session: AsyncSession, flavor: Flavor, key: str) -> None:
    row = await session.get(FlavorExtraSpec, (flavor.id, key))
    if row is None:
        raise NotFound(f"Flavor {flavor.flavorid} has no extra specs with key {key}.")
    await session.delete(row)


async def access(session: AsyncSession, flavor: Flavor) -> list[str]:
    rows = await session.scalars(select(FlavorProject.project_id).where(FlavorProject.flavor_id == flavor.id))
    return sorted(rows)


async def add_access(session: AsyncSession, flavor: Flavor, project_id: str) -> None:
    if flavor.is_public:
        raise Conflict(f"Can not add access to a public flavor {flavor.flavorid}.")
    if await session.get(FlavorProject, (flavor.id, project_id)) is not None:
        raise Conflict(f"Flavor access already exists for flavor {flavor.flavorid} and project {project_id} "
                       "combination.")
    session.add(FlavorProject(flavor_id=flavor.id, project_id=project_id))


async def remove_access(session: AsyncSession, flavor: Flavor, project_id: str) -> None:
    row = await session.get(FlavorProject, (flavor.id, project_id))
    if row is None:
        raise NotFound(f"Flavor access not found for {flavor.flavorid} / {project_id} combination.")
    await session.execute(sql_delete(FlavorProject).where(
        FlavorProject.flavor_id == flavor.id, FlavorProject.project_id == project_id))
