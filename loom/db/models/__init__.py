"""SQLAlchemy models. Alembic migrations under ``migrations/`` create the
same schema; a test keeps the two in agreement. Every model module is
imported here so ``Base.metadata`` is complete."""

from loom.db.models.aggregate import Aggregate, AggregateHost, AggregateMetadata
from loom.db.models.base import Base, TimestampMixin, new_id, new_uuid
from loom.db.models.compute import Flavor, FlavorExtraSpec, FlavorProject, KeyPair
from loom.db.models.compute_node import ComputeNode
from loom.db.models.console import ConsoleAuthToken
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
from loom.db.models.instance import Instance, InstanceAction, InstanceActionEvent
from loom.db.models.migration import Migration
from loom.db.models.placement import (
    CustomResourceClass,
    CustomTrait,
    PlacementAllocation,
    PlacementConsumer,
    ProviderAggregate,
    ProviderInventory,
    ProviderTrait,
    ResourceProvider,
)
from loom.db.models.quota import Quota, QuotaClass
from loom.db.models.server_group import ServerGroup, ServerGroupMember
from loom.db.models.service import Service
from loom.db.models.task_log import TaskLog

__all__ = [
    "Aggregate",
    "AggregateHost",
    "AggregateMetadata",
    "AppCredential",
    "Assignment",
    "Base",
    "CatalogEndpoint",
    "CatalogService",
    "ComputeNode",
    "ConsoleAuthToken",
    "CustomResourceClass",
    "CustomTrait",
    "Domain",
    "Flavor",
    "FlavorExtraSpec",
    "FlavorProject",
    "Group",
    "Image",
    "ImageMember",
    "ImpliedRole",
    "Instance",
    "InstanceAction",
    "InstanceActionEvent",
    "KeyPair",
    "Migration",
    "PlacementAllocation",
    "PlacementConsumer",
    "Project",
    "ProviderAggregate",
    "ProviderInventory",
    "ProviderTrait",
    "Quota",
    "QuotaClass",
    "Region",
    "ResourceProvider",
    "Revocation",
    "Role",
    "ServerGroup",
    "ServerGroupMember",
    "Service",
    "TaskLog",
    "TimestampMixin",
    "User",
    "UserGroup",
    "new_id",
    "new_uuid",
]
