"""The service user that hosts without the database authenticate as
(``service_user.*``): made by bootstrap when a password is configured,
its password following the configuration on every bootstrap."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loom.config import Settings
from loom.db.models import Assignment, Domain, Project, User
from loom.errors import Invalid
from loom.identity.passwords import hash_password, verify_password
from loom.timeutils import utcnow

# Compute hosts read and write any project's images for requests the API
# has already authorised: the Image API grants that to admins only.
ROLES = ("admin", "service")


async def ensure(session: AsyncSession, settings: Settings, role_ids: dict[str, str]) -> User | None:
    """The service user with its roles on its project; None when no
    password is configured (the embedded mode needs none)."""
    conf = settings.service_user
    if not conf.password:
        return None
    user_domain = await _domain(session, conf.user_domain_name)
    project_domain = await _domain(session, conf.project_domain_name)
    project = await session.scalar(select(Project).where(Project.name == conf.project_name,
                                                         Project.domain_id == project_domain.id))
    if project is None:
        project = Project(name=conf.project_name, domain_id=project_domain.id,
                          description="Project of the service users")
        session.add(project)
        await session.flush()
    user = await session.scalar(select(User).where(User.name == conf.username, User.domain_id == user_domain.id))
    rounds = settings.identity.password_hash_rounds
    if user is None:
        user = User(name=conf.username, domain_id=user_domain.id, default_project_id=project.id,
                    password_hash=await hash_password(conf.password, rounds), password_created_at=utcnow())
        session.add(user)
        await session.flush()
    elif not await verify_password(conf.password, user.password_hash, rounds=rounds):
        user.password_hash = await hash_password(conf.password, rounds)
        user.password_created_at = utcnow()
    for role in ROLES:
        key = ("UserProject", user.id, project.id, role_ids[role], False)
        if await session.get(Assignment, key) is None:
            session.add(Assignment(type="UserProject", actor_id=user.id, target_id=project.id,
                                   role_id=role_ids[role], inherited=False))
    return user


async def _domain(session: AsyncSession, name: str) -> Domain:
    domain = await session.scalar(select(Domain).where(Domain.name == name))
    if domain is None:
        raise Invalid(f"service_user: there is no domain named {name!r}")
    return domain
