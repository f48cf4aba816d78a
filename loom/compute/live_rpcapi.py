"""The compute service's RPC methods for live migrations and evacuations
(a part of ``ComputeAPI``): each goes to the one host that does the step."""

from __future__ import annotations

from typing import Any

from loom.context import RequestContext


class LiveMoveCalls:
    client: Any

    async def pre_live_migration(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                                 block_migration: bool | None) -> dict[str, Any]:
        """To the destination: make room for the guest; the migrate data the
        source needs (a call: the source must not start without it)."""
        return dict(await self.client.prepare(server=host).call(ctx, "pre_live_migration", instance=instance,
                                                                block_migration=block_migration))

    async def live_migration(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                             migration: dict[str, Any], migrate_data: dict[str, Any]) -> None:
        """To the source: copy the running guest to the prepared destination."""
        await self.client.prepare(server=host).cast(ctx, "live_migration", instance=instance, migration=migration,
                                                    migrate_data=migrate_data)

    async def rollback_live_migration_at_destination(self, ctx: RequestContext, host: str,
                                                     instance_uuid: str) -> None:
        """To the destination: give up the room made for a guest that is not coming."""
        await self.client.prepare(server=host).cast(ctx, "rollback_live_migration_at_destination",
                                                    instance_uuid=instance_uuid)

    async def live_migration_abort(self, ctx: RequestContext, host: str, instance_uuid: str,
                                   migration_id: int) -> None:
        """To the source: stop the live migration (before or during the copy)."""
        await self.client.prepare(server=host).cast(ctx, "live_migration_abort", instance_uuid=instance_uuid,
                                                    migration_id=migration_id)

    async def live_migration_force_complete(self, ctx: RequestContext, host: str, instance_uuid: str,
                                            migration_id: int) -> None:
        """To the source: finish the copy now."""
        await self.client.prepare(server=host).cast(ctx, "live_migration_force_complete",
                                                    instance_uuid=instance_uuid, migration_id=migration_id)

    async def evacuate_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                                migration: dict[str, Any], orig_vm_state: str) -> None:
        """To the destination of an evacuation: spawn the server from its image."""
        await self.client.prepare(server=host).cast(ctx, "evacuate_instance", instance=instance,
                                                    migration=migration, orig_vm_state=orig_vm_state)
