"""Migration records: created when a move starts, moved through their
statuses by the workflow, read by the migrations APIs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loom.db import fast
from loom.db.models import Migration
from loom.errors import NotFound
from loom.timeutils import utcnow

# Statuses after which a migration no longer holds anything.
FINISHED = ("confirmed", "reverted", "error", "failed", "completed", "done", "cancelled")
# Statuses in which a migration is still moving the instance (Nova's
# in-progress set, less the resize that waits for a confirmation).
IN_PROGRESS = ("queued", "preparing", "running", "pre-migrating", "migrating", "post-migrating", "accepted",
               "confirming", "reverting")

UPDATABLE = {"status", "source_compute", "source_node", "dest_compute", "dest_node", "dest_host",
             "memory_total", "memory_processed", "memory_remaining", "disk_total", "disk_processed",
             "disk_remaining", "hidden", "deleted", "deleted_at"}


def not_found(migration_id: Any, instance_uuid: str | None = None) -> NotFound:
    if instance_uuid:
        return NotFound(f"Migration {migration_id} for instance {instance_uuid} could not be found.",
                        migration=str(migration_id))
    return NotFound(f"Migration {migration_id} could not be found.", migration=str(migration_id))


async def create(session: AsyncSession, **values: Any) -> Migration:
    row = Migration(**values)
    session.add(row)
    await session.flush()
    return row


async def get(session: AsyncSession, migration_id: int) -> Migration:
    row = await session.scalar(select(Migration).where(Migration.id == migration_id, Migration.deleted.is_(False))
                               .execution_options(populate_existing=True))
    if row is None:
        raise not_found(migration_id)
    return row


async def by_uuid(session: AsyncSession, uuid: str) -> Migration:
    row = await session.scalar(select(Migration).where(Migration.uuid == uuid)
                               .execution_options(populate_existing=True))
    if row is None:
        raise not_found(uuid)
    return row


async def of_instance(session: AsyncSession, instance_uuid: str, statuses: tuple[str, ...] | None = None,
                      migration_type: str | None = None) -> list[Migration]:
    """The instance's migrations, newest first; only those in ``statuses``
    (and of ``migration_type``) when given."""
    query = select(Migration).where(Migration.instance_uuid == instance_uuid, Migration.deleted.is_(False))
    if statuses is not None:
        query = query.where(Migration.status.in_(statuses))
    if migration_type is not None:
        query = query.where(Migration.migration_type == migration_type)
    return list(await session.scalars(query.order_by(Migration.created_at.desc(), Migration.id.desc())))


async def set_fields(session: AsyncSession, migration_id: int, values: dict[str, Any],
                     expected_status: tuple[str, ...] | None = None) -> bool:
    """Update a migration; with ``expected_status`` only if its status is
    one of those. Whether it was updated."""
    unknown = set(values) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {unknown}")
    query = update(Migration).where(Migration.id == migration_id)
    if expected_status is not None:
        query = query.where(Migration.status.in_(expected_status))
    result = await session.execute(query.values(**values, updated_at=utcnow())
                                   .execution_options(synchronize_session=False))
    return bool(result.rowcount)


def to_dict(row: Migration) -> dict[str, Any]:
    """What travels over RPC to the hosts taking part."""
    return {"id": row.id, "uuid": row.uuid, "instance_uuid": row.instance_uuid,
            "migration_type": row.migration_type, "status": row.status, "source_compute": row.source_compute,
            "source_node": row.source_node, "dest_compute": row.dest_compute, "dest_node": row.dest_node,
            "old_flavor_id": row.old_flavor_id, "new_flavor_id": row.new_flavor_id}


# Statuses of a cold migration or resize that still holds the source's allocation.
HOLDING = ("pre-migrating", "migrating", "post-migrating", "finished", "confirming", "reverting")


_ANY_HOLDING = fast.Statement(
    select(Migration.id).where(Migration.instance_uuid == bindparam("match"), Migration.deleted.is_(False),
                               Migration.status.in_(HOLDING),
                               Migration.migration_type.in_(("migration", "resize"))).limit(1))


async def holding(session: AsyncSession, instance_uuid: str) -> Migration | None:
    """The instance's cold migration or resize under way (or waiting to be
    confirmed), if any."""
    # Every delete asks; almost every instance has none.
    if await fast.scalar(session, _ANY_HOLDING, {"match": instance_uuid}) is None:
        return None
    found = await of_instance(session, instance_uuid, HOLDING)
    return next((m for m in found if m.migration_type in ("migration", "resize")), None)


def move_instance(row: Any) -> dict[str, Any]:
    """What the hosts taking part in a move need to know of its instance."""
    return {"uuid": row.uuid, "name": f"instance-{row.id:08x}", "hostname": row.hostname, "host": row.host,
            "display_name": row.display_name, "flavor": row.flavor, "old_flavor": row.old_flavor,
            "new_flavor": row.new_flavor, "image_ref": row.image_ref, "key_data": row.key_data,
            "user_data": row.user_data, "metadata": dict(row.metadata_ or {}), "project_id": row.project_id,
            "user_id": row.user_id, "config_drive": row.config_drive, "vm_state": row.vm_state,
            "power_state": row.power_state, "old_vm_state": (row.system_metadata or {}).get("old_vm_state")}
