"""Client side of the compute service's RPC interface: every message goes to
the one host that owns the instance (``compute.<host>``)."""

from __future__ import annotations

from typing import Any

from loom.bus.rpc import Bus
from loom.compute.live_rpcapi import LiveMoveCalls
from loom.compute.move_rpcapi import MoveCasts
from loom.context import RequestContext

TOPIC = "compute"


class ComputeAPI(MoveCasts, LiveMoveCalls):
    def __init__(self, bus: Bus) -> None:
        self.client = bus.client(TOPIC)

    async def build_and_run_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                                     spec: dict[str, Any], alternates: list[dict[str, Any]]) -> None:
        await self.client.prepare(server=host).cast(ctx, "build_and_run_instance", instance=instance, spec=spec,
                                                    alternates=alternates)

    async def terminate_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "terminate_instance", instance_uuid=instance_uuid)

    async def stop_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "stop_instance", instance_uuid=instance_uuid)

    async def start_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "start_instance", instance_uuid=instance_uuid)

    async def reboot_instance(self, ctx: RequestContext, host: str, instance_uuid: str, reboot_type: str) -> None:
        """``reboot_type``: "SOFT" or "HARD"."""
        await self.client.prepare(server=host).cast(ctx, "reboot_instance", instance_uuid=instance_uuid,
                                                    reboot_type=reboot_type)

    async def pause_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "pause_instance", instance_uuid=instance_uuid)

    async def unpause_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "unpause_instance", instance_uuid=instance_uuid)

    async def suspend_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "suspend_instance", instance_uuid=instance_uuid)

    async def resume_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "resume_instance", instance_uuid=instance_uuid)

    async def rebuild_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any], orig_vm_state: str,
                               preserve_ephemeral: bool = False) -> None:
        await self.client.prepare(server=host).cast(ctx, "rebuild_instance", instance=instance,
                                                    orig_vm_state=orig_vm_state,
                                                    preserve_ephemeral=preserve_ephemeral)

    async def rescue_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "rescue_instance", instance_uuid=instance_uuid)

    async def unrescue_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "unrescue_instance", instance_uuid=instance_uuid)

    async def get_console_output(self, ctx: RequestContext, host: str, instance_uuid: str,
                                 length: int | None = None) -> str:
        """The guest's console log, its last ``length`` lines if given."""
        return str(await self.client.prepare(server=host).call(ctx, "get_console_output",
                                                               instance_uuid=instance_uuid, length=length))

    async def get_console_endpoint(self, ctx: RequestContext, host: str, instance_uuid: str,
                                   protocol: str) -> dict[str, Any]:
        """Where the guest's "vnc" or "serial" console listens (ConsoleEndpoint's fields)."""
        return dict(await self.client.prepare(server=host).call(ctx, "get_console_endpoint",
                                                                instance_uuid=instance_uuid, protocol=protocol))

    async def set_admin_password(self, ctx: RequestContext, host: str, instance_uuid: str, password: str) -> None:
        """A call, as in Nova: the guest agent's refusal reaches the caller."""
        await self.client.prepare(server=host).call(ctx, "set_admin_password", instance_uuid=instance_uuid,
                                                    password=password)

    async def trigger_crash_dump(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "trigger_crash_dump", instance_uuid=instance_uuid)

    async def soft_delete_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "soft_delete_instance", instance_uuid=instance_uuid)

    async def restore_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "restore_instance", instance_uuid=instance_uuid)

    async def external_instance_event(self, ctx: RequestContext, host: str, events: list[dict[str, Any]]) -> None:
        """Events other services report about instances on ``host`` (see
        loom/compute/external_events.py for their form)."""
        await self.client.prepare(server=host).cast(ctx, "external_instance_event", events=events)

    async def snapshot_instance(self, ctx: RequestContext, host: str, instance_uuid: str, image_id: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "snapshot_instance", instance_uuid=instance_uuid,
                                                    image_id=image_id)

    async def backup_instance(self, ctx: RequestContext, host: str, instance_uuid: str, image_id: str,
                              backup_type: str, rotation: int) -> None:
        await self.client.prepare(server=host).cast(ctx, "backup_instance", instance_uuid=instance_uuid,
                                                    image_id=image_id, backup_type=backup_type, rotation=rotation)

    async def shelve_instance(self, ctx: RequestContext, host: str, instance_uuid: str, image_id: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "shelve_instance", instance_uuid=instance_uuid,
                                                    image_id=image_id)

    async def shelve_offload_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self.client.prepare(server=host).cast(ctx, "shelve_offload_instance", instance_uuid=instance_uuid)

    async def unshelve_instance(self, ctx: RequestContext, host: str, instance: dict[str, Any],
                                image_id: str | None) -> None:
        """Power a shelved server on (``image_id`` None) or spawn an
        offloaded one from its shelve image ``image_id``."""
        await self.client.prepare(server=host).cast(ctx, "unshelve_instance", instance=instance, image_id=image_id)

    async def get_host_uptime(self, ctx: RequestContext, host: str) -> str:
        return str(await self.client.prepare(server=host).call(ctx, "get_host_uptime"))
