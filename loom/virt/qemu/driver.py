"""The QEMU driver: each guest a ``qemu-system-x86_64`` process driven
over QMP, no libvirt.

Everything of an instance lives in ``<state_dir>/instances/<uuid>/``: its
spec, a qcow2 overlay on a cached base image, the config drive, the QMP and
VNC sockets, the serial log, the pid file. QEMU daemonizes, so guests
outlive the compute service; a new driver finds them again from these
directories (``init_host``) and reaches each through its QMP socket.

Power states come from the process and ``query-status``: no live process is
SHUTDOWN (the disk stays; ``power_on`` starts a new QEMU), ``running`` is
RUNNING, ``paused`` PAUSED, an internal error or guest panic CRASHED.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shlex
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loom import errors
from loom.virt.driver import (
    Capabilities,
    ConsoleEndpoint,
    ConsoleUnavailable,
    DriverError,
    HostResources,
    ImageSource,
    InstanceExists,
    InstanceInfo,
    InstanceNotFound,
    InstanceSpec,
    InsufficientResources,
    PowerState,
    SpawnFailed,
    VirtDriver,
    check_power_state,
)
from loom.virt.qemu import accel, cgroups, configdrive, console, interfaces, process, qmp, volumes
from loom.virt.qemu import host as hostinfo
from loom.virt.qemu import rescue as rescue_ops
from loom.virt.qemu import resize as resize_ops
from loom.virt.qemu.command import GuestConfig, InstancePaths, command_line
from loom.virt.qemu.images import GIB, ImageCache, local_source, run, stream_file

LOG = logging.getLogger(__name__)

# query-status run states, as power states. Anything not named is PAUSED:
# the vCPUs are stopped (migration, I/O error, debugger, ...).
RUN_STATES = {
    "running": PowerState.RUNNING,
    "paused": PowerState.PAUSED,
    "suspended": PowerState.SUSPENDED,
    "shutdown": PowerState.SHUTDOWN,
    "internal-error": PowerState.CRASHED,
    "guest-panicked": PowerState.CRASHED,
}
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes, the last a NUL
CONSOLE_ROTATE_INTERVAL = 10.0
SOFT_REBOOT_REPEAT = 5.0  # seconds between Ctrl-Alt-Del presses


@dataclass
class QemuGuest:
    spec: InstanceSpec
    paths: InstancePaths
    building: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


@dataclass(frozen=True)
class QemuOptions:
    """The driver's knobs (compute.qemu_* settings)."""

    # auto (verify that KVM boots a kernel), kvm or tcg.
    accelerator: str = "auto"
    binary: str = "qemu-system-x86_64"
    qemu_img: str = "qemu-img"
    vnc: bool = True
    console_bytes: int = 1 << 20
    # Seconds a guest is given to restart itself after Ctrl-Alt-Del before
    # it is reset.
    soft_reboot_timeout: float = 60.0
    # Booted when spawn is given no image (the test guest, for `loom up`).
    fallback_image: str = ""
    # QEMU's user-mode network (restrict=on) for interfaces, until the
    # network service plugs taps.
    user_network: bool = False
    probe_kernel: str = ""
    probe_timeout: float = 30.0
    # Host memory kept back from guests for the host itself.
    reserved_memory_mb: int = 512
    # Root ports made at start for hot-plugged volumes and NICs (Nova's
    # num_pcie_ports); seconds a guest is given to release a detached device.
    pcie_ports: int = 8
    detach_timeout: float = 120.0
    # Each QEMU in a cgroup of its own under cgroup_parent (cgroups.py):
    # auto (where the host allows), on (required) or off.
    cgroups: str = "auto"
    cgroup_parent: str = "loom.slice"
    cgroup_memory_overhead_mb: int = 256


class QemuDriver(VirtDriver):
    """Real guests; see the module doc."""

    capabilities = Capabilities(pause=True, suspend=True, console_output=True, snapshot=True,
                                vnc_console=True, serial_console=True, attach_volume=True, attach_interface=True,
                                resize=True, rescue=True)

    def __init__(self, state_dir: Path, options: QemuOptions | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.options = options or QemuOptions()
        self.images = ImageCache(self.state_dir / "_base", qemu_img=self.options.qemu_img)
        self.host: str | None = None
        self.accelerator: accel.Choice | None = None
        self._version: tuple[int, str] = (0, "")
        self._guests: dict[str, QemuGuest] = {}
        self._rotator: asyncio.Task[None] | None = None
        self.cgroups = cgroups.Cgroups(self.options.cgroups, self.options.cgroup_parent,
                                       self.options.cgroup_memory_overhead_mb)
        longest = self.state_dir / "instances" / ("0" * 36) / "serial.sock"
        if len(str(longest)) > UNIX_PATH_MAX:
            raise errors.Invalid(f"the qemu state directory {self.state_dir} is too long for unix socket paths "
                                 f"({len(str(longest))} > {UNIX_PATH_MAX} bytes); choose a shorter one")

    # The host.

    async def init_host(self, host: str) -> None:
        (self.state_dir / "instances").mkdir(parents=True, exist_ok=True)
        self.accelerator = await accel.choose(
            self.options.accelerator, binary=self.options.binary, cache=self.state_dir / "accelerator.json",
            kernel=self.options.probe_kernel, timeout=self.options.probe_timeout)
        LOG.info("qemu driver on %s: accelerator %s (%s)", host, self.accelerator.accelerator,
                 self.accelerator.reason)
        self._version = await hostinfo.qemu_version(self.options.binary)
        await asyncio.to_thread(self.cgroups.probe)
        if self.cgroups.available:
            LOG.info("qemu driver on %s: guest limits in %s", host, self.cgroups.reason)
        else:
            LOG.warning("qemu driver on %s: guests run without cgroup limits: %s", host, self.cgroups.reason)
        self._guests = await asyncio.to_thread(self._load)
        self.host = host
        if self._rotator is None:
            self._rotator = asyncio.create_task(self._rotate_consoles(), name="qemu-console-rotation")

    async def cleanup(self) -> None:
        if self._rotator is not None:
            self._rotator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rotator
            self._rotator = None

    def _load(self) -> dict[str, QemuGuest]:
        """The instances in the state directory. A directory without a spec
        is a spawn that died with its compute service: it is removed."""
        guests = {}
        for directory in sorted((self.state_dir / "instances").iterdir()):
            paths = InstancePaths(directory)
            try:
                spec = InstanceSpec.from_dict(json.loads(paths.spec.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                LOG.warning("removing %s: an unfinished spawn", directory)
                pid = process.guest_pid(paths.pidfile, directory.name)
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                shutil.rmtree(directory, ignore_errors=True)
                continue
            guests[spec.uuid] = QemuGuest(spec, paths)
            self.cgroups.adopt(spec.uuid, directory, process.guest_pid(paths.pidfile, spec.uuid))
        return guests

    async def host_resources(self) -> HostResources:
        host = self._ready()
        specs = [g.spec for g in self._guests.values()] + resize_ops.kept_specs(self.state_dir)
        cpu = hostinfo.cpu_info()
        return HostResources(
            hostname=host, vcpus=os.cpu_count() or 1, memory_mb=self._memory_mb(), local_gb=self._disk_gb(),
            vcpus_used=sum(s.vcpus for s in specs), memory_mb_used=sum(s.memory_mb for s in specs),
            local_gb_used=sum(s.disk_gb for s in specs), hypervisor_type="QEMU",
            hypervisor_version=self._version[0], hypervisor_hostname=host, cpu_info=cpu)

    def _memory_mb(self) -> int:
        total = hostinfo.meminfo_kb("MemTotal") // 1024
        return max(1, total - self.options.reserved_memory_mb)

    def _disk_gb(self) -> int:
        return max(1, shutil.disk_usage(self.state_dir).total // GIB)

    async def list_instances(self) -> list[str]:
        self._ready()
        return sorted(uuid for uuid, guest in self._guests.items() if not guest.building)

    async def get_info(self, uuid: str) -> InstanceInfo:
        guest = self._guest(uuid)
        state, pid = await self._power_state(guest)
        return InstanceInfo(power_state=state, vcpus=guest.spec.vcpus, memory_mb=guest.spec.memory_mb,
                            cpu_time_ns=process.cpu_time_ns(pid) if pid else 0,
                            uptime_s=process.uptime_s(pid) if pid else 0.0)

    # The lifecycle.

    async def spawn(self, spec: InstanceSpec, open_image: ImageSource | None = None) -> None:
        self._ready()
        if spec.uuid in self._guests:
            raise InstanceExists(f"instance {spec.uuid} is already on host {self.host}", instance=spec.uuid)
        self._check_room(spec)
        paths = InstancePaths(self.state_dir / "instances" / spec.uuid)
        guest = QemuGuest(spec, paths, building=True)
        self._guests[spec.uuid] = guest  # it holds its resources while it builds
        try:
            async with guest.lock:
                await self._build(guest, open_image)
                guest.building = False
        except BaseException:
            if self._guests.get(spec.uuid) is guest:
                del self._guests[spec.uuid]
            await self._remove(guest)  # nothing left behind
            raise

    async def _build(self, guest: QemuGuest, open_image: ImageSource | None) -> None:
        spec, paths = guest.spec, guest.paths
        shutil.rmtree(paths.directory, ignore_errors=True)
        paths.directory.mkdir(parents=True)
        image_id, source = spec.image_id, open_image
        if source is None and self.options.fallback_image and not self.images.has(image_id):
            image_id, source = local_source(Path(self.options.fallback_image))
        base = await self.images.fetch(image_id, source)
        await self.images.create_overlay(base, paths.disk, spec.root_gb)
        if spec.ephemeral_gb:
            await self.images.create_blank(paths.ephemeral, spec.ephemeral_gb)
        if spec.config_drive:
            await configdrive.build(spec, paths.config_drive)
        await self._start(guest)
        # The spec last: a directory holding one is a finished spawn.
        _write_atomically(paths.spec, json.dumps(dataclasses.asdict(spec), sort_keys=True))

    async def destroy(self, uuid: str) -> None:
        self._ready()
        guest = self._guests.get(uuid)
        if guest is None:
            return
        async with guest.lock:  # a spawn in progress finishes (or fails) first
            if self._guests.get(uuid) is guest:
                await self._remove(guest)
                del self._guests[uuid]

    async def reboot(self, uuid: str, hard: bool) -> None:
        async with self._operate(uuid, "hard reboot" if hard else "soft reboot") as (guest, state):
            if hard:
                await self._reset(guest, state)
            else:
                await self._soft_reboot(guest)

    async def power_off(self, uuid: str, timeout: float = 0) -> None:
        async with self._operate(uuid, "power_off") as (guest, state):
            await self._stop(guest, timeout if state == PowerState.RUNNING else 0)
            guest.paths.suspend_state.unlink(missing_ok=True)  # a suspended guest's memory goes

    async def power_on(self, uuid: str) -> None:
        async with self._operate(uuid, "power_on") as (guest, _state):
            await self._stop(guest, 0)  # a crashed QEMU may still be there
            await self._start(guest)

    # Optional operations. Resize, cold migration and rescue are in their own
    # modules, whose functions are these methods as they are.

    resize = resize_ops.resize
    prepare_migration = resize_ops.prepare_migration
    migrate_disk_and_power_off = resize_ops.migrate_disk_and_power_off
    finish_migration = resize_ops.finish_migration
    confirm_migration = resize_ops.confirm_migration
    finish_revert_migration = resize_ops.finish_revert_migration
    rescue = rescue_ops.rescue
    unrescue = rescue_ops.unrescue
    rebuild = rescue_ops.rebuild

    async def pause(self, uuid: str) -> None:
        self.check_capability("pause")
        async with self._operate(uuid, "pause") as (guest, _state):
            await qmp.execute(guest.paths.qmp, "stop")

    async def unpause(self, uuid: str) -> None:
        self.check_capability("pause")
        async with self._operate(uuid, "unpause") as (guest, _state):
            await qmp.execute(guest.paths.qmp, "cont")

    async def suspend(self, uuid: str) -> None:
        """The guest's memory and devices saved to a file (QEMU's migration
        stream), then QEMU quits: a suspended guest holds no host memory."""
        self.check_capability("suspend")
        async with self._operate(uuid, "suspend") as (guest, _state):
            paths = guest.paths
            partial = paths.suspend_state.with_name("suspend.state.partial")
            async with qmp.connect(paths.qmp) as monitor:
                await monitor.execute("stop")
                try:
                    await monitor.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(partial))}"})
                    await _wait_migration(monitor, f"suspending instance {uuid}")
                except DriverError:
                    partial.unlink(missing_ok=True)
                    await monitor.execute("cont")
                    raise
            os.replace(partial, paths.suspend_state)
            await self._stop(guest, 0)

    async def resume(self, uuid: str) -> None:
        """A new QEMU (``-incoming defer``) loads the saved state and runs on."""
        self.check_capability("suspend")
        async with self._operate(uuid, "resume") as (guest, _state):
            paths = guest.paths
            await self._start(guest, incoming=True)
            try:
                async with qmp.connect(paths.qmp) as monitor:
                    await monitor.execute("migrate-incoming",
                                          {"uri": f"exec:cat {shlex.quote(str(paths.suspend_state))}"})
                    # The state was saved paused (stopped first, so that it
                    # is consistent), and so it loads paused.
                    if await _loaded(monitor, f"resuming instance {uuid}") != "running":
                        await monitor.execute("cont")
            except DriverError:
                await self._stop(guest, 0)  # still suspended: the state file stays
                raise
            paths.suspend_state.unlink()

    async def snapshot(self, uuid: str) -> AsyncIterator[bytes]:
        """The root disk flattened into one qcow2 (base and overlay). A
        running guest is paused for the copy: ``stop`` flushes QEMU's
        caches, so the file on disk is consistent while it is read."""
        self.check_capability("snapshot")
        async with self._operate(uuid, "snapshot") as (guest, state):
            rescue_ops.refuse_rescued(guest.paths, uuid, "snapshot")
            target = guest.paths.directory / f"snapshot-{os.urandom(6).hex()}.qcow2"
            paused_here = state == PowerState.RUNNING
            if paused_here:
                await qmp.execute(guest.paths.qmp, "stop")
            try:
                # -U: the running QEMU holds the image's lock; it is stopped.
                await run(self.options.qemu_img, "convert", "-U", "-f", "qcow2", "-O", "qcow2",
                          str(guest.paths.disk), str(target))
                data = target.open("rb")
            finally:
                target.unlink(missing_ok=True)  # the open file lives on until streamed
                if paused_here:
                    await qmp.execute(guest.paths.qmp, "cont")
        return stream_file(data)

    async def console_output(self, uuid: str, length: int | None = None) -> str:
        self.check_capability("console_output")
        if length is not None and length < 0:
            raise errors.Invalid("the console length must not be negative")
        guest = self._guest(uuid)
        return await asyncio.to_thread(console.read, guest.paths.console, self.options.console_bytes, length)

    async def attach_volume(self, uuid: str, connection_info: dict[str, Any], mountpoint: str) -> None:
        self.check_capability("attach_volume")
        async with self._operate(uuid, "attach_volume") as (guest, state):
            await volumes.attach(guest.paths, uuid, state, connection_info, mountpoint)

    async def detach_volume(self, uuid: str, mountpoint: str) -> None:
        self.check_capability("attach_volume")
        async with self._operate(uuid, "detach_volume") as (guest, state):
            await volumes.detach(guest.paths, uuid, state, mountpoint, self.options.detach_timeout)

    async def attach_interface(self, uuid: str, vif: dict[str, Any]) -> None:
        self.check_capability("attach_interface")
        async with self._operate(uuid, "attach_interface") as (guest, state):
            await interfaces.attach(guest.paths, guest.spec, state, vif, self.options.user_network)

    async def detach_interface(self, uuid: str, vif_id: str) -> None:
        self.check_capability("attach_interface")
        async with self._operate(uuid, "detach_interface") as (guest, state):
            await interfaces.detach(guest.paths, guest.spec, state, vif_id, self.options.detach_timeout)

    async def get_vnc_console(self, uuid: str) -> ConsoleEndpoint:
        self.check_capability("vnc_console")
        if not self.options.vnc:
            raise ConsoleUnavailable("Unavailable console type vnc.", instance=uuid, console_type="vnc")
        return await self._console(uuid, "vnc")

    async def get_serial_console(self, uuid: str) -> ConsoleEndpoint:
        self.check_capability("serial_console")
        return await self._console(uuid, "serial")

    async def _console(self, uuid: str, protocol: str) -> ConsoleEndpoint:
        async with self._operate(uuid, f"{protocol}_console") as (guest, _state):
            socket = guest.paths.vnc if protocol == "vnc" else guest.paths.serial
            if not socket.exists():  # a QEMU started without it (before it existed, or vnc off then)
                raise ConsoleUnavailable(f"Unavailable console type {protocol}.", instance=uuid,
                                         console_type=protocol)
            return ConsoleEndpoint(protocol, path=str(socket))

    # Helpers.

    def _ready(self) -> str:
        if self.host is None:
            raise errors.BadState("the qemu driver has not been initialised: call init_host first")
        return self.host

    def _guest(self, uuid: str) -> QemuGuest:
        self._ready()
        guest = self._guests.get(uuid)
        if guest is None or guest.building:
            raise InstanceNotFound(f"instance {uuid} is not on host {self.host}", instance=uuid, host=self.host)
        return guest

    @contextlib.asynccontextmanager
    async def _operate(self, uuid: str, operation: str) -> AsyncIterator[tuple[QemuGuest, PowerState]]:
        """Hold the guest for one operation after checking its power state."""
        guest = self._guest(uuid)
        async with guest.lock:
            if self._guests.get(uuid) is not guest:  # destroyed while we waited
                raise InstanceNotFound(f"instance {uuid} is not on host {self.host}", instance=uuid, host=self.host)
            state, _pid = await self._power_state(guest)
            check_power_state(operation, uuid, state)
            yield guest, state

    async def _power_state(self, guest: QemuGuest) -> tuple[PowerState, int | None]:
        pid = process.guest_pid(guest.paths.pidfile, guest.spec.uuid)
        if pid is None:
            return self._stopped_state(guest), None
        try:
            status = await qmp.execute(guest.paths.qmp, "query-status", timeout=10)
        except qmp.MonitorUnavailable:
            if process.guest_pid(guest.paths.pidfile, guest.spec.uuid) is None:
                return self._stopped_state(guest), None  # it exited as we asked
            return PowerState.NOSTATE, pid
        return RUN_STATES.get(status["status"], PowerState.PAUSED), pid

    @staticmethod
    def _stopped_state(guest: QemuGuest) -> PowerState:
        return PowerState.SUSPENDED if guest.paths.suspend_state.exists() else PowerState.SHUTDOWN

    def _check_room(self, spec: InstanceSpec, replacing: str | None = None) -> None:
        others = [g.spec for u, g in self._guests.items() if u != replacing] + resize_ops.kept_specs(self.state_dir)
        free_mb = self._memory_mb() - sum(s.memory_mb for s in others)
        free_gb = self._disk_gb() - sum(s.disk_gb for s in others)
        short = []
        if spec.memory_mb > free_mb:
            short.append(f"{spec.memory_mb} MB of memory ({free_mb} MB free)")
        if spec.disk_gb > free_gb:
            short.append(f"{spec.disk_gb} GB of disk ({free_gb} GB free)")
        if short:
            raise InsufficientResources(f"host {self.host} has no room for instance {spec.uuid}: it needs "
                                        + " and ".join(short), instance=spec.uuid, host=self.host)

    def _config(self, guest: QemuGuest, incoming: bool = False) -> GuestConfig:
        assert self.accelerator is not None
        spec = guest.spec
        return GuestConfig(
            uuid=spec.uuid, name=spec.name, vcpus=spec.vcpus, memory_mb=spec.memory_mb, paths=guest.paths,
            accelerator=self.accelerator.accelerator, ephemeral=bool(spec.ephemeral_gb),
            config_drive=spec.config_drive, vnc=self.options.vnc, rescue=rescue_ops.rescued(guest.paths),
            port_devices=volumes.port_devices(guest.paths)
            + interfaces.port_devices(interfaces.current(guest.paths, spec), self.options.user_network),
            pcie_ports=self.options.pcie_ports, binary=self.options.binary, incoming=incoming)

    async def _start(self, guest: QemuGuest, incoming: bool = False) -> None:
        """Start QEMU (it daemonizes once the guest is set up) and wait until
        QMP reports it running (or, ``incoming``, waiting for its state)."""
        paths = guest.paths
        for stale in (paths.qmp, paths.vnc, paths.serial, paths.pidfile):
            stale.unlink(missing_ok=True)
        try:
            spec = guest.spec
            group = await asyncio.to_thread(self.cgroups.prepare, spec.uuid, spec.vcpus, spec.memory_mb,
                                            spec.extra_specs, paths.directory)
            await interfaces.plug_all(interfaces.current(paths, spec), self.options.user_network)
            command = command_line(self._config(guest, incoming))
            await process.start_daemon(group.wrap(command) if group else command)
        except SpawnFailed as exc:
            raise SpawnFailed(f"QEMU did not start instance {guest.spec.uuid}: {exc.message}",
                              instance=guest.spec.uuid) from None
        status = await qmp.execute(paths.qmp, "query-status")
        if status["status"] != ("inmigrate" if incoming else "running"):
            raise SpawnFailed(f"QEMU started instance {guest.spec.uuid} but it is {status['status']}",
                              instance=guest.spec.uuid)

    async def _stop(self, guest: QemuGuest, timeout: float) -> None:
        """Ask the guest to power off (ACPI) and give it ``timeout`` seconds,
        then quit QEMU; returns once the process is gone."""
        paths, uuid = guest.paths, guest.spec.uuid
        if process.guest_pid(paths.pidfile, uuid) is None:
            return
        if timeout > 0:
            with contextlib.suppress(DriverError):
                await qmp.execute(paths.qmp, "system_powerdown", timeout=5)
                if await process.wait_gone(paths.pidfile, uuid, timeout):
                    return
        with contextlib.suppress(DriverError):
            await qmp.execute(paths.qmp, "quit", timeout=5)
        if not await process.wait_gone(paths.pidfile, uuid, 10):
            await process.kill(paths.pidfile, uuid)

    async def _reset(self, guest: QemuGuest, state: PowerState) -> None:
        if state in (PowerState.SHUTDOWN, PowerState.NOSTATE, PowerState.SUSPENDED):
            await self._stop(guest, 0)
            guest.paths.suspend_state.unlink(missing_ok=True)  # a suspended guest boots afresh
            await self._start(guest)
            return
        async with qmp.connect(guest.paths.qmp) as monitor:
            await monitor.execute("system_reset")
            if await monitor.status() != "running":
                await monitor.execute("cont")

    async def _soft_reboot(self, guest: QemuGuest) -> None:
        """Ctrl-Alt-Del, as a person at the console would; a guest that does
        not restart within soft_reboot_timeout is reset."""
        timeout = self.options.soft_reboot_timeout
        deadline = asyncio.get_running_loop().time() + timeout
        event = None
        async with qmp.connect(guest.paths.qmp) as monitor:
            with monitor.events("RESET", "SHUTDOWN") as events:
                # Pressed again every few seconds: a guest still booting has
                # no keyboard driver yet and loses the first press.
                while event is None and (left := deadline - asyncio.get_running_loop().time()) > 0:
                    await monitor.execute("send-key", qmp.key_sequence("ctrl", "alt", "delete"))
                    event = await qmp.wait_event(events, min(SOFT_REBOOT_REPEAT, left))
        if event is not None and event["event"] == "RESET":
            return
        state, _pid = await self._power_state(guest)
        if event is None:
            LOG.warning("instance %s did not restart within %.0fs of Ctrl-Alt-Del; resetting it",
                        guest.spec.uuid, timeout)
        await self._reset(guest, state)

    async def _remove(self, guest: QemuGuest) -> None:
        """Stop its QEMU, delete its taps and its directory."""
        await self._stop(guest, 0)
        with contextlib.suppress(errors.Invalid):  # a spec whose vifs were refused made no taps
            await interfaces.unplug_all(interfaces.current(guest.paths, guest.spec))
        await asyncio.to_thread(self.cgroups.release, guest.spec.uuid, guest.paths.directory)
        await asyncio.to_thread(shutil.rmtree, guest.paths.directory, True)

    async def _rotate_consoles(self) -> None:
        while True:
            await asyncio.sleep(CONSOLE_ROTATE_INTERVAL)
            for guest in list(self._guests.values()):
                try:
                    await asyncio.to_thread(console.rotate, guest.paths.console, self.options.console_bytes)
                except OSError as exc:
                    LOG.warning("rotating the console log of %s failed: %s", guest.spec.uuid, exc)




async def _wait_migration(monitor: qmp.Monitor, what: str, timeout: float = 300.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        info = await monitor.execute("query-migrate")
        status = info.get("status")
        if status == "completed":
            return
        if status in ("failed", "cancelled") or asyncio.get_running_loop().time() > deadline:
            raise DriverError(f"{what} failed: migration {status}: {info.get('error-desc', 'timed out')}")
        await asyncio.sleep(0.05)


async def _loaded(monitor: qmp.Monitor, what: str, timeout: float = 300.0) -> str:
    """The run state once an incoming migration has finished loading."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (status := await monitor.status()) in ("inmigrate", "restore-vm"):
        if asyncio.get_running_loop().time() > deadline:
            raise DriverError(f"{what} failed: the state did not load in {timeout:.0f}s")
        await asyncio.sleep(0.05)
    if status not in ("running", "paused"):
        raise DriverError(f"{what} failed: the guest is {status}")
    return status


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
