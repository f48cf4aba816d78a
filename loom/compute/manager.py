"""The compute service: one per hypervisor host. It owns the instances on
its host, drives the virt driver and reports the host's inventory; it
never opens the database (the conductor does that for it)."""

from __future__ import annotations

import logging
from dataclasses import asdict

from loom.bus.rpc import Bus, expose
from loom.compute import build, pause, power, power_sync, recover
from loom.compute.rpcapi import TOPIC
from loom.conductor.rpcapi import ConductorAPI
from loom.config import ComputeSettings
from loom.context import RequestContext
from loom.manager import Manager, periodic
from loom.virt.driver import VirtDriver

LOG = logging.getLogger(__name__)
RESOURCE_INTERVAL = 60.0
# Allocation ratios of what this host offers to placement. vCPUs are shared
# (Nova's default 16); memory and disk are promised only as far as the
# hypervisor can really give them, or builds would fail after the claim.
CPU_RATIO, RAM_RATIO, DISK_RATIO = 16.0, 1.0, 1.0


class ComputeManager(Manager):
    binary = "loom-compute"
    topic = TOPIC

    def __init__(self, host: str, driver: VirtDriver, bus: Bus, settings: ComputeSettings | None = None) -> None:
        super().__init__(host)
        self.driver = driver
        self.conductor = ConductorAPI(bus)
        self.settings = settings or ComputeSettings()
        self.sync_power_state_interval = self.settings.sync_power_state_interval
        # Builds that failed here since the last success; the scheduler
        # weighs this host down by it.
        self.failed_builds = 0

    async def start(self) -> None:
        await self.driver.init_host(self.host)
        await recover.recover_host(self)
        await self.update_available_resource()

    async def stop(self) -> None:
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
    async def get_host_uptime(self, ctx: RequestContext) -> str:
        return await self.driver.host_uptime()

    @expose
    async def terminate_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        await self.driver.destroy(instance_uuid)
        await self.conductor.instance_deleted(ctx, instance_uuid, self.host)
