"""The conductor's side of live migrations and evacuations (a part of
``ConductorAPI``; loom/conductor/live_migrate.py, evacuate.py)."""

from __future__ import annotations

from typing import Any

from loom.context import RequestContext


class LiveMoveCalls:
    client: Any

    async def live_migrate_instance(self, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                                    host: str | None, block_migration: bool | None, force: bool,
                                    down_time: float, wait: bool) -> None:
        """Start the live migration the API recorded; with ``wait`` (before
        microversion 2.34) a call that raises what refused it."""
        kwargs = {"instance_uuid": instance_uuid, "migration": migration, "host": host,
                  "block_migration": block_migration, "force": force, "down_time": down_time}
        if wait:
            await self.client.call(ctx, "live_migrate_instance", **kwargs)
        else:
            await self.client.cast(ctx, "live_migrate_instance", **kwargs)

    async def live_migration_finished(self, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                                      values: dict[str, Any], event_start: str) -> bool:
        return bool(await self.client.call(ctx, "live_migration_finished", instance_uuid=instance_uuid,
                                           migration=migration, values=values, event_start=event_start))

    async def live_migration_rolled_back(self, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                                         status: str, values: dict[str, Any], event_start: str) -> bool:
        return bool(await self.client.call(ctx, "live_migration_rolled_back", instance_uuid=instance_uuid,
                                           migration=migration, status=status, values=values,
                                           event_start=event_start))

    async def live_migration_interrupted(self, ctx: RequestContext, instance_uuid: str, host: str,
                                         values: dict[str, Any]) -> bool:
        """The source restarted during the live migration: roll it back."""
        return bool(await self.client.call(ctx, "live_migration_interrupted", instance_uuid=instance_uuid,
                                           host=host, values=values))

    async def migration_update(self, ctx: RequestContext, migration_id: int, values: dict[str, Any],
                               expected_status: list[str] | None = None) -> bool:
        """Status or progress of a migration; False if its status was not
        one of ``expected_status``."""
        return bool(await self.client.call(ctx, "migration_update", migration_id=migration_id, values=values,
                                           expected_status=expected_status))

    async def evacuate_instance(self, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                                host: str | None, force: bool, orig_vm_state: str) -> None:
        await self.client.cast(ctx, "evacuate_instance", instance_uuid=instance_uuid, migration=migration,
                               host=host, force=force, orig_vm_state=orig_vm_state)

    async def evacuation_finished(self, ctx: RequestContext, instance_uuid: str, migration_id: int,
                                  values: dict[str, Any], host: str, event_start: str) -> bool:
        return bool(await self.client.call(ctx, "evacuation_finished", instance_uuid=instance_uuid,
                                           migration_id=migration_id, values=values, host=host,
                                           event_start=event_start))

    async def evacuation_failed(self, ctx: RequestContext, instance_uuid: str, migration: dict[str, Any],
                                reason: str, host: str, event_start: str) -> None:
        await self.client.call(ctx, "evacuation_failed", instance_uuid=instance_uuid, migration=migration,
                               reason=reason, host=host, event_start=event_start)

    async def evacuations_from_host(self, ctx: RequestContext, host: str) -> list[dict[str, Any]]:
        """The evacuations away from ``host`` whose leftovers are still there."""
        return list(await self.client.call(ctx, "evacuations_from_host", host=host))

    async def evacuation_cleaned(self, ctx: RequestContext, migration_id: int) -> None:
        await self.client.call(ctx, "evacuation_cleaned", migration_id=migration_id)
