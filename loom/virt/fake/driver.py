"""The fake hypervisor (see the package's docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid as uuid_module
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from loom import errors
from loom.virt.driver import (
    Capabilities,
    ConsoleEndpoint,
    DriverError,
    HostResources,
    ImageSource,
    InstanceExists,
    InstanceInfo,
    InstanceInvalidState,
    InstanceNotFound,
    InstanceSpec,
    InsufficientResources,
    LiveMigrationAborted,
    MigrationProgress,
    PowerState,
    ProgressCallback,
    SpawnFailed,
    VirtDriver,
    check_power_state,
)
from loom.virt.fake.consoles import FakeConsoles
from loom.virt.fake.guest import (
    FakeGuest,
    _disk_image,
    _refuse_rescued,
    _refuse_shrinking,
    _stream,
)
from loom.virt.fake.images import GIB, _cached_image, _read_image
from loom.virt.fake.storage import KEPT_PREFIX, _claim_directory, _load, _write_atomically

PROGRESS_INTERVAL = 0.1  # seconds between a live migration's progress reports

SpawnFailure = int | bool | Callable[[InstanceSpec], bool] | None


class FakeDriver(VirtDriver):
    """Every capability, real state, honest capacity; see the module doc."""

    capabilities = Capabilities.every()
    hosts: ClassVar[dict[str, FakeDriver]] = {}
    # Disks handed over by migrate_disk_and_power_off, by handle: a guest's state.
    disks_in_flight: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, *, host: str | None = None, vcpus: int = 16, memory_mb: int = 32768, disk_gb: int = 500,
                 spawn_delay: float = 0.0, op_delay: float = 0.0, fail_spawn: SpawnFailure = None,
                 state_path: Path | None = None, hypervisor_hostname: str | None = None,
                 clock: Callable[[], float] = time.time, live_migration_time: float = 0.0) -> None:
        if min(vcpus, memory_mb, disk_gb) <= 0:
            raise ValueError("a fake host needs some vcpus, memory and disk")
        self.vcpus, self.memory_mb, self.disk_gb = vcpus, memory_mb, disk_gb
        self.spawn_delay, self.op_delay = spawn_delay, op_delay
        self.fail_spawn = fail_spawn
        self.live_migration_time = live_migration_time
        self.state_path = state_path
        self.hypervisor_hostname = hypervisor_hostname
        self.clock = clock
        self.host = host
        self._initialised = False
        self._guests: dict[str, FakeGuest] = {}  # building ones too: they hold resources
        self._incoming: dict[str, InstanceSpec] = {}  # claimed by pre_live_migration
        self._outgoing: dict[str, _Outgoing] = {}  # live migrations under way from here
        # Source copies of moved guests, kept (and counted) until confirmed or reverted.
        self._kept: dict[str, FakeGuest] = {}
        self.fail_operations: set[str] = set()
        # Images read once, by id (an active image's data never changes):
        # as a real host caches its base images, later spawns do not read them.
        self._images: dict[str, tuple[str | None, int]] = {}
        self._consoles = FakeConsoles(self._console_lines)

    @classmethod
    def for_host(cls, host: str) -> FakeDriver:
        """The fake hypervisor of ``host`` in this process."""
        try:
            return cls.hosts[host]
        except KeyError:
            raise errors.NotFound(f"no fake hypervisor runs host {host!r} in this process") from None

    def guest(self, uuid: str) -> FakeGuest:
        """The guest's live state, for tests to look into."""
        return self._guest(uuid)

    # The host.

    async def init_host(self, host: str) -> None:
        if self.host is not None and self.host != host:
            raise errors.BadState(f"this fake hypervisor runs host {self.host}, not {host}")
        if not self._initialised and self.state_path is not None:
            self._guests = await asyncio.to_thread(_load, self.state_path, host)
            self._kept = await asyncio.to_thread(_load, self.state_path, host, KEPT_PREFIX)
            _claim_directory(self.state_path, host)
        self.host, self._initialised = host, True
        FakeDriver.hosts[host] = self

    async def cleanup(self) -> None:
        await self._consoles.close()
        if self.host is not None and FakeDriver.hosts.get(self.host) is self:
            del FakeDriver.hosts[self.host]

    async def host_resources(self) -> HostResources:
        host = self._ready()
        specs = [g.spec for g in [*self._guests.values(), *self._kept.values()]] + list(self._incoming.values())
        return HostResources(
            hostname=host, vcpus=self.vcpus, memory_mb=self.memory_mb, local_gb=self.disk_gb,
            vcpus_used=sum(s.vcpus for s in specs), memory_mb_used=sum(s.memory_mb for s in specs),
            local_gb_used=sum(s.disk_gb for s in specs), hypervisor_type="fake", hypervisor_version=1000,
            hypervisor_hostname=self.hypervisor_hostname or host,
            cpu_info={"arch": "x86_64", "model": "fake", "vendor": "loom", "features": [],
                      "topology": {"sockets": 1, "cores": self.vcpus, "threads": 1}})

    async def list_instances(self) -> list[str]:
        self._ready()
        return sorted(uuid for uuid, guest in self._guests.items() if not guest.building)

    async def get_info(self, uuid: str) -> InstanceInfo:
        guest, now = self._guest(uuid), self.clock()
        awake = guest.power_state in (PowerState.RUNNING, PowerState.PAUSED, PowerState.SUSPENDED)
        uptime = max(0.0, now - guest.booted_at) if awake else 0.0
        return InstanceInfo(power_state=guest.power_state, vcpus=guest.spec.vcpus, memory_mb=guest.spec.memory_mb,
                            cpu_time_ns=guest.cpu_time_ns(now), uptime_s=uptime)

    # The lifecycle.

    async def spawn(self, spec: InstanceSpec, open_image: ImageSource | None = None) -> None:
        self._ready()
        if spec.uuid in self._guests or spec.uuid in self._incoming:
            raise InstanceExists(f"instance {spec.uuid} is already on host {self.host}", instance=spec.uuid)
        self._check_room(spec)
        guest = FakeGuest(spec=spec, building=True)
        self._guests[spec.uuid] = guest  # it holds its resources while it builds
        try:
            async with guest.lock:
                image = await self._image(open_image, spec)
                await _sleep(self.spawn_delay)
                if self._inject_failure(spec):
                    raise SpawnFailed(f"injected failure: spawning instance {spec.uuid} on host {self.host}",
                                      instance=spec.uuid)
                guest.image_sha256, guest.image_size = image
                guest.interfaces = {vif["id"]: vif for vif in spec.networks if "id" in vif}
                guest.boot(self.clock())
                guest.building = False
        except BaseException:
            if self._guests.get(spec.uuid) is guest:
                del self._guests[spec.uuid]  # nothing left behind
            raise
        self._persist(spec.uuid)

    async def destroy(self, uuid: str) -> None:
        """The guest only: a source copy kept by a move stays (see confirm_migration)."""
        self._ready()
        self._inject("destroy", uuid)
        guest = self._guests.get(uuid)
        if guest is None:
            return
        async with guest.lock:  # a spawn in progress finishes (or fails) first
            if self._guests.get(uuid) is guest:
                await _sleep(self.op_delay)
                del self._guests[uuid]
        self._persist(uuid)

    async def reboot(self, uuid: str, hard: bool) -> None:
        async with self._operate(uuid, "hard reboot" if hard else "soft reboot") as guest:
            if not hard:
                guest.log("loom-fake-guest: reboot: the system is going down")
            guest.boot(self.clock())

    async def power_off(self, uuid: str, timeout: float = 0) -> None:
        async with self._operate(uuid, "power_off") as guest:
            if guest.power_state == PowerState.RUNNING and timeout > 0:
                guest.log("loom-fake-guest: power button pressed: the system is going down")
            guest.set_power(PowerState.SHUTDOWN, self.clock())

    async def power_on(self, uuid: str) -> None:
        async with self._operate(uuid, "power_on") as guest:
            guest.boot(self.clock())

    async def rebuild(self, spec: InstanceSpec, open_image: ImageSource | None = None) -> None:
        """In place: a failed image read leaves the instance as it was."""
        async with self._operate(spec.uuid, "rebuild") as guest:
            _refuse_rescued(guest, "rebuild")
            if (spec.vcpus, spec.memory_mb, spec.disk_gb) != (guest.spec.vcpus, guest.spec.memory_mb,
                                                                guest.spec.disk_gb):
                raise errors.Invalid(f"rebuild of {spec.uuid} keeps its flavor; resize changes it")
            image = await self._image(open_image, spec)
            if guest.power_state == PowerState.RUNNING:
                guest.log("loom-fake-guest: rebuild: the system is going down")
            guest.spec = spec
            guest.image_sha256, guest.image_size = image
            guest.boot(self.clock())

    # Optional operations: all supported, each checking the capability first
    # so that a subclass declaring fewer refuses the rest.

    async def pause(self, uuid: str) -> None:
        await self._set_power(uuid, "pause", PowerState.PAUSED, capability="pause")

    async def unpause(self, uuid: str) -> None:
        await self._set_power(uuid, "unpause", PowerState.RUNNING, capability="pause")

    async def suspend(self, uuid: str) -> None:
        await self._set_power(uuid, "suspend", PowerState.SUSPENDED, capability="suspend")

    async def resume(self, uuid: str) -> None:
        await self._set_power(uuid, "resume", PowerState.RUNNING, capability="suspend")

    async def console_output(self, uuid: str, length: int | None = None) -> str:
        self.check_capability("console_output")
        if length is not None and length < 0:
            raise errors.Invalid("the console length must not be negative")
        lines = self._guest(uuid).console
        if length is not None:
            lines = lines[max(0, len(lines) - length):]
        return "".join(f"{line}\n" for line in lines)

    async def get_vnc_console(self, uuid: str) -> ConsoleEndpoint:
        return await self._console(uuid, "vnc")

    async def get_serial_console(self, uuid: str) -> ConsoleEndpoint:
        return await self._console(uuid, "serial")

    async def _console(self, uuid: str, protocol: str) -> ConsoleEndpoint:
        """A unix socket served here (loom.virt.fake_console)."""
        self.check_capability(f"{protocol}_console")
        check_power_state(f"{protocol}_console", uuid, self._guest(uuid).power_state)
        return ConsoleEndpoint(protocol, path=await self._consoles.socket_for(uuid, protocol))

    def _console_lines(self, uuid: str) -> list[str] | None:
        guest = self._guests.get(uuid)
        if guest is None or guest.building or guest.power_state not in (PowerState.RUNNING, PowerState.PAUSED):
            return None
        return guest.console

    async def snapshot(self, uuid: str) -> AsyncIterator[bytes]:
        async with self._operate(uuid, "snapshot", capability="snapshot", changes=False) as guest:
            _refuse_rescued(guest, "snapshot")
            data = _disk_image(guest)
        return _stream(data)

    async def resize(self, uuid: str, spec: InstanceSpec) -> None:
        async with self._operate(uuid, "resize", capability="resize") as guest:
            _refuse_rescued(guest, "resize")
            if spec.uuid != uuid:
                raise errors.Invalid(f"cannot resize instance {uuid} to the spec of {spec.uuid}")
            _refuse_shrinking(guest, spec)
            self._check_room(spec, replacing=uuid)
            guest.spec = spec
            if guest.power_state == PowerState.RUNNING:
                guest.log("loom-fake-guest: resize: the system is going down")
                guest.boot(self.clock())

    async def rescue(self, uuid: str, open_image: ImageSource | None = None) -> None:
        async with self._operate(uuid, "rescue", capability="rescue") as guest:
            _refuse_rescued(guest, "rescue")
            await _read_image(open_image, guest.spec, limit_gb=0)
            guest.rescued = True
            guest.boot(self.clock())

    async def unrescue(self, uuid: str) -> None:
        async with self._operate(uuid, "unrescue", capability="rescue") as guest:
            if not guest.rescued:
                raise InstanceInvalidState(f"cannot unrescue instance {uuid}: it is not in rescue", instance=uuid)
            guest.rescued = False
            guest.boot(self.clock())

    async def change_password(self, uuid: str, password: str) -> None:
        async with self._operate(uuid, "change_password", capability="change_password") as guest:
            if not password:
                raise errors.Invalid("the new password must not be empty")
            guest.password_changes += 1  # the password itself is not kept

    async def trigger_crash_dump(self, uuid: str) -> None:
        async with self._operate(uuid, "trigger_crash_dump", capability="trigger_crash_dump") as guest:
            guest.log("loom-fake-guest: NMI received: Kernel panic - not syncing: NMI: Not continuing")
            guest.set_power(PowerState.CRASHED, self.clock())

    async def attach_volume(self, uuid: str, connection_info: dict[str, Any], mountpoint: str) -> None:
        async with self._operate(uuid, "attach_volume", capability="attach_volume") as guest:
            if "driver_volume_type" not in connection_info:
                raise errors.Invalid("the volume's connection_info has no driver_volume_type")
            if mountpoint in guest.volumes:
                raise errors.Conflict(f"{mountpoint} of instance {uuid} is in use", instance=uuid)
            guest.volumes[mountpoint] = connection_info

    async def detach_volume(self, uuid: str, mountpoint: str) -> None:
        async with self._operate(uuid, "detach_volume", capability="attach_volume") as guest:
            if guest.volumes.pop(mountpoint, None) is None:
                raise errors.NotFound(f"no volume is attached at {mountpoint} of instance {uuid}", instance=uuid)

    async def attach_interface(self, uuid: str, vif: dict[str, Any]) -> None:
        async with self._operate(uuid, "attach_interface", capability="attach_interface") as guest:
            if not vif.get("id") or not vif.get("mac"):
                raise errors.Invalid("an interface needs an id and a mac")
            if vif["id"] in guest.interfaces:
                raise errors.Conflict(f"interface {vif['id']} is plugged into instance {uuid} already", instance=uuid)
            guest.interfaces[vif["id"]] = vif

    async def detach_interface(self, uuid: str, vif_id: str) -> None:
        async with self._operate(uuid, "detach_interface", capability="attach_interface") as guest:
            if guest.interfaces.pop(vif_id, None) is None:
                raise errors.NotFound(f"interface {vif_id} is not plugged into instance {uuid}", instance=uuid)

    async def pre_live_migration(self, spec: InstanceSpec) -> dict[str, Any]:
        self.check_capability("live_migration")
        host = self._ready()
        if spec.uuid in self._guests or spec.uuid in self._incoming:
            raise InstanceExists(f"instance {spec.uuid} is already on host {host}", instance=spec.uuid)
        self._check_room(spec)
        self._incoming[spec.uuid] = spec
        return {"host": host, "uri": f"fake://{host}"}

    async def live_migration(self, uuid: str, dest_host: str, migrate_data: dict[str, Any],
                             progress: ProgressCallback | None = None) -> None:
        async with self._operate(uuid, "live_migration", capability="live_migration") as guest:
            _refuse_rescued(guest, "live migrate")
            dest = FakeDriver.hosts.get(dest_host)
            if dest is None or dest is self:
                raise DriverError(f"cannot live migrate instance {uuid} to {dest_host}: "
                                  "no other fake hypervisor in this process runs that host", instance=uuid)
            if uuid not in dest._incoming:
                raise InstanceInvalidState(f"host {dest_host} is not prepared for instance {uuid}: "
                                           "call pre_live_migration there first", instance=uuid)
            job = self._outgoing[uuid] = _Outgoing()
            try:
                await self._copy(guest.spec, bool(migrate_data.get("block_migration")), job, progress)
            finally:
                del self._outgoing[uuid]
            self._inject("live_migration", uuid)
            if dest._incoming.pop(uuid, None) is None:
                raise InstanceInvalidState(f"host {dest_host} gave up waiting for instance {uuid}", instance=uuid)
            dest._guests[uuid] = dataclasses.replace(guest, lock=asyncio.Lock())
            del self._guests[uuid]
        dest._persist(uuid)
        self._persist(uuid)

    async def _copy(self, spec: InstanceSpec, with_disks: bool, job: _Outgoing,
                    progress: ProgressCallback | None) -> None:
        """Copy memory (and disks) for ``live_migration_time`` seconds,
        reporting progress, until done, aborted or forced to finish."""
        memory, disk = spec.memory_mb << 20, (spec.disk_gb * GIB if with_disks else 0)
        loop = asyncio.get_running_loop()
        started, duration = loop.time(), self.live_migration_time
        while True:
            done = 1.0 if job.forced or duration <= 0 else min(1.0, (loop.time() - started) / duration)
            if progress is not None:
                moved_memory, moved_disk = int(memory * done), int(disk * done)
                await progress(MigrationProgress(memory, moved_memory, memory - moved_memory,
                                                 disk, moved_disk, disk - moved_disk))
            if job.aborted:
                raise LiveMigrationAborted(f"the live migration of instance {spec.uuid} was aborted",
                                           instance=spec.uuid)
            if done >= 1.0:
                return
            job.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.wake.wait(), min(PROGRESS_INTERVAL, duration))

    async def live_migration_abort(self, uuid: str) -> None:
        self._outgoing_job(uuid).aborted = True
        self._outgoing_job(uuid).wake.set()

    async def live_migration_force_complete(self, uuid: str) -> None:
        self._outgoing_job(uuid).forced = True
        self._outgoing_job(uuid).wake.set()

    def _outgoing_job(self, uuid: str) -> _Outgoing:
        self.check_capability("live_migration")
        job = self._outgoing.get(uuid)
        if job is None:
            raise InstanceInvalidState(f"no live migration of instance {uuid} is under way on host {self.host}",
                                       instance=uuid)
        return job

    async def rollback_live_migration_at_destination(self, uuid: str) -> None:
        self.check_capability("live_migration")
        self._incoming.pop(uuid, None)

    # Cold migration and resize.

    async def prepare_migration(self, spec: InstanceSpec) -> None:
        self.check_capability("resize")
        self._ready()
        self._inject("prepare_migration", spec.uuid)
        self._check_room(spec)

    async def migrate_disk_and_power_off(self, uuid: str, dest_host: str, spec: InstanceSpec) -> dict[str, Any]:
        async with self._operate(uuid, "resize", capability="resize") as guest:
            _refuse_rescued(guest, "migrate")
            if spec.uuid != uuid:
                raise errors.Invalid(f"cannot migrate instance {uuid} with the spec of {spec.uuid}")
            _refuse_shrinking(guest, spec)
            if dest_host not in FakeDriver.hosts:
                raise DriverError(f"cannot migrate instance {uuid} to {dest_host}: no fake hypervisor in this "
                                  "process runs that host", instance=uuid)
            if guest.power_state == PowerState.RUNNING:
                guest.log("loom-fake-guest: migration: the system is going down")
            guest.set_power(PowerState.SHUTDOWN, self.clock())
            if "migrate_disk_and_power_off" in self.fail_operations:
                self._persist(uuid)  # the guest stopped; the copy of its disk failed
                self._inject("migrate_disk_and_power_off", uuid)
            handle = uuid_module.uuid4().hex
            FakeDriver.disks_in_flight[handle] = guest.to_dict()
            self._kept[uuid] = self._guests.pop(uuid)
        return {"handle": handle, "source_host": self.host}

    async def finish_migration(self, spec: InstanceSpec, disk_info: dict[str, Any], power_on: bool) -> None:
        self.check_capability("resize")
        host = self._ready()
        if spec.uuid in self._guests:
            raise InstanceExists(f"instance {spec.uuid} is already on host {host}", instance=spec.uuid)
        handle = str(disk_info.get("handle"))
        data = FakeDriver.disks_in_flight.get(handle)
        if data is None:
            raise DriverError(f"no disk of instance {spec.uuid} was handed over as {handle}", instance=spec.uuid)
        self._check_room(spec)
        await _sleep(self.op_delay)
        guest = FakeGuest.from_dict({**data, "spec": dataclasses.asdict(spec)})
        guest.set_power(PowerState.SHUTDOWN, self.clock())
        self._guests[spec.uuid] = guest
        del FakeDriver.disks_in_flight[handle]
        self._persist(spec.uuid)
        self._inject("finish_migration", spec.uuid)  # the disk arrived; the guest did not start
        if power_on:
            guest.boot(self.clock())
            self._persist(spec.uuid)

    async def confirm_migration(self, uuid: str) -> None:
        self.check_capability("resize")
        self._ready()
        self._inject("confirm_migration", uuid)
        if self._kept.pop(uuid, None) is not None:
            self._persist(uuid)

    async def finish_revert_migration(self, spec: InstanceSpec, power_on: bool) -> None:
        self.check_capability("resize")
        host = self._ready()
        kept = self._kept.get(spec.uuid)
        if kept is not None:
            if spec.uuid in self._guests:
                raise InstanceExists(f"instance {spec.uuid} still runs on host {host}: destroy that copy before "
                                     "reverting to the kept one", instance=spec.uuid)
            self._guests[spec.uuid] = self._kept.pop(spec.uuid)
        guest = self._guest(spec.uuid)  # NotFound: neither kept nor already back
        await _sleep(self.op_delay)
        guest.spec = spec
        self._persist(spec.uuid)
        self._inject("finish_revert_migration", spec.uuid)  # back on its disk; it did not start
        if power_on and guest.power_state != PowerState.RUNNING:
            guest.boot(self.clock())
            self._persist(spec.uuid)

    # Helpers.

    async def _image(self, open_image: ImageSource | None, spec: InstanceSpec) -> tuple[str | None, int]:
        return await _cached_image(self._images, open_image, spec)

    def _ready(self) -> str:
        if not self._initialised or self.host is None:
            raise errors.BadState("the fake hypervisor has not been initialised: call init_host first")
        return self.host

    def _guest(self, uuid: str) -> FakeGuest:
        self._ready()
        guest = self._guests.get(uuid)
        if guest is None or guest.building:
            raise InstanceNotFound(f"instance {uuid} is not on host {self.host}", instance=uuid, host=self.host)
        return guest

    @contextlib.asynccontextmanager
    async def _operate(self, uuid: str, operation: str, *, capability: str | None = None,
                       changes: bool = True) -> AsyncIterator[FakeGuest]:
        """Hold the guest for one operation: check the capability and the
        power state, take ``op_delay``, let the caller change it, save."""
        if capability is not None:
            self.check_capability(capability)
        guest = self._guest(uuid)
        async with guest.lock:
            if self._guests.get(uuid) is not guest:  # destroyed while we waited
                raise InstanceNotFound(f"instance {uuid} is not on host {self.host}", instance=uuid, host=self.host)
            check_power_state(operation, uuid, guest.power_state)
            await _sleep(self.op_delay)
            yield guest
        if changes:
            self._persist(uuid)

    async def _set_power(self, uuid: str, operation: str, state: PowerState, *, capability: str) -> None:
        async with self._operate(uuid, operation, capability=capability) as guest:
            guest.set_power(state, self.clock())

    def _check_room(self, spec: InstanceSpec, *, replacing: str | None = None) -> None:
        """Refuse ``spec`` unless its memory and disk fit beside the other
        guests (building and incoming ones too)."""
        others = [g.spec for u, g in self._guests.items() if u != replacing]
        others += [g.spec for g in self._kept.values()]
        others += [s for u, s in self._incoming.items() if u != replacing]
        free_mb = self.memory_mb - sum(s.memory_mb for s in others)
        free_gb = self.disk_gb - sum(s.disk_gb for s in others)
        short = []
        if spec.memory_mb > free_mb:
            short.append(f"{spec.memory_mb} MB of memory ({free_mb} MB free)")
        if spec.disk_gb > free_gb:
            short.append(f"{spec.disk_gb} GB of disk ({free_gb} GB free)")
        if short:
            raise InsufficientResources(f"host {self.host} has no room for instance {spec.uuid}: it needs "
                                        + " and ".join(short), instance=spec.uuid, host=self.host)

    def _inject(self, operation: str, uuid: str) -> None:
        if operation in self.fail_operations:
            raise DriverError(f"injected failure: {operation} of instance {uuid} on host {self.host}",
                              instance=uuid, operation=operation)

    def _inject_failure(self, spec: InstanceSpec) -> bool:
        rule = self.fail_spawn
        if rule is None or isinstance(rule, bool):
            return bool(rule)
        if isinstance(rule, int):
            if rule <= 0:
                return False
            self.fail_spawn = rule - 1
            return True
        return bool(rule(spec))

    def _persist(self, *uuids: str) -> None:
        """Write each guest's state to its file, or remove the file of one
        that is gone. On the event loop: a small write costs less than a
        hop to a thread, and every change is on disk once it returns."""
        if self.state_path is None:
            return
        for uuid in uuids:
            guest = self._guests.get(uuid)
            path = self.state_path / f"{uuid}.json"
            if guest is None or guest.building:
                path.unlink(missing_ok=True)
            else:
                _write_atomically(path, json.dumps(guest.to_dict(), sort_keys=True))
            kept, kept_path = self._kept.get(uuid), self.state_path / f"{KEPT_PREFIX}{uuid}.json"
            if kept is None:
                kept_path.unlink(missing_ok=True)
            else:
                _write_atomically(kept_path, json.dumps(kept.to_dict(), sort_keys=True))


@dataclass
class _Outgoing:
    """A live migration under way from this host."""

    aborted: bool = False
    forced: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
