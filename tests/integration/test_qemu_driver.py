"""The QEMU driver with real guests: the virt contract, then what only a
real hypervisor shows (the test guest's marker line on the serial console,
QMP's view of a paused guest, a reboot's second marker, processes and files
gone after destroy, a new driver finding running guests).

The test guest (scripts/build-test-guest.sh) is built once and cached in
.loom/guest. Guests are small (at most 128 MB) and at most two run at once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from loom.virt.driver import ImageSource, InstanceSpec, PowerState, SpawnFailed, VirtDriver
from loom.virt.qemu import QemuDriver, QemuOptions, accel, process, qmp
from loom.virt.qemu.command import InstancePaths
from tests.virt_contract import DriverContract, Spawner, SpecFactory, power_state

ROOT = Path(__file__).resolve().parents[2]
GUEST_DIR = ROOT / ".loom" / "guest"
READY = "LOOM-GUEST-READY"
BOOT_TIMEOUT = 180.0  # TCG on a loaded two-core machine


@pytest.fixture(scope="session")
def guest_image() -> Path:
    for binary in ("qemu-system-x86_64", "qemu-img"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed on this machine (make test installs it)")
    try:
        out = subprocess.run([str(ROOT / "scripts/build-test-guest.sh"), str(GUEST_DIR)], check=True,
                             capture_output=True, text=True, timeout=600).stdout
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"building the test guest failed: {exc.stderr}")
    return Path(out.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def accelerator(guest_image: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Chosen once per session as the driver would (verified, not assumed)."""
    cache = tmp_path_factory.mktemp("accel") / "accelerator.json"
    choice = asyncio.run(accel.choose("auto", binary="qemu-system-x86_64", cache=cache, timeout=30))
    return choice.accelerator


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Short: QMP socket paths must fit in 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="loom-qemu-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def options(accelerator: str, **overrides: Any) -> QemuOptions:
    return QemuOptions(**{"accelerator": accelerator, "soft_reboot_timeout": 30.0, "vnc": True, **overrides})


@pytest.fixture
async def make_driver(state_dir: Path, accelerator: str) -> AsyncIterator[Any]:
    made: list[QemuDriver] = []

    async def make(**overrides: Any) -> QemuDriver:
        driver = QemuDriver(state_dir, options(accelerator, **overrides))
        await driver.init_host("qemu-test-host")
        made.append(driver)
        return driver

    yield make
    for driver in made:
        await driver.cleanup()
    # Whatever a test left running goes with it.
    for pidfile in _pidfiles(state_dir):
        await process.kill(pidfile, pidfile.parent.name)


def _pidfiles(state_dir: Path) -> list[Path]:
    return list(state_dir.glob("instances/*/qemu.pid"))


def file_source(path: Path) -> ImageSource:
    async def read() -> AsyncIterator[bytes]:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk

    return read


async def wait_for_markers(driver: QemuDriver, instance: str, count: int = 1,
                           timeout: float = BOOT_TIMEOUT) -> str:
    """The console once it holds ``count`` READY lines."""
    deadline = time.monotonic() + timeout
    while True:
        out = await driver.console_output(instance)
        if out.count(READY) >= count:
            return out
        assert time.monotonic() < deadline, f"no {count}th {READY} line in {timeout}s; console:\n{out}"
        await asyncio.sleep(0.2)


class TestQemuDriver(DriverContract):
    boot_timeout = BOOT_TIMEOUT

    @pytest.fixture
    async def driver(self, make_driver: Any) -> QemuDriver:
        return await make_driver()

    @pytest.fixture
    def open_image(self, guest_image: Path) -> ImageSource:
        return file_source(guest_image)

    @pytest.fixture
    def make_spec(self) -> SpecFactory:
        """The contract's specs with 128 MB: the test guest's kernel does not
        boot in the contract's 64 (it panics unpacking its initramfs)."""

        def make(**overrides: Any) -> InstanceSpec:
            return spec(**{"metadata": {"purpose": "contract"}, **overrides})

        return make

    @pytest.fixture
    def vif(self) -> dict[str, Any]:
        """A tap on no bridge: the contract's names a bridge this host lacks
        (test_qemu_interfaces.py plugs taps into a bridge of its own)."""
        return {"id": str(uuid.uuid4()), "mac": "fa:16:3e:12:34:56"}

    async def test_concurrent_spawns(self, driver: VirtDriver, new_instance: Spawner) -> None:
        """Two, not the contract's three: CI runs at most two TCG guests at once."""
        specs = await asyncio.gather(*(new_instance() for _ in range(2)))
        listed = await driver.list_instances()
        for spec in specs:
            assert spec.uuid in listed
            assert await power_state(driver, spec.uuid) == PowerState.RUNNING


# What only a real hypervisor shows.


def spec(**overrides: Any) -> InstanceSpec:
    instance = str(uuid.uuid4())
    fields: dict[str, Any] = {"uuid": instance, "name": f"qemu-{instance[:8]}", "hostname": f"guest-{instance[:8]}",
                              "vcpus": 1, "memory_mb": 128, "root_gb": 1}
    return InstanceSpec(**{**fields, **overrides})


@pytest.fixture
async def driver(make_driver: Any) -> QemuDriver:
    return await make_driver()


async def test_the_guest_prints_its_marker_with_config_drive_metadata(driver: QemuDriver, guest_image: Path) -> None:
    s = spec(config_drive=True, metadata={"role": "web"}, key_data="ssh-ed25519 AAAA test")
    started = time.monotonic()
    await driver.spawn(s, file_source(guest_image))
    out = await wait_for_markers(driver, s.uuid)
    print(f"boot to marker: {time.monotonic() - started:.1f}s ({driver.accelerator})")
    ready = next(line for line in out.splitlines() if line.startswith(READY))
    assert f"hostname={s.hostname}" in ready and f"uuid={s.uuid}" in ready and "config_drive=yes" in ready
    metadata = next(line for line in out.splitlines() if line.startswith("LOOM-GUEST-METADATA"))
    assert '"role": "web"' in metadata and '"ssh-ed25519 AAAA test"' in metadata
    assert len((await driver.console_output(s.uuid, length=1)).splitlines()) == 1
    await driver.destroy(s.uuid)


async def test_pause_is_paused_in_qmp(driver: QemuDriver, guest_image: Path) -> None:
    s = spec()
    await driver.spawn(s, file_source(guest_image))
    paths = InstancePaths(driver.state_dir / "instances" / s.uuid)
    await driver.pause(s.uuid)
    assert (await qmp.execute(paths.qmp, "query-status"))["status"] == "paused"
    assert await power_state(driver, s.uuid) == PowerState.PAUSED
    await driver.unpause(s.uuid)
    assert (await qmp.execute(paths.qmp, "query-status"))["status"] == "running"
    await driver.destroy(s.uuid)


async def test_reboots_and_power_cycles_boot_the_guest_again(driver: QemuDriver, guest_image: Path) -> None:
    s = spec()
    await driver.spawn(s, file_source(guest_image))
    await wait_for_markers(driver, s.uuid, 1)
    await driver.reboot(s.uuid, hard=True)
    await wait_for_markers(driver, s.uuid, 2)
    await driver.reboot(s.uuid, hard=False)  # Ctrl-Alt-Del: the guest restarts itself
    out = await wait_for_markers(driver, s.uuid, 3)
    assert "LOOM-GUEST-SHUTDOWN" in out  # it went down through its init, not by a reset
    started = time.monotonic()
    await driver.power_off(s.uuid, timeout=60)
    assert time.monotonic() - started < 60, "the guest ignored the ACPI power button"
    assert "LOOM-GUEST-POWER-BUTTON" in await driver.console_output(s.uuid)
    assert await power_state(driver, s.uuid) == PowerState.SHUTDOWN
    await driver.power_on(s.uuid)
    await wait_for_markers(driver, s.uuid, 4)
    await driver.destroy(s.uuid)


async def test_suspend_saves_the_guest_and_resume_goes_on(driver: QemuDriver, guest_image: Path) -> None:
    s = spec()
    await driver.spawn(s, file_source(guest_image))
    await wait_for_markers(driver, s.uuid)
    paths = InstancePaths(driver.state_dir / "instances" / s.uuid)
    await driver.suspend(s.uuid)
    assert await power_state(driver, s.uuid) == PowerState.SUSPENDED
    assert process.guest_pid(paths.pidfile, s.uuid) is None  # no QEMU holds its memory
    assert paths.suspend_state.stat().st_size > 1 << 20
    await driver.resume(s.uuid)
    assert await power_state(driver, s.uuid) == PowerState.RUNNING
    assert not paths.suspend_state.exists()
    # The same boot goes on: the guest answers the power button without rebooting.
    await driver.power_off(s.uuid, timeout=60)
    out = await driver.console_output(s.uuid)
    assert out.count(READY) == 1 and "LOOM-GUEST-POWER-BUTTON" in out
    await driver.destroy(s.uuid)


async def test_a_snapshot_boots(driver: QemuDriver, guest_image: Path, tmp_path: Path) -> None:
    s = spec(config_drive=True)
    await driver.spawn(s, file_source(guest_image))
    await wait_for_markers(driver, s.uuid)
    snapshot = tmp_path / "snapshot.qcow2"
    with snapshot.open("wb") as f:
        async for chunk in await driver.snapshot(s.uuid):
            f.write(chunk)
    assert await power_state(driver, s.uuid) == PowerState.RUNNING  # paused only for the copy
    assert snapshot.read_bytes()[:4] == b"QFI\xfb"
    assert [p.name for p in (driver.state_dir / "instances" / s.uuid).glob("snapshot-*")] == []
    await driver.destroy(s.uuid)
    copy = spec()
    await driver.spawn(copy, file_source(snapshot))
    out = await wait_for_markers(driver, copy.uuid)
    assert f"uuid={copy.uuid}" in out
    await driver.destroy(copy.uuid)


async def test_destroy_leaves_no_process_and_no_files(driver: QemuDriver, guest_image: Path) -> None:
    s = spec(ephemeral_gb=1, config_drive=True)
    await driver.spawn(s, file_source(guest_image))
    directory = driver.state_dir / "instances" / s.uuid
    pid = int((directory / "qemu.pid").read_text())
    assert {"disk.qcow2", "disk.eph0.qcow2", "config.iso", "qmp.sock", "console.log"} <= {
        p.name for p in directory.iterdir()}
    await driver.destroy(s.uuid)
    assert not directory.exists()
    assert process.guest_pid(directory / "qemu.pid", s.uuid) is None
    assert b"loom-" + s.uuid.encode() not in _cmdline(pid)
    assert list((driver.state_dir / "instances").iterdir()) == []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def test_a_new_driver_finds_running_guests(make_driver: Any, guest_image: Path) -> None:
    first = await make_driver()
    s = spec()
    await first.spawn(s, file_source(guest_image))
    await first.cleanup()  # the compute service stops; its guests do not
    second = await make_driver()
    assert await second.list_instances() == [s.uuid]
    assert await power_state(second, s.uuid) == PowerState.RUNNING
    await wait_for_markers(second, s.uuid)
    await second.pause(s.uuid)
    assert await power_state(second, s.uuid) == PowerState.PAUSED
    await second.destroy(s.uuid)
    assert await second.list_instances() == []


async def test_a_guest_gone_while_the_service_was_down_is_shutoff(make_driver: Any, guest_image: Path) -> None:
    first = await make_driver()
    s = spec()
    await first.spawn(s, file_source(guest_image))
    directory = first.state_dir / "instances" / s.uuid
    await process.kill(directory / "qemu.pid", s.uuid)
    second = await make_driver()
    assert await second.list_instances() == [s.uuid]
    assert await power_state(second, s.uuid) == PowerState.SHUTDOWN
    await second.power_on(s.uuid)
    assert await power_state(second, s.uuid) == PowerState.RUNNING
    await second.destroy(s.uuid)


async def test_the_fallback_image_boots_when_no_image_is_given(make_driver: Any, guest_image: Path) -> None:
    driver = await make_driver(fallback_image=str(guest_image))
    s = spec()
    await driver.spawn(s, None)
    await wait_for_markers(driver, s.uuid)
    await driver.destroy(s.uuid)


async def test_a_failed_spawn_leaves_nothing(driver: QemuDriver) -> None:
    async def not_a_disk() -> AsyncIterator[bytes]:
        yield b"QFI\xfb" + bytes(60)  # a truncated qcow2 header

    s = spec()
    with pytest.raises(SpawnFailed, match="cannot be used"):
        await driver.spawn(s, not_a_disk)
    assert s.uuid not in await driver.list_instances()
    assert not (driver.state_dir / "instances" / s.uuid).exists()
    assert (await driver.host_resources()).memory_mb_used == 0


def test_guest_build_is_cached(guest_image: Path) -> None:
    before = guest_image.stat().st_mtime_ns
    subprocess.run([str(ROOT / "scripts/build-test-guest.sh"), str(GUEST_DIR)], check=True, capture_output=True)
    assert guest_image.stat().st_mtime_ns == before
    assert 4 << 20 < guest_image.stat().st_size < 32 << 20


def test_kvm_is_verified_not_assumed(accelerator: str) -> None:
    """Whatever the probe chose, it chose by booting: tcg where /dev/kvm is
    missing or cannot run a kernel."""
    assert accelerator in ("kvm", "tcg")
    if not os.path.exists("/dev/kvm"):
        assert accelerator == "tcg"


def test_regression_spawn_under_uvloop_returns(state_dir: Path, accelerator: str, guest_image: Path) -> None:
    """`loom up` runs on uvloop, whose subprocesses leaked a pipe into the
    daemonized QEMU: spawn then waited for that pipe's end forever."""
    uvloop = pytest.importorskip("uvloop")

    async def spawn_and_destroy() -> None:
        driver = QemuDriver(state_dir, options(accelerator))
        await driver.init_host("qemu-test-host")
        s = spec()
        try:
            await asyncio.wait_for(driver.spawn(s, file_source(guest_image)), 60)
            assert await power_state(driver, s.uuid) == PowerState.RUNNING
        finally:
            await driver.destroy(s.uuid)
            await driver.cleanup()

    uvloop.run(spawn_and_destroy())
