"""The compute service's RPC methods for cold migrations and resizes (a
part of ``ComputeAPI``): each goes to the one host that does the step."""

from __future__ import annotations

from typing import Any

from loom.context import RequestContext


class MoveCasts:
    client: Any

    async def prep_resize(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                          migration: dict[str, Any], flavor: dict[str, Any]) -> None:
        """To the destination: check the instance fits with ``flavor``."""
        await self.client.prepare(server=host).cast(ctx, "prep_resize", instance=instance, migration=migration,
                                                    flavor=flavor)

    async def resize_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                              migration: dict[str, Any], flavor: dict[str, Any]) -> None:
        """To the source: stop the guest and hand its disk over."""
        await self.client.prepare(server=host).cast(ctx, "resize_instance", instance=instance,
                                                    migration=migration, flavor=flavor)

    async def finish_resize(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                            migration: dict[str, Any], flavor: dict[str, Any], disk_info: dict[str, Any]) -> None:
        """To the destination: make the guest from the handed-over disk."""
        await self.client.prepare(server=host).cast(ctx, "finish_resize", instance=instance, migration=migration,
                                                    flavor=flavor, disk_info=disk_info)

    async def confirm_resize(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                             migration: dict[str, Any]) -> None:
        """To the source: delete the kept copy."""
        await self.client.prepare(server=host).cast(ctx, "confirm_resize", instance=instance, migration=migration)

    async def revert_resize(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                            migration: dict[str, Any]) -> None:
        """To the destination: destroy its copy, then have the source take over again."""
        await self.client.prepare(server=host).cast(ctx, "revert_resize", instance=instance, migration=migration)

    async def finish_revert_resize(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                                   migration: dict[str, Any], final_status: str = "reverted") -> None:
        """To the source: bring the kept copy back; the migration ends ``final_status``."""
        await self.client.prepare(server=host).cast(ctx, "finish_revert_resize", instance=instance,
                                                    migration=migration, final_status=final_status)

    async def drop_migration_source(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        """To the source: delete the kept copy of a move that ended otherwise."""
        await self.client.prepare(server=host).cast(ctx, "drop_migration_source", instance_uuid=instance_uuid)
