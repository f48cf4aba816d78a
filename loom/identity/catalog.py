"""The service catalog: regions, services and their endpoints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db.helpers import apply_updates, flush_or_conflict, get_or_404
from loom.db.models import CatalogEndpoint, CatalogService, Region
from loom.errors import Conflict, Invalid
from loom.identity.common import filter_by

INTERFACES = ("public", "internal", "admin")


async def get_region(session: AsyncSession, region_id: str) -> Region:
    return await get_or_404(session, Region, region_id, "region")


async def list_regions(session: AsyncSession, filters: dict[str, Any]) -> list[Region]:
    query = filter_by(select(Region).order_by(Region.id), Region, filters, ("parent_region_id",))
    return list(await session.scalars(query))


async def create_region(session: AsyncSession, values: dict[str, Any]) -> Region:
    if values.get("parent_region_id"):
        await get_region(session, values["parent_region_id"])
    region = Region(**values)
    session.add(region)
    await flush_or_conflict(session, f"Conflict occurred attempting to store region - Duplicate ID, "
                            f"{values.get('id')}.")
    return region


async def update_region(session: AsyncSession, region_id: str, values: dict[str, Any]) -> Region:
    region = await get_region(session, region_id)
    if values.get("parent_region_id"):
        await get_region(session, values["parent_region_id"])
    apply_updates(region, values, {"description", "parent_region_id", "extra"})
    return region


async def delete_region(session: AsyncSession, region_id: str) -> None:
    region = await get_region(session, region_id)
    used = await session.scalar(select(func.count()).select_from(CatalogEndpoint).where(
        CatalogEndpoint.region_id == region_id))
    if used:
        raise Conflict(f"Region {region_id} still has {used} endpoints.")
    await session.delete(region)


async def get_service(session: AsyncSession, service_id: str) -> CatalogService:
    return await get_or_404(session, CatalogService, service_id, "service")


async def list_services(session: AsyncSession, filters: dict[str, Any]) -> list[CatalogService]:
    query = select(CatalogService).order_by(CatalogService.type, CatalogService.name)
    return list(await session.scalars(filter_by(query, CatalogService, filters, ("type", "name"))))


async def create_service(session: AsyncSession, values: dict[str, Any]) -> CatalogService:
    service = CatalogService(**values)
    session.add(service)
    await session.flush()
    return service


async def update_service(session: AsyncSession, service_id: str, values: dict[str, Any]) -> CatalogService:
    service = await get_service(session, service_id)
    apply_updates(service, values, {"type", "name", "description", "enabled", "extra"})
    return service


async def delete_service(session: AsyncSession, service_id: str) -> None:
    await session.delete(await get_service(session, service_id))


async def get_endpoint(session: AsyncSession, endpoint_id: str) -> CatalogEndpoint:
    return await get_or_404(session, CatalogEndpoint, endpoint_id, "endpoint")


async def list_endpoints(session: AsyncSession, filters: dict[str, Any]) -> list[CatalogEndpoint]:
    query = select(CatalogEndpoint).order_by(CatalogEndpoint.service_id, CatalogEndpoint.interface)
    query = filter_by(query, CatalogEndpoint, filters, ("service_id", "interface", "region_id"))
    return list(await session.scalars(query))


async def _check_endpoint(session: AsyncSession, values: dict[str, Any]) -> None:
    if "interface" in values and values["interface"] not in INTERFACES:
        raise Invalid(f"Invalid interface {values['interface']!r}: use one of {', '.join(INTERFACES)}.")
    if values.get("service_id"):
        await get_service(session, values["service_id"])
    if values.get("region_id"):
        await get_region(session, values["region_id"])


async def create_endpoint(session: AsyncSession, values: dict[str, Any]) -> CatalogEndpoint:
    await _check_endpoint(session, values)
    endpoint = CatalogEndpoint(**values)
    session.add(endpoint)
    await session.flush()
    return endpoint


async def update_endpoint(session: AsyncSession, endpoint_id: str, values: dict[str, Any]) -> CatalogEndpoint:
    endpoint = await get_endpoint(session, endpoint_id)
    await _check_endpoint(session, values)
    apply_updates(endpoint, values, {"service_id", "interface", "region_id", "url", "enabled", "extra"})
    return endpoint


async def delete_endpoint(session: AsyncSession, endpoint_id: str) -> None:
    await session.delete(await get_endpoint(session, endpoint_id))


async def build(session: AsyncSession) -> list[dict[str, Any]]:
    """The catalog as tokens carry it: enabled services with their enabled
    endpoints."""
    services = {s.id: s for s in await session.scalars(
        select(CatalogService).where(CatalogService.enabled.is_(True)))}
    by_service: dict[str, list[dict[str, Any]]] = {sid: [] for sid in services}
    for ep in await session.scalars(select(CatalogEndpoint).where(CatalogEndpoint.enabled.is_(True))):
        if ep.service_id in by_service:
            by_service[ep.service_id].append({
                "id": ep.id, "interface": ep.interface, "region_id": ep.region_id,
                "region": ep.region_id, "url": ep.url,
            })
    return [
        {"id": s.id, "type": s.type, "name": s.name or "", "endpoints": by_service[s.id]}
        for s in sorted(services.values(), key=lambda s: (s.type, s.name or ""))
    ]
