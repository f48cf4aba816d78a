"""SQLAlchemy models. Alembic migrations under ``migrations/`` create the
same schema; a test keeps the two in agreement. Every model module is
imported here so ``Base.metadata`` is complete."""

from loom.db.models.base import Base, TimestampMixin, new_id, new_uuid
from loom.db.models.identity import (
    AppCredential,
    Assignment,
    CatalogEndpoint,
    CatalogService,
    Domain,
    Group,
    ImpliedRole,
    Project,
    Region,
    Revocation,
    Role,
    User,
    UserGroup,
)
from loom.db.models.image import Image, ImageMember
from loom.db.models.service import Service

__all__ = [
    "AppCredential",
    "Assignment",
    "Base",
    "CatalogEndpoint",
    "CatalogService",
    "Domain",
    "Group",
    "Image",
    "ImageMember",
    "ImpliedRole",
    "Project",
    "Region",
    "Revocation",
    "Role",
    "Service",
    "TimestampMixin",
    "User",
    "UserGroup",
    "new_id",
    "new_uuid",
]
