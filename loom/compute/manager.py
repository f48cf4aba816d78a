"""The compute service: one per hypervisor host. It owns the instances on
its host, drives the virt driver and reports the host's inventory; it
never opens the database (the conductor does that for it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from loom.bus.rpc import Bus, expose
from loom.compute import (
    build,
    console,
    evacuate,
    external_events,
    guest,
    live_migrate,
    pause,
    power,
    power_sync,
    rebuild,
    recover,
    rescue,
    shelve,
    snapshot,
    soft_delete,
)
from loom.compute.resize import confirm as resize_confirm
from loom.compute.resize import finish as resize_finish
from loom.compute.resize import prep as resize_prep
from loom.compute.resize import revert as resize_revert
from loom.compute.resize import source as resize_source
from loom.compute.rpcapi import TOPIC, ComputeAPI
from loom.conductor.rpcapi import ConductorAPI
from loom.config import ComputeSettings
from loom.context import RequestContext
from loom.manager import Manager, periodic
from loom.virt.driver import VirtDriver

if TYPE_CHECKING:  # the clients' module holds the in-process one, which needs the database
    from loom.image.client import ImageClient

LOG = logging.getLogger(__name__)
RESOURCE_INTERVAL = 60.0
# Allocation ratios of what this host offers to placement. vCPUs are shared
# (Nova's default 16); memory and disk are promised only as far as the
# hypervisor can really give them, or builds would fail after the claim.
CPU_RATIO, RAM_RATIO, DISK_RATIO = 16.0, 1.0, 1.0
# Nova's default periodic spacing: the audit itself runs once per hour and host.
USAGE_AUDIT_SPACING = 60.0


class ComputeManager(Manager):
    binary = "loom-compute"
    topic = TOPIC

    def __init__(self, host: str, driver: VirtDriver, bus: Bus, settings: ComputeSettings | None = None,
                 images: ImageClient | None = None) -> None:
        super().__init__(host)
        self.driver = driver
        self.conductor = ConductorAPI(bus)
        self.compute_rpc = ComputeAPI(bus)  # the steps of a move go on on another host
        self.settings = settings or ComputeSettings()
        # How this host reaches the image service (snapshots, shelving); None
        # where it has none, and those operations then fail with a clear error.
        self.images = images
        self.sync_power_state_interval = self.settings.sync_power_state_interval
        # Builds that failed here since the last success; the scheduler
        # weighs this host down by it.
        self.failed_builds = 0
        # Instances whose build runs here now, and builds found interrupted
        # at start that a redelivered message may still take up (recover.py).
        self.building: set[str] = set()
        self.interrupted_builds: list[dict[str, Any]] = []
        self._settling: asyncio.Task[None] | None = None
        # Live migrations from this host, by migration id (abort and force_complete reach them here).
        self.live_migrations: dict[int, live_migrate.Job] = {}

    async def start(self) -> None:
        await self.driver.init_host(self.host)
        await recover.recover_host(self)
        await self.update_available_resource()

    async def started(self, drained: Callable[[], Awaitable[bool]]) -> None:
        if self.interrupted_builds:
            self._settling = asyncio.create_task(recover.settle_interrupted_builds(self, drained),
                                                 name=f"settle-builds-{self.host}")

    async def stop(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._settling
        await self.driver.cleanup()

    @periodic(RESOURCE_INTERVAL)
    async def update_available_resource(self) -> None:
        """Report the host's inventory to placement (through the conductor)."""
        res = await self.driver.host_resources()
        inventories = {
            "VCPU": {"total": res.vcpus, "allocation_ratio": CPU_RATIO, "reserved": 0},
            "MEMORY_MB": {"total": res.memory_mb, "allocation_ratio": RAM_RATIO, "reserved": 0},
            "DISK_GB": {"total": res.local_gb, "allocation_ratio": DISK_RATIO, "reserved": 0},
        }
        node = {**asdict(res), "running_vms": len(await self.driver.list_instances()),
                "failed_builds": self.failed_builds}
        node.pop("hostname", None)
        await self.conductor.update_available_resource(RequestContext.for_service(self.binary), self.host,
                                                       {"inventories": inventories, "node": node})

    @periodic(lambda self: self.sync_power_state_interval)
    async def sync_power_states(self) -> None:
        await power_sync.sync_power_states(self)

    @periodic(lambda self: soft_delete.reclaim_spacing(self.settings.reclaim_instance_interval))
    async def reclaim_queued_deletes(self) -> None:
        await soft_delete.reclaim_queued_deletes(self)

    @periodic(lambda self: USAGE_AUDIT_SPACING if self.settings.instance_usage_audit else 0)
    async def instance_usage_audit(self) -> None:
        """Record the last completed hour's usage audit of this host (once)."""
        await self.conductor.instance_usage_audit(RequestContext.for_service(self.binary), self.host)

    @periodic(lambda self: self.settings.heal_allocations_interval)
    async def heal_allocations(self) -> None:
        """Give instances here that lost their placement allocation one again."""
        await self.conductor.heal_allocations(RequestContext.for_service(self.binary), self.host)

    async def build_finished(self, ok: bool) -> None:
        """Count a failed build, or reset the count on a success; report a
        change at once so the scheduler stops favouring a failing host."""
        before = self.failed_builds
        self.failed_builds = 0 if ok else self.failed_builds + 1
        if self.failed_builds != before:
            await self.update_available_resource()

    @expose
    async def build_and_run_instance(self, ctx: RequestContext, instance: dict, spec: dict,
                                     alternates: list) -> None:
        await build.build_and_run(self, ctx, instance, spec, alternates)

    @expose
    async def stop_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await power.stop(self, ctx, instance_uuid)

    @expose
    async def start_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await power.start(self, ctx, instance_uuid)

    @expose
    async def reboot_instance(self, ctx: RequestContext, instance_uuid: str, reboot_type: str) -> None:
        await power.reboot(self, ctx, instance_uuid, reboot_type)

    @expose
    async def pause_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await pause.pause(self, ctx, instance_uuid)

    @expose
    async def unpause_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await pause.unpause(self, ctx, instance_uuid)

    @expose
    async def suspend_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await pause.suspend(self, ctx, instance_uuid)

    @expose
    async def resume_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await pause.resume(self, ctx, instance_uuid)

    @expose
    async def rebuild_instance(self, ctx: RequestContext, instance: dict, orig_vm_state: str,
                               preserve_ephemeral: bool = False) -> None:
        await rebuild.rebuild(self, ctx, instance, orig_vm_state, preserve_ephemeral)

    @expose
    async def rescue_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await rescue.rescue(self, ctx, instance_uuid)

    @expose
    async def unrescue_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await rescue.unrescue(self, ctx, instance_uuid)

    @expose
    async def get_console_output(self, ctx: RequestContext, instance_uuid: str, length: int | None = None) -> str:
        return await guest.console_output(self, instance_uuid, length)

    @expose
    async def get_console_endpoint(self, ctx: RequestContext, instance_uuid: str, protocol: str) -> dict:
        return await console.endpoint(self, instance_uuid, protocol)

    @expose
    async def set_admin_password(self, ctx: RequestContext, instance_uuid: str, password: str) -> None:
        await guest.set_admin_password(self, ctx, instance_uuid, password)

    @expose
    async def trigger_crash_dump(self, ctx: RequestContext, instance_uuid: str) -> None:
        await guest.trigger_crash_dump(self, ctx, instance_uuid)

    @expose
    async def soft_delete_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await soft_delete.soft_delete(self, ctx, instance_uuid)

    @expose
    async def restore_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await soft_delete.restore(self, ctx, instance_uuid)

    @expose
    async def external_instance_event(self, ctx: RequestContext, events: list) -> None:
        await external_events.handle(self, ctx, events)

    @periodic(lambda self: shelve.offload_interval(self))
    async def offload_shelved_instances(self) -> None:
        await shelve.offload_expired(self)

    @expose
    async def snapshot_instance(self, ctx: RequestContext, instance_uuid: str, image_id: str) -> None:
        await snapshot.snapshot_instance(self, ctx, instance_uuid, image_id)

    @expose
    async def backup_instance(self, ctx: RequestContext, instance_uuid: str, image_id: str, backup_type: str,
                              rotation: int) -> None:
        await snapshot.backup_instance(self, ctx, instance_uuid, image_id, backup_type, rotation)

    @expose
    async def shelve_instance(self, ctx: RequestContext, instance_uuid: str, image_id: str) -> None:
        await shelve.shelve_instance(self, ctx, instance_uuid, image_id)

    @expose
    async def shelve_offload_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await shelve.shelve_offload_instance(self, ctx, instance_uuid)

    @expose
    async def unshelve_instance(self, ctx: RequestContext, instance: dict, image_id: str | None) -> None:
        await shelve.unshelve_instance(self, ctx, instance, image_id)

    @periodic(lambda self: resize_confirm.SPACING if self.settings.resize_confirm_window > 0 else 0)
    async def confirm_resizes(self) -> None:
        """Confirm the moves to this host left in VERIFY_RESIZE too long."""
        await resize_confirm.confirm_due(self)

    @expose
    async def prep_resize(self, ctx: RequestContext, instance: dict, migration: dict, flavor: dict) -> None:
        await resize_prep.prep_resize(self, ctx, instance, migration, flavor)

    @expose
    async def resize_instance(self, ctx: RequestContext, instance: dict, migration: dict, flavor: dict) -> None:
        await resize_source.resize_instance(self, ctx, instance, migration, flavor)

    @expose
    async def finish_resize(self, ctx: RequestContext, instance: dict, migration: dict, flavor: dict,
                            disk_info: dict) -> None:
        await resize_finish.finish_resize(self, ctx, instance, migration, flavor, disk_info)

    @expose
    async def confirm_resize(self, ctx: RequestContext, instance: dict, migration: dict) -> None:
        await resize_confirm.confirm_resize(self, ctx, instance, migration)

    @expose
    async def revert_resize(self, ctx: RequestContext, instance: dict, migration: dict) -> None:
        await resize_revert.revert_resize(self, ctx, instance, migration)

    @expose
    async def finish_revert_resize(self, ctx: RequestContext, instance: dict, migration: dict,
                                   final_status: str = "reverted") -> None:
        await resize_revert.finish_revert_resize(self, ctx, instance, migration, final_status)

    @expose
    async def drop_migration_source(self, ctx: RequestContext, instance_uuid: str) -> None:
        await resize_confirm.drop_source(self, instance_uuid)

    @expose
    async def pre_live_migration(self, ctx: RequestContext, instance: dict, block_migration: bool | None) -> dict:
        return await live_migrate.pre_live_migration(self, ctx, instance, block_migration)

    @expose
    async def live_migration(self, ctx: RequestContext, instance: dict, migration: dict, migrate_data: dict) -> None:
        await live_migrate.live_migration(self, ctx, instance, migration, migrate_data)

    @expose
    async def rollback_live_migration_at_destination(self, ctx: RequestContext, instance_uuid: str) -> None:
        await live_migrate.rollback_at_destination(self, ctx, instance_uuid)

    @expose
    async def live_migration_abort(self, ctx: RequestContext, instance_uuid: str, migration_id: int) -> None:
        await live_migrate.abort(self, ctx, instance_uuid, migration_id)

    @expose
    async def live_migration_force_complete(self, ctx: RequestContext, instance_uuid: str,
                                            migration_id: int) -> None:
        await live_migrate.force_complete(self, ctx, instance_uuid, migration_id)

    @expose
    async def evacuate_instance(self, ctx: RequestContext, instance: dict, migration: dict,
                                orig_vm_state: str) -> None:
        await evacuate.evacuate_instance(self, ctx, instance, migration, orig_vm_state)

    @expose
    async def get_host_uptime(self, ctx: RequestContext) -> str:
        return await self.driver.host_uptime()

    @expose
    async def terminate_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await self.driver.destroy(instance_uuid)
        await self.conductor.instance_deleted(ctx, instance_uuid, self.host)
