"""Choosing and claiming where a live migration or an evacuation goes.

As in Nova, the migration record takes over the instance's allocation on
its source host (the migration's uuid is the placement consumer), then the
scheduler claims the destination for the instance's uuid: while the move is
under way both hosts hold what the server needs, and neither is counted
twice. ``give_back`` undoes that when no destination could be had.
"""

from __future__ import annotations

import logging
from typing import Any

from loom import placement
from loom.context import RequestContext
from loom.db.engine import Database
from loom.db.models import Instance
from loom.objects import instances, server_groups
from loom.placement.errors import PlacementNotFound
from loom.scheduler.request import FlavorSpec, RequestSpec, Selection

LOG = logging.getLogger(__name__)
_FLAVOR_KEYS = ("flavorid", "name", "vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap", "extra_specs")


async def request_spec(db: Database, row: Instance) -> RequestSpec:
    """What the scheduler needs to place ``row`` again: its flavor, and its
    server group as the group is now (so anti-affinity holds on a move)."""
    flavor: dict[str, Any] = {k: row.flavor[k] for k in _FLAVOR_KEYS if k in row.flavor}
    flavor.setdefault("extra_specs", {})
    group = None
    async with db.session() as session:
        for group_uuid in await server_groups.groups_of(session, row.uuid):
            group = await server_groups.scheduling_view(session, group_uuid)
    if group is not None:
        # The group as the others place it: this instance is what moves.
        hosts = list(group.get("hosts") or [])
        if row.host in hosts:
            hosts.remove(row.host)
        group = {**group, "hosts": hosts, "members": [m for m in group.get("members") or [] if m != row.uuid]}
    return RequestSpec(project_id=row.project_id, user_id=row.user_id, flavor=FlavorSpec(**flavor),
                       image={"id": row.image_ref} if row.image_ref else {}, instance_group=group)


async def hand_source_to_migration(db: Database, instance_uuid: str, migration_uuid: str) -> None:
    """The migration takes over what the instance holds (its source host)."""
    try:
        await placement.move(db, instance_uuid, migration_uuid)
    except PlacementNotFound:
        # Nothing held (it lost its allocation somehow): the destination's
        # claim is still made, and the heal task looks after the rest.
        LOG.warning("instance %s held no allocation when its move began", instance_uuid)


async def give_back(db: Database, instance_uuid: str, migration_uuid: str) -> None:
    """Undo the above: the instance holds its source again, nothing else."""
    await placement.release(db, instance_uuid)
    try:
        await placement.move(db, migration_uuid, instance_uuid)
    except PlacementNotFound:
        pass


async def choose(conductor: Any, ctx: RequestContext, spec: RequestSpec, instance_uuid: str, source: str,
                 host: str | None, force: bool) -> Selection:
    """Claim a destination for the instance: ``host`` as given when
    ``force`` (no filters, as Nova's forced moves), ``host`` through the
    filters otherwise, or the scheduler's choice of any host but the
    source. Raises NoValidHost (nothing claimed) when none will do."""
    spec.ignore_hosts = [source]
    if host and force:
        spec.force_hosts = [host]
    elif host:
        spec.requested_host = host
    selections = await conductor.scheduler.select_destinations(ctx, spec, [instance_uuid], return_alternates=False)
    return selections[0][0]


async def claim(conductor: Any, ctx: RequestContext, row: Instance, migration_uuid: str, host: str | None,
                force: bool) -> Selection:
    """The steps above in order: the migration takes over the source's
    allocation, then a destination is chosen and claimed (see ``choose``);
    when none is, the instance gets its source back and the error goes on."""
    spec = await request_spec(conductor.db, row)
    await hand_source_to_migration(conductor.db, row.uuid, migration_uuid)
    try:
        return await choose(conductor, ctx, spec, row.uuid, row.host or "", host, force)
    except BaseException:
        await give_back(conductor.db, row.uuid, migration_uuid)
        raise


async def load(db: Database, instance_uuid: str) -> Instance:
    async with db.session() as session:
        return await instances.get_any(session, instance_uuid)
