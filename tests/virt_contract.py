"""The virt driver contract suite. Every driver runs all of it: the fake in
the unit tier, QEMU in the integration tier.

A subclass provides a ``driver`` fixture: an initialised driver (init_host
done), cleaned up afterwards. It may override ``make_spec`` (sizes, image),
``open_image`` (a bootable image for a real hypervisor), ``volume_connection``,
``vif`` and ``peer_driver`` (a second host, for live migration; without it
that part is skipped). Nothing here assumes a fake: waits are generous and
poll, and guest-dependent effects (what an NMI does) are not asserted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from loom import errors
from loom.image.inspector import StreamInspector
from loom.virt.driver import (
    CAPABILITY_METHODS,
    Capabilities,
    ImageSource,
    InstanceExists,
    InstanceInvalidState,
    InstanceNotFound,
    InstanceSpec,
    InsufficientResources,
    NotSupported,
    PowerState,
    VirtDriver,
)

SpecFactory = Callable[..., InstanceSpec]
Spawner = Callable[..., Awaitable[InstanceSpec]]

RUNNING, PAUSED, SHUTDOWN, SUSPENDED = PowerState.RUNNING, PowerState.PAUSED, PowerState.SHUTDOWN, PowerState.SUSPENDED


async def tiny_image() -> AsyncIterator[bytes]:
    """A 256 KiB raw image, in four chunks."""
    for index in range(4):
        yield bytes([index]) * (64 << 10)


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        await asyncio.sleep(0.05)


async def power_state(driver: VirtDriver, instance: str) -> PowerState:
    return (await driver.get_info(instance)).power_state


def calls_of_optional_methods(driver: VirtDriver, spec: InstanceSpec) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One plausible call of every optional method, on instance ``spec``."""
    u = spec.uuid
    vif_id = str(uuid.uuid4())
    vif: dict[str, Any] = {"id": vif_id, "mac": "fa:16:3e:00:00:01", "ips": []}
    return {
        "pause": lambda: driver.pause(u),
        "unpause": lambda: driver.unpause(u),
        "suspend": lambda: driver.suspend(u),
        "resume": lambda: driver.resume(u),
        "snapshot": lambda: driver.snapshot(u),
        "resize": lambda: driver.resize(u, dataclasses.replace(spec, memory_mb=spec.memory_mb * 2)),
        "prepare_migration": lambda: driver.prepare_migration(spec),
        "migrate_disk_and_power_off": lambda: driver.migrate_disk_and_power_off(u, "elsewhere", spec),
        "finish_migration": lambda: driver.finish_migration(spec, {}, True),
        "confirm_migration": lambda: driver.confirm_migration(u),
        "finish_revert_migration": lambda: driver.finish_revert_migration(spec, True),
        "rescue": lambda: driver.rescue(u),
        "unrescue": lambda: driver.unrescue(u),
        "pre_live_migration": lambda: driver.pre_live_migration(dataclasses.replace(spec, uuid=str(uuid.uuid4()))),
        "live_migration": lambda: driver.live_migration(u, "elsewhere", {}),
        "rollback_live_migration_at_destination": lambda: driver.rollback_live_migration_at_destination(u),
        "live_migration_abort": lambda: driver.live_migration_abort(u),
        "live_migration_force_complete": lambda: driver.live_migration_force_complete(u),
        "console_output": lambda: driver.console_output(u),
        "change_password": lambda: driver.change_password(u, "Contract-pa55word"),
        "trigger_crash_dump": lambda: driver.trigger_crash_dump(u),
        "attach_volume": lambda: driver.attach_volume(u, {"driver_volume_type": "file", "data": {}}, "/dev/vdb"),
        "detach_volume": lambda: driver.detach_volume(u, "/dev/vdb"),
        "attach_interface": lambda: driver.attach_interface(u, vif),
        "detach_interface": lambda: driver.detach_interface(u, vif_id),
        "get_vnc_console": lambda: driver.get_vnc_console(u),
        "get_serial_console": lambda: driver.get_serial_console(u),
    }


@dataclasses.dataclass
class Extras:
    """The fixtures an optional operation may need beyond the instance."""

    open_image: ImageSource | None
    volume_connection: dict[str, Any]
    vif: dict[str, Any]
    peer_driver: VirtDriver | None


class DriverContract:
    """Subclasses provide a ``driver`` fixture for their hypervisor."""

    # Seconds a guest may take to print to its console: a real one boots first.
    boot_timeout: float = 300.0

    @pytest.fixture
    def make_spec(self) -> SpecFactory:
        def make(**overrides: Any) -> InstanceSpec:
            instance = str(uuid.uuid4())
            fields: dict[str, Any] = {
                "uuid": instance, "name": f"contract-{instance[:8]}", "hostname": f"contract-{instance[:8]}",
                "vcpus": 1, "memory_mb": 64, "root_gb": 1, "metadata": {"purpose": "contract"}}
            return InstanceSpec(**{**fields, **overrides})

        return make

    @pytest.fixture
    def open_image(self) -> ImageSource | None:
        return tiny_image

    @pytest.fixture
    def volume_connection(self, tmp_path: Path) -> dict[str, Any]:
        path = tmp_path / "volume.raw"
        path.write_bytes(bytes(1 << 20))
        return {"driver_volume_type": "file", "data": {"device_path": str(path)}}

    @pytest.fixture
    def vif(self) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "mac": "fa:16:3e:12:34:56", "ips": ["10.0.0.5"], "bridge": "br100"}

    @pytest.fixture
    def peer_driver(self) -> VirtDriver | None:
        """A second host, initialised; None skips live migration."""
        return None

    @pytest.fixture
    async def new_instance(
        self, driver: VirtDriver, make_spec: SpecFactory, open_image: ImageSource | None
    ) -> AsyncIterator[Spawner]:
        """Spawns an instance (``make_spec`` overrides as arguments); every
        one is destroyed afterwards."""
        spawned: list[str] = []

        async def spawn(**overrides: Any) -> InstanceSpec:
            spec = make_spec(**overrides)
            spawned.append(spec.uuid)
            await driver.spawn(spec, open_image)
            return spec

        yield spawn
        for instance in spawned:
            await driver.destroy(instance)

    # The host.

    async def test_declared_capabilities_are_implemented(self, driver: VirtDriver) -> None:
        assert set(CAPABILITY_METHODS) == set(Capabilities.names())
        for name in driver.capabilities.declared():
            for method in CAPABILITY_METHODS[name]:
                assert getattr(type(driver), method) is not getattr(VirtDriver, method), method

    async def test_host_resources_are_sane(self, driver: VirtDriver) -> None:
        r = await driver.host_resources()
        assert r.hostname and r.hypervisor_hostname and r.hypervisor_type
        assert isinstance(r.hypervisor_version, int) and isinstance(r.cpu_info, dict)
        assert r.vcpus > 0 and r.memory_mb > 0 and r.local_gb > 0
        assert 0 <= r.memory_mb_used <= r.memory_mb
        assert 0 <= r.local_gb_used <= r.local_gb
        assert r.vcpus_used >= 0

    async def test_usage_follows_spawn_and_destroy(self, driver: VirtDriver, new_instance: Spawner) -> None:
        before = await driver.host_resources()
        spec = await new_instance(vcpus=2, memory_mb=128, root_gb=1, ephemeral_gb=1, swap_mb=512)
        during = await driver.host_resources()
        assert during.vcpus_used - before.vcpus_used == 2
        assert during.memory_mb_used - before.memory_mb_used == 128
        assert during.local_gb_used - before.local_gb_used == spec.disk_gb == 3
        await driver.destroy(spec.uuid)
        after = await driver.host_resources()
        assert (after.vcpus_used, after.memory_mb_used, after.local_gb_used) == (
            before.vcpus_used, before.memory_mb_used, before.local_gb_used)

    @pytest.mark.parametrize("resource", ["memory", "disk"])
    async def test_spawn_beyond_capacity_leaves_nothing_behind(
        self, driver: VirtDriver, make_spec: SpecFactory, open_image: ImageSource | None, resource: str
    ) -> None:
        before = await driver.host_resources()
        too_big = {"memory_mb": before.memory_mb + 1} if resource == "memory" else {"root_gb": before.local_gb + 1}
        spec = make_spec(**too_big)
        with pytest.raises(InsufficientResources):
            await driver.spawn(spec, open_image)
        assert spec.uuid not in await driver.list_instances()
        with pytest.raises(InstanceNotFound):
            await driver.get_info(spec.uuid)
        after = await driver.host_resources()
        assert (after.vcpus_used, after.memory_mb_used, after.local_gb_used) == (
            before.vcpus_used, before.memory_mb_used, before.local_gb_used)
        await driver.destroy(spec.uuid)

    # The lifecycle.

    async def test_spawn_runs_and_is_listed(self, driver: VirtDriver, new_instance: Spawner) -> None:
        spec = await new_instance()
        assert spec.uuid in await driver.list_instances()
        info = await driver.get_info(spec.uuid)
        assert info.power_state == RUNNING
        assert (info.vcpus, info.memory_mb) == (spec.vcpus, spec.memory_mb)
        assert info.cpu_time_ns >= 0 and info.uptime_s >= 0

    async def test_spawn_of_a_present_uuid_conflicts(
        self, driver: VirtDriver, new_instance: Spawner, open_image: ImageSource | None
    ) -> None:
        spec = await new_instance()
        with pytest.raises(InstanceExists):
            await driver.spawn(spec, open_image)
        assert (await driver.list_instances()).count(spec.uuid) == 1
        assert await power_state(driver, spec.uuid) == RUNNING

    async def test_concurrent_spawns(self, driver: VirtDriver, new_instance: Spawner) -> None:
        specs = await asyncio.gather(*(new_instance() for _ in range(3)))
        listed = await driver.list_instances()
        for spec in specs:
            assert spec.uuid in listed
            assert await power_state(driver, spec.uuid) == RUNNING

    async def test_destroy_removes_and_may_be_repeated(self, driver: VirtDriver, new_instance: Spawner) -> None:
        spec = await new_instance()
        await driver.destroy(spec.uuid)
        assert spec.uuid not in await driver.list_instances()
        with pytest.raises(InstanceNotFound):
            await driver.get_info(spec.uuid)
        await driver.destroy(spec.uuid)
        await driver.destroy(str(uuid.uuid4()))

    @pytest.mark.parametrize("operation", ["get_info", "soft reboot", "hard reboot", "power_off", "power_on",
                                           "rebuild"])
    async def test_unknown_instance_is_not_found(
        self, driver: VirtDriver, make_spec: SpecFactory, open_image: ImageSource | None, operation: str
    ) -> None:
        spec = make_spec()
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "get_info": lambda: driver.get_info(spec.uuid),
            "soft reboot": lambda: driver.reboot(spec.uuid, hard=False),
            "hard reboot": lambda: driver.reboot(spec.uuid, hard=True),
            "power_off": lambda: driver.power_off(spec.uuid),
            "power_on": lambda: driver.power_on(spec.uuid),
            "rebuild": lambda: driver.rebuild(spec, open_image),
        }
        with pytest.raises(InstanceNotFound):
            await calls[operation]()

    @pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
    async def test_reboot_keeps_it_running(self, driver: VirtDriver, new_instance: Spawner, hard: bool) -> None:
        spec = await new_instance()
        await driver.reboot(spec.uuid, hard=hard)
        assert await power_state(driver, spec.uuid) == RUNNING

    async def test_power_off_and_on(self, driver: VirtDriver, new_instance: Spawner) -> None:
        spec = await new_instance()
        await driver.power_off(spec.uuid)
        assert await power_state(driver, spec.uuid) == SHUTDOWN
        await driver.power_off(spec.uuid)  # stopping a stopped guest: done already
        assert await power_state(driver, spec.uuid) == SHUTDOWN
        assert spec.uuid in await driver.list_instances()
        await driver.power_on(spec.uuid)
        assert await power_state(driver, spec.uuid) == RUNNING
        with pytest.raises(InstanceInvalidState):
            await driver.power_on(spec.uuid)
        await driver.power_off(spec.uuid, timeout=5)  # asks the guest first, then stops it
        assert await power_state(driver, spec.uuid) == SHUTDOWN

    async def test_reboot_of_a_stopped_instance(self, driver: VirtDriver, new_instance: Spawner) -> None:
        spec = await new_instance()
        await driver.power_off(spec.uuid)
        with pytest.raises(InstanceInvalidState):
            await driver.reboot(spec.uuid, hard=False)  # nothing runs to restart itself
        assert await power_state(driver, spec.uuid) == SHUTDOWN
        await driver.reboot(spec.uuid, hard=True)
        assert await power_state(driver, spec.uuid) == RUNNING

    async def test_instances_are_independent(self, driver: VirtDriver, new_instance: Spawner) -> None:
        first, second = await new_instance(), await new_instance()
        await driver.power_off(first.uuid)
        assert await power_state(driver, second.uuid) == RUNNING
        await driver.destroy(first.uuid)
        assert second.uuid in await driver.list_instances()
        assert await power_state(driver, second.uuid) == RUNNING

    async def test_rebuild_keeps_the_instance(
        self, driver: VirtDriver, new_instance: Spawner, open_image: ImageSource | None
    ) -> None:
        spec = await new_instance()
        renamed = dataclasses.replace(spec, name="rebuilt", hostname="rebuilt", metadata={"rebuilt": "yes"})
        await driver.rebuild(renamed, open_image)
        assert (await driver.list_instances()).count(spec.uuid) == 1
        assert await power_state(driver, spec.uuid) == RUNNING
        await driver.power_off(spec.uuid)
        await driver.rebuild(renamed, open_image)
        assert await power_state(driver, spec.uuid) == RUNNING
        with pytest.raises(errors.Invalid):
            await driver.rebuild(dataclasses.replace(spec, memory_mb=spec.memory_mb * 2), open_image)
        assert await power_state(driver, spec.uuid) == RUNNING

    # Optional operations: each works when declared and is refused when not.

    @pytest.mark.parametrize("capability", Capabilities.names())
    async def test_optional_operation(
        self, driver: VirtDriver, new_instance: Spawner, capability: str, open_image: ImageSource | None,
        volume_connection: dict[str, Any], vif: dict[str, Any], peer_driver: VirtDriver | None,
    ) -> None:
        spec = await new_instance()
        if not getattr(driver.capabilities, capability):
            calls = calls_of_optional_methods(driver, spec)
            assert set(calls) == {m for methods in CAPABILITY_METHODS.values() for m in methods}
            for method in CAPABILITY_METHODS[capability]:
                with pytest.raises(NotSupported, match=capability.replace("_", " ")):
                    await calls[method]()
            assert await power_state(driver, spec.uuid) == RUNNING
            return
        extras = Extras(open_image, volume_connection, vif, peer_driver)
        await getattr(self, f"exercise_{capability}")(driver, spec, extras)

    async def exercise_pause(self, driver: VirtDriver, spec: InstanceSpec, extras: Extras) -> None:
        await driver.pause(spec.uuid)
        assert await power_state(driver, spec.uuid) == PAUSED
        with pytest.raises(InstanceInvalidState):
            await driver.pause(spec.uuid)
        await driver.unpause(spec.uuid)
        assert await power_state(driver, spec.uuid) == RUNNING
        with pytest.raises(InstanceInvalidState):
            await driver.unpause(spec.uuid)
        await driver.pause(spec.uuid)
        await driver.power_off(spec.uuid)
        assert await power_state(driver, spec.uuid) == SHUTDOWN

    async def exercise_suspend(self, driver: VirtDriver, spec: InstanceSpec, extras: Extras) -> None:
        await driver.suspend(spec.uuid)
        assert await power_state(driver, spec.uuid) == SUSPENDED
        with pytest.raises(InstanceInvalidState):
            await driver.suspend(spec.uuid)
        await driver.resume(spec.uuid)
        assert await power_state(driver, spec.uuid) == RUNNING
        with pytest.raises(InstanceInvalidState):
            await driver.resume(spec.uuid)
        await driver.suspend(spec.uuid)
        await driver.power_off(spec.uuid)
        assert await power_state(driver, spec.uuid) == SHUTDOWN

    async def exercise_snapshot(self, driver: VirtDriver, spec: InstanceSpec, extras: Extras) -> None:
        for expected in (RUNNING, SHUTDOWN):
            if expected == SHUTDOWN:
                await driver.power_off(spec.uuid)
            inspector, size = StreamInspector(), 0
            async for chunk in await driver.snapshot(spec.uuid):
                inspector.feed(chunk)
                size += len(chunk)
            assert size > 0
            assert inspector.finish().format in {"raw", "qcow2"}
            assert await power_state(driver, spec.uuid) == expected
        with pytest.raises(InstanceNotFound):
            await driver.snapshot(str(uuid.uuid4()))

    async def exercise_resize(self, driver: VirtDriver, spec: InstanceSpec, extras: Extras) -> None:
        before = await driver.host_resources()
        bigger = dataclasses.replace(spec, vcpus=spec.vcpus + 1, memory_mb=spec.memory_mb * 2, root_gb=spec.root_gb + 1)
        await driver.resize(spec.uuid, bigger)
        info = await driver.get_info(spec.uuid)
        assert (info.power_state, info.vcpus, info.memory_mb) == (RUNNING, bigger.vcpus, bigger.memory_mb)
        after = await driver.host_resources()
        assert after.vcpus_used - before.vcpus_used == 1
        assert after.memory_mb_used - before.memory_mb_used == spec.memory_mb
        assert after.local_gb_used - before.local_gb_used == 1
        with pytest.raises(errors.Invalid):
            await driver.resize(spec.uuid, dataclasses.replace(bigger, root_gb=spec.root_gb))
        with pytest.raises(InsufficientResources):
            await driver.resize(spec.uuid, dataclasses.replace(bigger, memory_mb=after.memory_mb + 1))
        assert (await driver.get_info(spec.uuid)).memory_mb == bigger.memory_mb
        await driver.power_off(spec.uuid)
        await driver.resize(spec.uuid, dataclasses.replace(bigger, memory_mb=spec.memory_mb * 3))
        info = await driver.get_info(spec.uuid)
        assert (info.power_state, info.memory_mb) == (SHUTDOWN, spec.memory_mb * 3)
        await driver.power_on(spec.uuid)
        await self.exercise_cold_migration(driver, dataclasses.replace(bigger, memory_mb=spec.memory_mb * 3),
                                           extras)

    async def exercise_cold_migration(self, driver: VirtDriver, spec: InstanceSpec, extras: Extras) -> None:
        """A move to the peer host and back (reverted), then confirmed: the
        source keeps its stopped copy and its usage until then."""
        peer = extras.peer_driver
        if peer is None:
            return
        peer_host = (await peer.host_resources()).hostname
        idle, busy = await peer.host_resources(), await driver.host_resources()
        bigger = dataclasses.replace(spec, memory_mb=spec.memory_mb * 2)
        with pytest.raises(InsufficientResources):
            await peer.prepare_migration(dataclasses.replace(bigger, memory_mb=idle.memory_mb + 1))
        await peer.prepare_migration(bigger)
        with pytest.raises(errors.Invalid):
            await driver.migrate_disk_and_power_off(spec.uuid, peer_host, dataclasses.replace(spec, root_gb=0))
        disk_info = await driver.migrate_disk_and_power_off(spec.uuid, peer_host, bigger)
        assert spec.uuid not in await driver.list_instances()
        assert (await driver.host_resources()).memory_mb_used == busy.memory_mb_used
        await peer.finish_migration(bigger, disk_info, True)
        assert await power_state(peer, spec.uuid) == RUNNING
        assert (await peer.host_resources()).memory_mb_used - idle.memory_mb_used == bigger.memory_mb
        # Reverted: the destination's copy goes, the source's comes back.
        await peer.destroy(spec.uuid)
        await driver.finish_revert_migration(spec, False)
        await driver.finish_revert_migration(spec, False)  # repeated: no error
        info = await driver.get_info(spec.uuid)
        assert (info.power_state, info.memory_mb) == (SHUTDOWN, spec.memory_mb)
        # Again, confirmed this time: the source's copy and usage go.
        disk_info = await driver.migrate_disk_and_power_off(spec.uuid, peer_host, bigger)
        await peer.finish_migration(bigger, disk_info, False)
        assert await power_state(peer, spec.uuid) == SHUTDOWN
        await driver.confirm_migration(spec.uuid)
        await driver.confirm_migration(spec.uuid)  # repeated: no error
        assert (await driver.host_resources()).memory_mb_used == busy.memory_mb_used - spec.memory_mb
        with pytest.raises(InstanceNotFound):
            await driver.finish_revert_migration(spec, True)
        await peer.destroy(spec.uuid)

    async def exercise_rescue(self, driver: VirtDriver, spec: InstanceSpec, extras: Extras) -> None:
        await driver.rescue(spec.uuid, extras.open_image)
        assert await power_state(driver, spec.uuid) == RUNNING
        with pytest.raises(InstanceInvalidState):
            await driver.rescue(spec.uuid, extras.open_image)
        await driver.unrescue(spec.uuid)
        assert await power_state(driver, spec.uuid) == RUNNING
        with pytest.raises(InstanceInvalidState):
            await driver.unrescue(spec.uuid)

    async def exercise_live_migration(
        self, driver: VirtDriver, spec: InstanceSpec, extras: Extras
    ) -> None:
        peer = extras.peer_driver
        if peer is None:
            pytest.skip("this driver's tests provide no second host")
        peer_host = (await peer.host_resources()).hostname
        idle = await peer.host_resources()
        other = dataclasses.replace(spec, uuid=str(uuid.uuid4()))
        await peer.pre_live_migration(other)
        assert (await peer.host_resources()).memory_mb_used - idle.memory_mb_used == spec.memory_mb
        await peer.rollback_live_migration_at_destination(other.uuid)
        assert (await peer.host_resources()).memory_mb_used == idle.memory_mb_used

        migrate_data = await peer.pre_live_migration(spec)
        assert isinstance(migrate_data, dict)
        try:
            await driver.live_migration(spec.uuid, peer_host, migrate_data)
            assert spec.uuid not in await driver.list_instances()
            assert spec.uuid in await peer.list_instances()
            assert await power_state(peer, spec.uuid) == RUNNING
        finally:
            await peer.destroy(spec.uuid)
            await peer.rollback_live_migration_at_destination(spec.uuid)

    async def exercise_console_output(
        self, driver: VirtDriver, spec: InstanceSpec, extras: Extras
    ) -> None:
        async def printed() -> bool:
            return bool((await driver.console_output(spec.uuid)).strip())

        await wait_for(printed, self.boot_timeout)
        assert len((await driver.console_output(spec.uuid, length=1)).splitlines()) <= 1
        await driver.power_off(spec.uuid)
        assert (await driver.console_output(spec.uuid)).strip()  # the log outlives the guest's run
        with pytest.raises(InstanceNotFound):
            await driver.console_output(str(uuid.uuid4()))

    async def exercise_change_password(
        self, driver: VirtDriver, spec: InstanceSpec, extras: Extras
    ) -> None:
        await driver.change_password(spec.uuid, "Contract-pa55word")
        await driver.power_off(spec.uuid)
        with pytest.raises(InstanceInvalidState):
            await driver.change_password(spec.uuid, "Contract-pa55word")

    async def exercise_trigger_crash_dump(
        self, driver: VirtDriver, spec: InstanceSpec, extras: Extras
    ) -> None:
        await driver.power_off(spec.uuid)
        with pytest.raises(InstanceInvalidState):
            await driver.trigger_crash_dump(spec.uuid)
        await driver.power_on(spec.uuid)
        await driver.trigger_crash_dump(spec.uuid)  # what the guest does next is its own business
        assert spec.uuid in await driver.list_instances()

    async def exercise_attach_volume(
        self, driver: VirtDriver, spec: InstanceSpec, extras: Extras
    ) -> None:
        connection = extras.volume_connection
        await driver.attach_volume(spec.uuid, connection, "/dev/vdb")
        with pytest.raises(errors.Conflict):
            await driver.attach_volume(spec.uuid, connection, "/dev/vdb")
        await driver.detach_volume(spec.uuid, "/dev/vdb")
        with pytest.raises(errors.NotFound):
            await driver.detach_volume(spec.uuid, "/dev/vdb")
        assert await power_state(driver, spec.uuid) == RUNNING

    async def exercise_attach_interface(
        self, driver: VirtDriver, spec: InstanceSpec, extras: Extras
    ) -> None:
        vif = extras.vif
        await driver.attach_interface(spec.uuid, vif)
        with pytest.raises(errors.Conflict):
            await driver.attach_interface(spec.uuid, vif)
        await driver.detach_interface(spec.uuid, vif["id"])
        with pytest.raises(errors.NotFound):
            await driver.detach_interface(spec.uuid, vif["id"])
        assert await power_state(driver, spec.uuid) == RUNNING

    async def exercise_vnc_console(self, driver: VirtDriver, spec: InstanceSpec, extras: Extras) -> None:
        endpoint = await driver.get_vnc_console(spec.uuid)
        assert endpoint.protocol == "vnc"
        assert await read_from(endpoint, 12) == b"RFB 003.008\n"  # RFB's greeting, no authentication asked yet
        await self._refused_when_stopped(driver, spec, driver.get_vnc_console)

    async def exercise_serial_console(self, driver: VirtDriver, spec: InstanceSpec, extras: Extras) -> None:
        endpoint = await driver.get_serial_console(spec.uuid)
        assert endpoint.protocol == "serial"
        await read_from(endpoint, 0)  # it takes a connection (what the guest prints is its own business)
        if driver.capabilities.pause:
            await driver.pause(spec.uuid)
            assert (await driver.get_serial_console(spec.uuid)).protocol == "serial"  # paused: still there
        await self._refused_when_stopped(driver, spec, driver.get_serial_console)

    async def _refused_when_stopped(self, driver: VirtDriver, spec: InstanceSpec,
                                    get: Callable[[str], Awaitable[Any]]) -> None:
        await driver.power_off(spec.uuid)
        with pytest.raises(InstanceInvalidState):
            await get(spec.uuid)
        with pytest.raises(InstanceNotFound):
            await get(str(uuid.uuid4()))


async def read_from(endpoint: Any, size: int) -> bytes:
    """Connect to a console endpoint and read ``size`` bytes."""
    if endpoint.path:
        reader, writer = await asyncio.open_unix_connection(endpoint.path)
    else:
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    try:
        return await asyncio.wait_for(reader.readexactly(size), 30)
    finally:
        writer.close()
