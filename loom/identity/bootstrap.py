"""First start: the default domain, the standard roles, an admin user and
project, and a catalog entry for every API Loom serves. Runs on every
``loom up`` and is idempotent; the catalog follows the current URL."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.config import Settings
from loom.db.engine import Database
from loom.db.models import (
    Assignment,
    CatalogEndpoint,
    CatalogService,
    Domain,
    ImpliedRole,
    Project,
    Region,
    Role,
    User,
)
from loom.identity import service_user
from loom.identity.common import DEFAULT_DOMAIN_ID
from loom.identity.passwords import hash_password
from loom.timeutils import utcnow

LOG = logging.getLogger(__name__)

ROLES = ("admin", "manager", "member", "reader", "service")
# admin > manager > member > reader, as Keystone's bootstrap sets them up.
IMPLIES = (("admin", "manager"), ("manager", "member"), ("member", "reader"))
# (type, name, path under the public URL) for every API served so far.
APIS: tuple[tuple[str, str, str], ...] = (
    ("identity", "keystone", "/identity"),
    ("image", "glance", "/image"),
    ("placement", "placement", "/placement"),
    ("compute", "nova", "/compute/v2.1"),
)
PASSWORD_FILE = "admin-password"


@dataclass
class Credentials:
    auth_url: str
    username: str
    password: str
    project_name: str
    region: str


async def bootstrap(settings: Settings, db: Database, apis: tuple[tuple[str, str, str], ...] = APIS
                    ) -> Credentials:
    password = _admin_password(settings)
    async with db.session.begin() as session:
        domain = await _ensure(session, Domain, DEFAULT_DOMAIN_ID, name="Default",
                               description="The default domain")
        role_ids = {name: (await _role(session, name)).id for name in ROLES}
        for prior, implied in IMPLIES:
            if await session.get(ImpliedRole, (role_ids[prior], role_ids[implied])) is None:
                session.add(ImpliedRole(prior_role_id=role_ids[prior], implied_role_id=role_ids[implied]))
        admin_project = await _project(session, "admin", domain.id, "Bootstrap project for admins")
        await _project(session, "service", domain.id, "Project of the service users")
        admin = await session.scalar(select(User).where(User.name == "admin", User.domain_id == domain.id))
        if admin is None:
            admin = User(name="admin", domain_id=domain.id, default_project_id=admin_project.id,
                         password_hash=await hash_password(password, settings.identity.password_hash_rounds),
                         password_created_at=utcnow())
            session.add(admin)
            await session.flush()
        elif settings.identity.admin_password:
            admin.password_hash = await hash_password(password, settings.identity.password_hash_rounds)
        for target_type, target_id in (("UserProject", admin_project.id), ("UserSystem", "system")):
            key = (target_type, admin.id, target_id, role_ids["admin"], False)
            if await session.get(Assignment, key) is None:
                session.add(Assignment(type=target_type, actor_id=admin.id, target_id=target_id,
                                       role_id=role_ids["admin"], inherited=False))
        await service_user.ensure(session, settings, role_ids)
        await _ensure(session, Region, settings.identity.region)
        for service_type, name, path in apis:
            await _catalog_entry(session, service_type, name, settings.public_url + path,
                                 settings.identity.region)
    creds = Credentials(settings.public_url + "/identity/v3", "admin", password, "admin",
                        settings.identity.region)
    write_openrc(settings.data_dir, creds)
    return creds


def _admin_password(settings: Settings) -> str:
    """The configured password, the one generated on a first start, or a
    new random one (kept in the data directory, readable by its owner only)."""
    if settings.identity.admin_password:
        return settings.identity.admin_password
    path = settings.data_dir / PASSWORD_FILE
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(18)
    _write_private(path, password + "\n")
    return password


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_openrc(data_dir: Path, creds: Credentials) -> Path:
    path = data_dir / "openrc"
    _write_private(path, "\n".join([
        f"export OS_AUTH_URL={creds.auth_url}",
        f"export OS_USERNAME={creds.username}",
        f"export OS_PASSWORD='{creds.password}'",
        f"export OS_PROJECT_NAME={creds.project_name}",
        "export OS_USER_DOMAIN_NAME=Default",
        "export OS_PROJECT_DOMAIN_NAME=Default",
        f"export OS_REGION_NAME={creds.region}",
        "export OS_IDENTITY_API_VERSION=3",
        "export OS_INTERFACE=public",
        "",
    ]))
    return path


async def _ensure(session: AsyncSession, model: type, ident: str, **values: object) -> object:
    row = await session.get(model, ident)
    if row is None:
        row = model(id=ident, **values)
        session.add(row)
        await session.flush()
    return row


async def _role(session: AsyncSession, name: str) -> Role:
    role = await session.scalar(select(Role).where(Role.name == name, Role.domain_id == ""))
    if role is None:
        role = Role(name=name, domain_id="", options={"immutable": True})
        session.add(role)
        await session.flush()
    return role


async def _project(session: AsyncSession, name: str, domain_id: str, description: str) -> Project:
    project = await session.scalar(select(Project).where(Project.name == name, Project.domain_id == domain_id))
    if project is None:
        project = Project(name=name, domain_id=domain_id, description=description)
        session.add(project)
        await session.flush()
    return project


async def _catalog_entry(session: AsyncSession, service_type: str, name: str, url: str, region: str) -> None:
    service = await session.scalar(select(CatalogService).where(
        CatalogService.type == service_type, CatalogService.name == name))
    if service is None:
        service = CatalogService(type=service_type, name=name, extra={"managed_by": "loom"})
        session.add(service)
        await session.flush()
    if service.extra.get("managed_by") != "loom":
        return
    existing = {e.interface: e for e in await session.scalars(
        select(CatalogEndpoint).where(CatalogEndpoint.service_id == service.id))}
    for interface in ("public", "internal", "admin"):
        endpoint = existing.get(interface)
        if endpoint is None:
            session.add(CatalogEndpoint(service_id=service.id, interface=interface, url=url,
                                        region_id=region))
        else:
            endpoint.url = url
