"""Healing allocations (Nova's heal_allocations, run per host by its
compute service): an instance settled on a host but holding nothing in
placement gets its flavor's allocation against that host's provider. One
holding an allocation of another size or elsewhere is only reported: which
side is wrong needs a person. Skipped: instances in a task state (a build,
move or delete is changing their allocation), with an unfinished migration
(the migration's consumer holds the source's share), and shelved-offloaded
ones (they hold nothing by design).

The claim is made as a new consumer, so an allocation written meanwhile by
anyone else wins; the instance is read again after the claim, and if it
changed (deleted, moved, busy) the claim is given back with the generation
it got, so a heal never leaks an allocation nor takes one that another
workflow wrote since."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sqlalchemy import select

from loom import placement
from loom.db.models import Instance, Migration
from loom.objects import migrations
from loom.placement.allocations import for_consumer
from loom.scheduler.hosts import compute_node_uuid
from loom.scheduler.placement_request import candidate_request
from loom.scheduler.request import FlavorSpec, RequestSpec

LOG = logging.getLogger(__name__)
_FLAVOR_FIELDS = ("flavorid", "name", "vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap", "extra_specs")


def flavor_allocation(row: Instance) -> dict[str, int]:
    """What the scheduler claims for the instance's flavor, all classes summed."""
    flavor = FlavorSpec(**{k: row.flavor[k] for k in _FLAVOR_FIELDS if k in row.flavor})
    spec = RequestSpec(row.project_id, row.user_id, flavor, is_bfv=not row.image_ref)
    wanted: Counter[str] = Counter()
    for group in candidate_request(spec).groups.values():
        wanted.update(group.resources)
    return dict(wanted)


def _skip_reason(row: Instance, moving: set[str]) -> str | None:
    if row.vm_state == "shelved_offloaded":
        return "it is shelved-offloaded"
    if row.task_state is not None:
        return f"it is undergoing a task state transition: {row.task_state}"
    if row.uuid in moving:
        return "it has a migration in progress"
    return None


async def heal_host(conductor: Any, host: str) -> dict[str, list[str]]:
    db = conductor.db
    provider = compute_node_uuid(host)
    async with db.session() as session:
        rows = list(await session.scalars(select(Instance).where(Instance.host == host,
                                                                 Instance.deleted.is_(False))))
        moving = set(await session.scalars(select(Migration.instance_uuid).where(
            Migration.instance_uuid.in_([r.uuid for r in rows]), Migration.deleted.is_(False),
            Migration.status.not_in(migrations.FINISHED)))) if rows else set()
    result: dict[str, list[str]] = {"healed": [], "mismatched": [], "skipped": []}
    for row in rows:
        why = _skip_reason(row, moving)
        if why:
            LOG.debug("heal allocations: instance %s skipped: %s", row.uuid, why)
            result["skipped"].append(row.uuid)
            continue
        try:
            outcome = await _heal(db, row, provider)
        except Exception:
            LOG.exception("healing the allocation of instance %s failed", row.uuid)
            outcome = "skipped"
        result[outcome].append(row.uuid)
    return result


async def _heal(db: Any, row: Instance, provider: str) -> str:
    wanted = flavor_allocation(row)
    async with db.session() as session:
        view = await for_consumer(session, row.uuid)
    if view.allocations:
        held: Counter[str] = Counter()
        for entry in view.allocations.values():
            held.update(entry["resources"])
        if dict(held) != wanted or set(view.allocations) != {provider}:
            LOG.warning("instance %s on %s holds %s on providers %s, not its flavor's %s on %s; left as it is",
                        row.uuid, row.host, dict(held), sorted(view.allocations), wanted, provider)
            return "mismatched"
        return "skipped"
    try:
        generation = await placement.claim(db, row.uuid, {provider: wanted}, row.project_id, row.user_id,
                                           consumer_generation=None)
    except (placement.PlacementConflict, placement.PlacementInvalid) as exc:
        LOG.warning("could not heal the allocation of instance %s on %s: %s", row.uuid, row.host, exc)
        return "skipped"
    async with db.session() as session:
        now = await session.scalar(select(Instance).where(Instance.uuid == row.uuid)
                                   .execution_options(populate_existing=True))
    if now is None or now.deleted or now.host != row.host or now.task_state is not None:
        try:
            await placement.release(db, row.uuid, consumer_generation=generation)
        except placement.PlacementConflict:
            pass  # another workflow wrote the instance's allocation since: it is theirs
        return "skipped"
    LOG.warning("instance %s on %s held no allocation in placement; gave it %s on its host's provider",
                row.uuid, row.host, wanted)
    return "healed"
