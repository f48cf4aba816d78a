"""A compute host that restarts in the middle of a move settles it, so that
no server stays in a resize task state and the allocations follow:

- on the source, before the disk was handed over (resize_prep,
  resize_migrating): the move is undone there; the kept copy (if any)
  comes back, running if the server was; the allocation returns to the
  instance; the migration ends in error;
- on the destination, before VERIFY_RESIZE (resize_migrated,
  resize_finish) or in a revert that had not given the server back yet
  (resize_reverting): the move is reverted as a user's revert is, ending
  in error for an unfinished move;
- on the source, in a revert the destination had finished: the source
  finishes it.
"""

from __future__ import annotations

import logging
from typing import Any

from loom.compute import recover as reconcile
from loom.compute.resize import common, revert
from loom.context import RequestContext

LOG = logging.getLogger(__name__)
TASKS = ("resize_prep", "resize_migrating", "resize_migrated", "resize_finish", "resize_reverting")
EVENT = "compute_init_host"


def _reverted_to_source(instance: dict[str, Any], migration: dict[str, Any]) -> bool:
    """Whether the destination already gave the server back (its host is
    the source again; on one host its flavor is the old one again)."""
    if migration["source_compute"] != migration["dest_compute"]:
        return bool(instance["host"] == migration["source_compute"])
    return bool(instance["flavor"] == common.old_flavor(instance))


async def recover(compute: Any, record: dict[str, Any]) -> bool:
    """Settle the instance's interrupted move; False if it has none (the
    caller then settles its task state as for any other operation)."""
    ctx = RequestContext.for_service(compute.binary)
    uuid, task = record["uuid"], record["task_state"]
    found = await compute.conductor.move_of(ctx, uuid)
    if found is None:
        return False
    instance, migration = found["instance"], found["migration"]
    LOG.warning("instance %s: its move (migration %s) was interrupted in %s by a restart of %s", uuid,
                migration["uuid"], task, compute.host)
    if task in ("resize_prep", "resize_migrating"):
        await _undo_on_source(compute, ctx, instance, migration, task)
    elif task in ("resize_migrated", "resize_finish"):
        await revert.revert_resize(compute, ctx, instance, migration, expected=(task,), final_status="error")
    elif _reverted_to_source(instance, migration):
        await revert.finish_revert_resize(compute, ctx, instance, migration)
    else:
        await revert.revert_resize(compute, ctx, instance, migration)
    return True


async def _undo_on_source(compute: Any, ctx: RequestContext, instance: dict[str, Any], migration: dict[str, Any],
                          task: str) -> None:
    uuid = instance["uuid"]
    if task == "resize_migrating":
        try:
            await compute.driver.finish_revert_migration(common.spec_for(instance, common.old_flavor(instance)),
                                                         common.power_on_after(instance))
        except Exception:
            LOG.exception("could not bring back the guest of %s on %s", uuid, compute.host)
    state = await reconcile.power_state(compute, uuid)
    values = {"vm_state": reconcile.VM_STATE_OF[state], "task_state": None, "power_state": int(state),
              "old_flavor": None, "new_flavor": None}
    await compute.conductor.move_update(ctx, uuid, migration["id"], values, {"status": "error"},
                                        expected_task_state=[task], allocations="revert", event=EVENT,
                                        host=compute.host)
