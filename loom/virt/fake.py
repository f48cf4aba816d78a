"""A hypervisor that keeps real state: the driver of ``loom up`` where QEMU
is absent, and the compute host of the functional tests.

Power states change only as a hypervisor's do (driver.ALLOWED_STATES),
memory and disk are accounted honestly against the host's (spawns that do
not fit are refused; vCPUs are only counted), and a guest prints to its
serial console on every boot, as a real one does::

    loom-fake-guest: booted <hostname> <uuid>

Its knobs are constructor arguments, so many fake hosts live in one process:

- ``vcpus``, ``memory_mb``, ``disk_gb``: the host's physical resources.
- ``spawn_delay``, ``op_delay``: seconds a spawn, or any other operation
  that changes a guest, takes.
- ``fail_spawn``: injected spawn failures (SpawnFailed, "injected failure"):
  an int fails the next N spawns, True fails every one, a predicate on the
  InstanceSpec fails those it accepts. A public attribute: change it any time.
- ``state_path``: a directory the guests are kept in (one small JSON file
  each, written when the guest changes), so that a new FakeDriver for the
  host (a restarted compute service) finds them running.
- ``host``: the host it will serve, if known when it is made; init_host
  must then name the same one.
- ``hypervisor_hostname``: defaults to the host.
- ``clock``: wall-clock seconds, from which uptime and CPU time derive.

``FakeDriver.hosts`` maps each initialised host to its driver (init_host
registers it, cleanup removes it): how tests reach the fake of a host, and
how live migration between fakes in one process hands a guest over.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from loom import errors
from loom.virt.driver import (
    Capabilities,
    DriverError,
    HostResources,
    ImageSource,
    InstanceExists,
    InstanceInfo,
    InstanceInvalidState,
    InstanceNotFound,
    InstanceSpec,
    InsufficientResources,
    PowerState,
    SpawnFailed,
    VirtDriver,
    check_power_state,
)

BOOT_MARKER = "loom-fake-guest: booted"
RESCUE_MARKER = "loom-fake-guest: rescue system booted"
CONSOLE_LINES = 1000  # a serial log is bounded: the oldest lines go
SNAPSHOT_SIZE = 64 << 10
CHUNK_SIZE = 16 << 10
CPU_LOAD = 0.05  # the share of each vCPU a running fake guest burns
GIB = 1 << 30

SpawnFailure = int | bool | Callable[[InstanceSpec], bool] | None


# In a state directory: the host whose guests it holds.
HOST_FILE = "host"


@dataclass
class FakeGuest:
    """One guest as the fake hypervisor holds it."""

    spec: InstanceSpec
    power_state: PowerState = PowerState.NOSTATE
    booted_at: float = 0.0
    cpu_ns: int = 0  # CPU time burned before ``running_since``
    running_since: float | None = None
    boots: int = 0
    rescued: bool = False
    image_sha256: str | None = None
    image_size: int = 0
    console: list[str] = field(default_factory=list)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # by mountpoint
    interfaces: dict[str, dict[str, Any]] = field(default_factory=dict)  # by vif id
    password_changes: int = 0
    building: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    def set_power(self, state: PowerState, now: float) -> None:
        self.cpu_ns = self.cpu_time_ns(now)
        self.running_since = now if state == PowerState.RUNNING else None
        self.power_state = state

    def cpu_time_ns(self, now: float) -> int:
        if self.running_since is None:
            return self.cpu_ns
        return self.cpu_ns + max(0, int((now - self.running_since) * self.spec.vcpus * CPU_LOAD * 1e9))

    def log(self, *lines: str) -> None:
        self.console.extend(lines)
        del self.console[:-CONSOLE_LINES]

    def boot(self, now: float) -> None:
        """Start the guest: from its disk, or the rescue system if rescued."""
        self.boots += 1
        self.booted_at = now
        self.set_power(PowerState.RUNNING, now)
        spec = self.spec
        self.log(f"loom-fake-guest: boot {self.boots} of {spec.hostname} ({spec.uuid}): "
                 f"{spec.vcpus} vcpus, {spec.memory_mb} MB")
        if self.rescued:
            self.log(f"{RESCUE_MARKER} for {spec.hostname} {spec.uuid}")
            return
        self.log(f"loom-fake-guest: metadata {json.dumps(spec.metadata, sort_keys=True)}")
        for index, vif in enumerate(self.interfaces.values()):
            self.log(f"loom-fake-guest: eth{index} {vif.get('mac')} {' '.join(map(str, vif.get('ips', [])))}")
        if spec.key_data:
            self.log("loom-fake-guest: ssh key installed")
        if spec.user_data:
            self.log("loom-fake-guest: user-data found")
        self.log(f"{BOOT_MARKER} {spec.hostname} {spec.uuid}")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("lock", "building")}
        return {**data, "spec": dataclasses.asdict(self.spec), "power_state": int(self.power_state)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FakeGuest:
        return cls(**{**data, "spec": InstanceSpec.from_dict(data["spec"]),
                      "power_state": PowerState(data["power_state"])})


class FakeDriver(VirtDriver):
    """Every capability, real state, honest capacity; see the module doc."""

    capabilities = Capabilities.every()
    hosts: ClassVar[dict[str, FakeDriver]] = {}

    def __init__(self, *, host: str | None = None, vcpus: int = 16, memory_mb: int = 32768, disk_gb: int = 500,
                 spawn_delay: float = 0.0, op_delay: float = 0.0, fail_spawn: SpawnFailure = None,
                 state_path: Path | None = None, hypervisor_hostname: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if min(vcpus, memory_mb, disk_gb) <= 0:
            raise ValueError("a fake host needs some vcpus, memory and disk")
        self.vcpus, self.memory_mb, self.disk_gb = vcpus, memory_mb, disk_gb
        self.spawn_delay, self.op_delay = spawn_delay, op_delay
        self.fail_spawn = fail_spawn
        self.state_path = state_path
        self.hypervisor_hostname = hypervisor_hostname
        self.clock = clock
        self.host = host
        self._initialised = False
        self._guests: dict[str, FakeGuest] = {}  # building ones too: they hold resources
        self._incoming: dict[str, InstanceSpec] = {}  # claimed by pre_live_migration

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
            _claim_directory(self.state_path, host)
        self.host, self._initialised = host, True
        FakeDriver.hosts[host] = self

    async def cleanup(self) -> None:
        if self.host is not None and FakeDriver.hosts.get(self.host) is self:
            del FakeDriver.hosts[self.host]

    async def host_resources(self) -> HostResources:
        host = self._ready()
        specs = [g.spec for g in self._guests.values()] + list(self._incoming.values())
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
                image = await _read_image(open_image, spec, limit_gb=spec.root_gb)
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
        self._ready()
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
            image = await _read_image(open_image, spec, limit_gb=spec.root_gb)
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
            if spec.root_gb < guest.spec.root_gb:
                raise errors.Invalid(f"cannot resize instance {uuid}: its root disk cannot shrink "
                                     f"from {guest.spec.root_gb} GB to {spec.root_gb} GB")
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

    async def live_migration(self, uuid: str, dest_host: str, migrate_data: dict[str, Any]) -> None:
        async with self._operate(uuid, "live_migration", capability="live_migration") as guest:
            _refuse_rescued(guest, "live migrate")
            dest = FakeDriver.hosts.get(dest_host)
            if dest is None or dest is self:
                raise DriverError(f"cannot live migrate instance {uuid} to {dest_host}: "
                                  "no other fake hypervisor in this process runs that host", instance=uuid)
            if dest._incoming.pop(uuid, None) is None:
                raise InstanceInvalidState(f"host {dest_host} is not prepared for instance {uuid}: "
                                           "call pre_live_migration there first", instance=uuid)
            dest._guests[uuid] = dataclasses.replace(guest, lock=asyncio.Lock())
            del self._guests[uuid]
        dest._persist(uuid)
        self._persist(uuid)

    async def rollback_live_migration_at_destination(self, uuid: str) -> None:
        self.check_capability("live_migration")
        self._incoming.pop(uuid, None)

    # Helpers.

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


def _refuse_rescued(guest: FakeGuest, operation: str) -> None:
    if guest.rescued:
        raise InstanceInvalidState(f"cannot {operation} instance {guest.spec.uuid}: it is in rescue",
                                   instance=guest.spec.uuid)


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


async def _read_image(open_image: ImageSource | None, spec: InstanceSpec, *,
                      limit_gb: int) -> tuple[str | None, int]:
    """Read the image as a real driver copies it to disk: its sha256 and size.
    A non-zero ``limit_gb`` is the disk it must fit in."""
    if open_image is None:
        return None, 0
    digest, size = hashlib.sha256(), 0
    try:
        async for chunk in open_image():
            digest.update(chunk)
            size += len(chunk)
            if limit_gb and size > limit_gb * GIB:
                raise SpawnFailed(f"image {spec.image_id} is larger than the {limit_gb} GB root disk "
                                  f"of instance {spec.uuid}", instance=spec.uuid)
    except errors.LoomError:
        raise
    except Exception as exc:
        raise SpawnFailed(f"reading image {spec.image_id} for instance {spec.uuid} failed: {exc}",
                          instance=spec.uuid) from exc
    return digest.hexdigest(), size


def _disk_image(guest: FakeGuest) -> bytes:
    """A small raw disk whose first bytes say whose it is."""
    label = {"loom-fake-disk": 1, "instance": guest.spec.uuid, "hostname": guest.spec.hostname,
             "image_id": guest.spec.image_id, "image_sha256": guest.image_sha256, "root_gb": guest.spec.root_gb,
             "boots": guest.boots}
    return json.dumps(label, sort_keys=True).encode().ljust(SNAPSHOT_SIZE, b"\0")


async def _stream(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK_SIZE):
        yield data[start:start + CHUNK_SIZE]


def _load(path: Path, host: str) -> dict[str, FakeGuest]:
    if not path.is_dir():
        return {}
    owner = path / HOST_FILE
    if owner.exists() and owner.read_text(encoding="utf-8").strip() != host:
        raise errors.Invalid(f"{path} holds the guests of host {owner.read_text(encoding='utf-8').strip()}, "
                             f"not of {host}")
    guests = (FakeGuest.from_dict(json.loads(f.read_text(encoding="utf-8"))) for f in sorted(path.glob("*.json")))
    return {guest.spec.uuid: guest for guest in guests}


def _claim_directory(path: Path, host: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / HOST_FILE).write_text(host + "\n", encoding="utf-8")


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
