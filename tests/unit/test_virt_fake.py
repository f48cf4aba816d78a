"""The virt contract on the fake hypervisor (with every capability, and with
none), then what only the fake promises: injected failures, delays, state
kept across driver objects, the host registry, the transition rules in full."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import loom.virt.fake
import loom.virt.fake.images
from loom import errors
from loom.image.inspector import StreamInspector
from loom.virt.driver import (
    ALLOWED_STATES,
    Capabilities,
    DriverError,
    InstanceExists,
    InstanceInvalidState,
    InstanceNotFound,
    InstanceSpec,
    InsufficientResources,
    NotSupported,
    PowerState,
    SpawnFailed,
    VirtDriver,
)
from loom.virt.fake import BOOT_MARKER, CONSOLE_LINES, CPU_LOAD, RESCUE_MARKER, SNAPSHOT_SIZE, FakeDriver
from tests.virt_contract import DriverContract, tiny_image

RUNNING, PAUSED, SHUTDOWN = PowerState.RUNNING, PowerState.PAUSED, PowerState.SHUTDOWN
SUSPENDED, CRASHED = PowerState.SUSPENDED, PowerState.CRASHED


@pytest.fixture
async def make_fake() -> AsyncIterator[Callable[..., Awaitable[FakeDriver]]]:
    """Initialised fakes on fresh host names, cleaned up afterwards."""
    made: list[FakeDriver] = []

    async def make(host: str | None = None, cls: type[FakeDriver] = FakeDriver, **knobs: Any) -> FakeDriver:
        driver = cls(**{"vcpus": 8, "memory_mb": 8192, "disk_gb": 100, **knobs})
        await driver.init_host(host or f"fake-{uuid.uuid4().hex[:8]}")
        made.append(driver)
        return driver

    yield make
    for driver in made:
        await driver.cleanup()


class TestFakeDriver(DriverContract):
    @pytest.fixture
    async def driver(self, make_fake: Callable[..., Awaitable[FakeDriver]]) -> FakeDriver:
        return await make_fake()

    @pytest.fixture
    async def peer_driver(self, make_fake: Callable[..., Awaitable[FakeDriver]]) -> FakeDriver:
        return await make_fake()


class BareFake(FakeDriver):
    """The fake, declaring no optional capability: the contract's refusals."""

    capabilities = Capabilities()


class TestBareFakeDriver(DriverContract):
    @pytest.fixture
    async def driver(self, make_fake: Callable[..., Awaitable[FakeDriver]]) -> FakeDriver:
        return await make_fake(cls=BareFake)


def spec(**overrides: Any) -> InstanceSpec:
    instance = str(uuid.uuid4())
    return InstanceSpec(**{"uuid": instance, "name": "vm", "hostname": f"vm-{instance[:4]}", "vcpus": 1,
                           "memory_mb": 256, "root_gb": 1, **overrides})


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


async def usage(driver: FakeDriver) -> tuple[int, int, int]:
    r = await driver.host_resources()
    return r.vcpus_used, r.memory_mb_used, r.local_gb_used


@pytest.fixture
async def fake(make_fake: Callable[..., Awaitable[FakeDriver]]) -> FakeDriver:
    return await make_fake()


# The console.


async def test_boot_prints_the_guest_its_metadata_and_addresses(fake: FakeDriver) -> None:
    s = spec(metadata={"role": "web"}, key_data="ssh-ed25519 AAAA x", user_data="IyEvYmluL3No",
             networks=[{"id": "vif-1", "mac": "fa:16:3e:aa:bb:cc", "ips": ["10.0.0.7"], "bridge": "br100"}])
    await fake.spawn(s)
    lines = (await fake.console_output(s.uuid)).splitlines()
    assert lines[-1] == f"{BOOT_MARKER} {s.hostname} {s.uuid}"
    assert 'loom-fake-guest: metadata {"role": "web"}' in lines
    assert "loom-fake-guest: eth0 fa:16:3e:aa:bb:cc 10.0.0.7" in lines
    assert "loom-fake-guest: ssh key installed" in lines
    assert "loom-fake-guest: user-data found" in lines


async def test_every_boot_prints_a_marker_and_only_boots_do(fake: FakeDriver) -> None:
    s = spec()
    await fake.spawn(s)
    await fake.reboot(s.uuid, hard=False)
    await fake.reboot(s.uuid, hard=True)
    await fake.pause(s.uuid)
    await fake.unpause(s.uuid)
    await fake.suspend(s.uuid)
    await fake.resume(s.uuid)
    await fake.power_off(s.uuid, timeout=10)
    await fake.power_on(s.uuid)
    console = await fake.console_output(s.uuid)
    assert console.count(f"{BOOT_MARKER} {s.hostname} {s.uuid}") == 4
    assert "the system is going down" in console
    assert fake.guest(s.uuid).boots == 4


async def test_console_length_is_the_last_lines_and_the_log_is_bounded(fake: FakeDriver) -> None:
    s = spec()
    await fake.spawn(s)
    assert await fake.console_output(s.uuid, length=1) == f"{BOOT_MARKER} {s.hostname} {s.uuid}\n"
    assert await fake.console_output(s.uuid, length=0) == ""
    with pytest.raises(errors.Invalid):
        await fake.console_output(s.uuid, length=-1)
    for _ in range(CONSOLE_LINES // 3):
        await fake.reboot(s.uuid, hard=True)
    assert len((await fake.console_output(s.uuid)).splitlines()) == CONSOLE_LINES


async def test_rescue_boots_the_rescue_system_and_blocks_disk_operations(fake: FakeDriver) -> None:
    s = spec()
    await fake.spawn(s)
    await fake.rescue(s.uuid, tiny_image)
    assert (await fake.console_output(s.uuid, length=1)).startswith(f"{RESCUE_MARKER} for {s.hostname}")
    for call in (lambda: fake.snapshot(s.uuid), lambda: fake.resize(s.uuid, dataclasses.replace(s, root_gb=2)),
                 lambda: fake.rebuild(s), lambda: fake.live_migration(s.uuid, "elsewhere", {})):
        with pytest.raises(InstanceInvalidState, match="it is in rescue"):
            await call()
    await fake.unrescue(s.uuid)
    assert (await fake.console_output(s.uuid, length=1)).startswith(BOOT_MARKER)


# Power states: every operation with a rule, from every state.


async def bring(driver: FakeDriver, instance: str, state: PowerState) -> None:
    moves = {PAUSED: driver.pause, SUSPENDED: driver.suspend, SHUTDOWN: driver.power_off,
             CRASHED: driver.trigger_crash_dump}
    if state in moves:
        await moves[state](instance)
    assert (await driver.get_info(instance)).power_state == state


OPERATIONS: dict[str, Callable[[FakeDriver, InstanceSpec, FakeDriver], Awaitable[Any]]] = {
    "soft reboot": lambda d, s, peer: d.reboot(s.uuid, hard=False),
    "hard reboot": lambda d, s, peer: d.reboot(s.uuid, hard=True),
    "power_off": lambda d, s, peer: d.power_off(s.uuid),
    "power_on": lambda d, s, peer: d.power_on(s.uuid),
    "pause": lambda d, s, peer: d.pause(s.uuid),
    "unpause": lambda d, s, peer: d.unpause(s.uuid),
    "suspend": lambda d, s, peer: d.suspend(s.uuid),
    "resume": lambda d, s, peer: d.resume(s.uuid),
    "resize": lambda d, s, peer: d.resize(s.uuid, dataclasses.replace(s, memory_mb=512)),
    "rebuild": lambda d, s, peer: d.rebuild(s, tiny_image),
    "rescue": lambda d, s, peer: d.rescue(s.uuid),
    "change_password": lambda d, s, peer: d.change_password(s.uuid, "pa55word"),
    "trigger_crash_dump": lambda d, s, peer: d.trigger_crash_dump(s.uuid),
    "snapshot": lambda d, s, peer: d.snapshot(s.uuid),
    "attach_volume": lambda d, s, peer: d.attach_volume(s.uuid, {"driver_volume_type": "file"}, "/dev/vdc"),
    "live_migration": lambda d, s, peer: _migrate(d, s, peer),
    "vnc_console": lambda d, s, peer: d.get_vnc_console(s.uuid),
    "serial_console": lambda d, s, peer: d.get_serial_console(s.uuid),
}


async def _migrate(driver: FakeDriver, s: InstanceSpec, peer: FakeDriver) -> None:
    data = await peer.pre_live_migration(s)
    try:
        await driver.live_migration(s.uuid, data["host"], data)
    finally:
        await peer.rollback_live_migration_at_destination(s.uuid)


def test_every_ruled_operation_is_tested() -> None:
    assert set(ALLOWED_STATES) <= set(OPERATIONS)


@pytest.mark.parametrize("state", [RUNNING, PAUSED, SUSPENDED, SHUTDOWN, CRASHED], ids=lambda s: s.name)
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_power_state_rules(
    make_fake: Callable[..., Awaitable[FakeDriver]], operation: str, state: PowerState
) -> None:
    driver, peer = await make_fake(), await make_fake()
    s = spec()
    await driver.spawn(s)
    await bring(driver, s.uuid, state)
    allowed = ALLOWED_STATES.get(operation)
    if allowed is None or state in allowed:
        await OPERATIONS[operation](driver, s, peer)
        return
    wanted = " or ".join(a.name for a in sorted(allowed))
    with pytest.raises(InstanceInvalidState) as exc:
        await OPERATIONS[operation](driver, s, peer)
    assert exc.value.message == f"cannot {operation} instance {s.uuid}: it is {state.name}, {operation} needs {wanted}"
    assert (await driver.get_info(s.uuid)).power_state == state
    assert isinstance(exc.value, errors.BadState) and exc.value.status == 409


async def test_crashed_guest_powers_on(fake: FakeDriver) -> None:
    s = spec()
    await fake.spawn(s)
    await fake.trigger_crash_dump(s.uuid)
    assert (await fake.get_info(s.uuid)).power_state == CRASHED
    assert "Kernel panic" in await fake.console_output(s.uuid)
    await fake.power_on(s.uuid)
    assert (await fake.get_info(s.uuid)).power_state == RUNNING


# Capacity.


async def test_memory_and_disk_are_strict_vcpus_only_counted(make_fake: Callable[..., Awaitable[FakeDriver]]) -> None:
    driver = await make_fake(vcpus=2, memory_mb=1024, disk_gb=10)
    await driver.spawn(spec(memory_mb=512, vcpus=16, root_gb=4))
    await driver.spawn(spec(memory_mb=512, root_gb=4, swap_mb=1))
    assert await usage(driver) == (17, 1024, 9)
    refused = spec(memory_mb=1, root_gb=2)
    with pytest.raises(InsufficientResources) as exc:
        await driver.spawn(refused)
    assert exc.value.message == (f"host {driver.host} has no room for instance {refused.uuid}: it needs "
                                 "1 MB of memory (0 MB free) and 2 GB of disk (1 GB free)")
    assert await usage(driver) == (17, 1024, 9)


async def test_hosts_are_independent(make_fake: Callable[..., Awaitable[FakeDriver]]) -> None:
    small = await make_fake(memory_mb=512)
    big = await make_fake(memory_mb=4096)
    s = spec(memory_mb=1024)
    with pytest.raises(InsufficientResources):
        await small.spawn(s)
    await big.spawn(s)
    assert await small.list_instances() == [] and await big.list_instances() == [s.uuid]


# Injected failures and delays.


async def test_fail_the_next_spawns(fake: FakeDriver) -> None:
    fake.fail_spawn = 2
    for _ in range(2):
        with pytest.raises(SpawnFailed, match="injected failure"):
            await fake.spawn(spec())
    assert fake.fail_spawn == 0
    await fake.spawn(spec())
    assert len(await fake.list_instances()) == 1


async def test_fail_always_or_by_predicate(make_fake: Callable[..., Awaitable[FakeDriver]]) -> None:
    always = await make_fake(fail_spawn=True)
    for _ in range(3):
        with pytest.raises(SpawnFailed, match="injected failure"):
            await always.spawn(spec())
    assert await always.list_instances() == [] and await usage(always) == (0, 0, 0)
    chosen = await make_fake(fail_spawn=lambda s: s.name == "doomed")
    with pytest.raises(SpawnFailed):
        await chosen.spawn(spec(name="doomed"))
    await chosen.spawn(spec(name="lucky"))
    assert len(await chosen.list_instances()) == 1


async def test_a_building_instance_holds_resources_but_is_not_listed(
    make_fake: Callable[..., Awaitable[FakeDriver]]
) -> None:
    driver = await make_fake(memory_mb=1024, spawn_delay=0.2)
    s = spec(memory_mb=1024)
    building = asyncio.create_task(driver.spawn(s))

    async def claimed() -> bool:
        return (await usage(driver))[1] == 1024

    await wait_until(claimed)
    assert await driver.list_instances() == []
    with pytest.raises(InstanceNotFound):
        await driver.get_info(s.uuid)
    with pytest.raises(InstanceExists):
        await driver.spawn(s)
    with pytest.raises(InsufficientResources):
        await driver.spawn(spec(memory_mb=1))
    await building
    assert await driver.list_instances() == [s.uuid]


async def test_destroy_during_spawn_waits_for_it(make_fake: Callable[..., Awaitable[FakeDriver]]) -> None:
    driver = await make_fake(spawn_delay=0.1)
    s = spec()
    building = asyncio.create_task(driver.spawn(s))

    async def claimed() -> bool:
        return (await usage(driver))[1] > 0

    await wait_until(claimed)
    await driver.destroy(s.uuid)
    assert building.done() and building.exception() is None  # the spawn finished first
    assert await driver.list_instances() == [] and await usage(driver) == (0, 0, 0)


async def test_a_cancelled_spawn_leaves_nothing_behind(make_fake: Callable[..., Awaitable[FakeDriver]]) -> None:
    driver = await make_fake(spawn_delay=10)
    building = asyncio.create_task(driver.spawn(spec()))

    async def claimed() -> bool:
        return (await usage(driver))[1] > 0

    await wait_until(claimed)
    building.cancel()
    with pytest.raises(asyncio.CancelledError):
        await building
    assert await usage(driver) == (0, 0, 0)


async def test_operations_on_one_instance_take_turns(make_fake: Callable[..., Awaitable[FakeDriver]]) -> None:
    driver = await make_fake(op_delay=0.05)
    s = spec()
    await driver.spawn(s)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(driver.pause(s.uuid), driver.power_off(s.uuid))
    assert loop.time() - started >= 0.1
    assert (await driver.get_info(s.uuid)).power_state == SHUTDOWN


# Images.


async def test_spawn_reads_the_image(fake: FakeDriver) -> None:
    s = spec()
    await fake.spawn(s, tiny_image)
    expected = hashlib.sha256(b"".join(bytes([i]) * (64 << 10) for i in range(4))).hexdigest()
    assert (fake.guest(s.uuid).image_sha256, fake.guest(s.uuid).image_size) == (expected, 256 << 10)
    without = spec()
    await fake.spawn(without, None)  # an image the host has cached, say
    assert fake.guest(without.uuid).image_sha256 is None


async def test_an_unreadable_image_fails_the_spawn(fake: FakeDriver) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"first"
        raise OSError("connection reset")

    with pytest.raises(SpawnFailed, match="connection reset"):
        await fake.spawn(spec(image_id="img-1"), broken)

    async def unavailable() -> AsyncIterator[bytes]:
        raise errors.Conflict("Image img-1 is queued, not active")
        yield b""

    with pytest.raises(errors.Conflict, match="queued"):
        await fake.spawn(spec(), unavailable)
    assert await fake.list_instances() == [] and await usage(fake) == (0, 0, 0)


async def test_an_image_larger_than_the_root_disk_fails_the_spawn(
    fake: FakeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loom.virt.fake.images, "GIB", 1024)  # a 1 GB disk is 1 KiB today

    async def huge() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield bytes(256)

    with pytest.raises(SpawnFailed, match="larger than the 1 GB root disk"):
        await fake.spawn(spec(root_gb=1), huge)
    assert await fake.list_instances() == []


async def test_a_failed_rebuild_leaves_the_instance_as_it_was(fake: FakeDriver) -> None:
    s = spec()
    await fake.spawn(s, tiny_image)

    async def broken() -> AsyncIterator[bytes]:
        raise OSError("gone")
        yield b""

    with pytest.raises(SpawnFailed):
        await fake.rebuild(dataclasses.replace(s, name="new"), broken)
    assert fake.guest(s.uuid).spec.name == "vm" and fake.guest(s.uuid).image_size == 256 << 10
    await fake.rebuild(dataclasses.replace(s, name="new", hostname="new-host"), None)
    assert (await fake.console_output(s.uuid, length=1)) == f"{BOOT_MARKER} new-host {s.uuid}\n"


async def test_snapshot_is_a_small_raw_disk_of_the_instance(fake: FakeDriver) -> None:
    s = spec(image_id="img-9")
    await fake.spawn(s, tiny_image)
    data = b"".join([chunk async for chunk in await fake.snapshot(s.uuid)])
    assert len(data) == SNAPSHOT_SIZE
    label = json.loads(data.rstrip(b"\0"))
    assert (label["instance"], label["image_id"], label["boots"]) == (s.uuid, "img-9", 1)
    inspector = StreamInspector()
    inspector.feed(data)
    assert inspector.finish().format == "raw"


# Time.


async def test_cpu_time_and_uptime_follow_the_clock(make_fake: Callable[..., Awaitable[FakeDriver]]) -> None:
    now = [1000.0]
    driver = await make_fake(clock=lambda: now[0])
    s = spec(vcpus=2)
    await driver.spawn(s)
    now[0] += 10
    info = await driver.get_info(s.uuid)
    assert info.uptime_s == 10 and info.cpu_time_ns == int(10 * 2 * CPU_LOAD * 1e9)
    await driver.pause(s.uuid)
    now[0] += 10
    info = await driver.get_info(s.uuid)
    assert info.uptime_s == 20 and info.cpu_time_ns == int(10 * 2 * CPU_LOAD * 1e9)
    await driver.power_off(s.uuid)
    assert (await driver.get_info(s.uuid)).uptime_s == 0


# Devices.


async def test_devices_are_tracked_and_checked(fake: FakeDriver) -> None:
    s = spec(networks=[{"id": "vif-1", "mac": "fa:16:3e:00:00:01", "ips": []}])
    await fake.spawn(s)
    with pytest.raises(errors.Invalid):
        await fake.attach_volume(s.uuid, {"data": {}}, "/dev/vdb")
    with pytest.raises(errors.Invalid):
        await fake.attach_interface(s.uuid, {"id": "vif-2"})
    with pytest.raises(errors.Conflict):
        await fake.attach_interface(s.uuid, {"id": "vif-1", "mac": "fa:16:3e:00:00:02"})
    with pytest.raises(errors.Invalid):
        await fake.change_password(s.uuid, "")
    await fake.attach_volume(s.uuid, {"driver_volume_type": "file"}, "/dev/vdb")
    await fake.detach_interface(s.uuid, "vif-1")
    guest = fake.guest(s.uuid)
    assert list(guest.volumes) == ["/dev/vdb"] and guest.interfaces == {}


# Live migration.


async def test_live_migration_moves_the_guest_with_its_console(
    make_fake: Callable[..., Awaitable[FakeDriver]]
) -> None:
    source, dest = await make_fake(), await make_fake(memory_mb=1024)
    s = spec(memory_mb=1024)
    await source.spawn(s)
    with pytest.raises(InstanceInvalidState, match="not prepared"):
        await source.live_migration(s.uuid, dest.host or "", {})
    with pytest.raises(DriverError, match="no other fake hypervisor"):
        await source.live_migration(s.uuid, "nowhere", {})
    with pytest.raises(InstanceExists):
        await source.pre_live_migration(s)
    data = await dest.pre_live_migration(s)
    assert data == {"host": dest.host, "uri": f"fake://{dest.host}"}
    with pytest.raises(InsufficientResources):
        await dest.spawn(spec(memory_mb=1))
    await source.live_migration(s.uuid, data["host"], data)
    assert await source.list_instances() == [] and await dest.list_instances() == [s.uuid]
    assert f"{BOOT_MARKER} {s.hostname} {s.uuid}" in await dest.console_output(s.uuid)
    await dest.pause(s.uuid)  # its lock is its own
    assert await usage(source) == (0, 0, 0) and await usage(dest) == (1, 1024, 1)


# The registry and restarts.


async def test_the_registry_finds_the_fake_of_a_host(make_fake: Callable[..., Awaitable[FakeDriver]]) -> None:
    host = f"fake-{uuid.uuid4().hex[:8]}"
    first = await make_fake(host)
    assert FakeDriver.for_host(host) is first
    second = await make_fake(host)  # a restarted compute service
    assert FakeDriver.for_host(host) is second
    await first.cleanup()
    assert FakeDriver.for_host(host) is second
    await second.cleanup()
    with pytest.raises(errors.NotFound, match=host):
        FakeDriver.for_host(host)


async def test_the_host_is_set_once(fake: FakeDriver) -> None:
    await fake.init_host(fake.host or "")
    with pytest.raises(errors.BadState):
        await fake.init_host("another-host")
    with pytest.raises(errors.BadState, match="init_host"):
        await FakeDriver().list_instances()
    named = FakeDriver(host="named-host")
    with pytest.raises(errors.BadState, match="init_host"):
        await named.host_resources()
    with pytest.raises(errors.BadState, match="runs host named-host"):
        await named.init_host("another-host")


async def test_guests_outlive_the_driver_with_a_state_path(
    make_fake: Callable[..., Awaitable[FakeDriver]], tmp_path: Path
) -> None:
    now = [50.0]
    path = tmp_path / "host-a.json"
    first = await make_fake("host-a-" + uuid.uuid4().hex[:6], state_path=path, clock=lambda: now[0])
    host = first.host or ""
    running, stopped = spec(), spec(metadata={"k": "v"})
    await first.spawn(running)
    await first.spawn(stopped)
    await first.power_off(stopped.uuid)
    await first.attach_volume(running.uuid, {"driver_volume_type": "file"}, "/dev/vdb")
    await first.cleanup()

    now[0] += 30
    second = await make_fake(host, state_path=path, clock=lambda: now[0])
    assert await second.list_instances() == sorted([running.uuid, stopped.uuid])
    assert (await second.get_info(running.uuid)).power_state == RUNNING
    assert (await second.get_info(running.uuid)).uptime_s == 30
    assert (await second.get_info(stopped.uuid)).power_state == SHUTDOWN
    assert second.guest(stopped.uuid).spec == stopped
    assert list(second.guest(running.uuid).volumes) == ["/dev/vdb"]
    assert await second.console_output(running.uuid) == await first.console_output(running.uuid)
    assert await usage(second) == (2, 512, 2)
    await second.destroy(stopped.uuid)

    third = FakeDriver(state_path=path)
    await third.init_host(host)
    assert await third.list_instances() == [running.uuid]
    await third.cleanup()
    with pytest.raises(errors.Invalid, match="holds the guests of host"):
        await FakeDriver(state_path=path).init_host("another-host")


async def test_without_a_state_path_guests_die_with_the_driver(
    make_fake: Callable[..., Awaitable[FakeDriver]]
) -> None:
    first = await make_fake()
    await first.spawn(spec())
    assert await (await make_fake(first.host)).list_instances() == []


# The driver base class.


def test_declaring_a_capability_without_implementing_it_is_refused() -> None:
    with pytest.raises(TypeError, match="does not implement pause, unpause"):
        type("Liar", (FakeDriver,), {"capabilities": Capabilities(pause=True), "pause": VirtDriver.pause,
                                     "unpause": VirtDriver.unpause})


async def test_check_capability(fake: FakeDriver) -> None:
    with pytest.raises(ValueError, match="unknown capability"):
        fake.check_capability("teleport")
    with pytest.raises(NotSupported, match="the BareFake driver does not support live migration") as exc:
        BareFake().check_capability("live_migration")
    assert exc.value.status == 409 and exc.value.details == {"capability": "live_migration"}


class DefaultRebuildFake(FakeDriver):
    rebuild = VirtDriver.rebuild


async def test_the_default_rebuild_destroys_and_spawns(make_fake: Callable[..., Awaitable[FakeDriver]]) -> None:
    driver = await make_fake(cls=DefaultRebuildFake)
    s = spec()
    await driver.spawn(s)
    await driver.rebuild(dataclasses.replace(s, hostname="again"), tiny_image)
    assert driver.guest(s.uuid).boots == 1 and driver.guest(s.uuid).spec.hostname == "again"
    with pytest.raises(errors.Invalid, match="keeps its flavor"):
        await driver.rebuild(dataclasses.replace(s, vcpus=4))


def test_instance_spec() -> None:
    s = InstanceSpec.from_dict({**dataclasses.asdict(spec(root_gb=2, ephemeral_gb=3, swap_mb=1025)), "extra": 1})
    assert s.disk_gb == 2 + 3 + 2
    assert [int(p) for p in PowerState] == [0, 1, 3, 4, 6, 7]


def test_errors_are_the_common_categories() -> None:
    assert issubclass(InstanceNotFound, errors.NotFound) and issubclass(InstanceExists, errors.Conflict)
    assert issubclass(InsufficientResources, errors.NoResources) and issubclass(NotSupported, errors.Conflict)
    assert issubclass(SpawnFailed, DriverError) and DriverError.status == 500
    # Crosses the bus intact.
    assert errors.error_class(f"{InstanceInvalidState.__module__}.InstanceInvalidState") is InstanceInvalidState


def test_the_fake_imports_no_test_library() -> None:
    for path in Path(loom.virt.fake.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert not imported & {"pytest", "unittest", "mock", "tests", "hypothesis"}, path
