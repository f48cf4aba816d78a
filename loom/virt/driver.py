"""The virt driver contract: what the compute service asks of a hypervisor.

Nova's contract was soft: a driver lacking a method raised NotImplementedError
at run time and its contract test passed anyway. Here every driver implements
the abstract methods, declares the optional operations it supports in
``capabilities`` (a declared capability whose methods are not overridden is a
TypeError when the class is defined), and passes tests/virt_contract.py.

Every method is a coroutine that returns once the change is done: after
``power_off`` returns, ``get_info`` reports SHUTDOWN. The compute service
serialises operations on one instance; drivers still keep their own state
consistent when calls overlap.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NoReturn

from loom import errors


class PowerState(enum.IntEnum):
    """A guest's power state, numbered as Nova's: the API shows the number as
    ``OS-EXT-STS:power_state``."""

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


@dataclass(frozen=True)
class Capabilities:
    """The optional operations a driver supports; the rest raise NotSupported."""

    pause: bool = False
    suspend: bool = False
    snapshot: bool = False
    resize: bool = False
    rescue: bool = False
    live_migration: bool = False
    console_output: bool = False
    change_password: bool = False
    trigger_crash_dump: bool = False
    attach_volume: bool = False
    attach_interface: bool = False
    vnc_console: bool = False
    serial_console: bool = False

    @classmethod
    def every(cls) -> Capabilities:
        return cls(**{f.name: True for f in fields(cls)})

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def declared(self) -> tuple[str, ...]:
        return tuple(name for name in self.names() if getattr(self, name))


# The methods each capability enables.
CAPABILITY_METHODS: dict[str, tuple[str, ...]] = {
    "pause": ("pause", "unpause"),
    "suspend": ("suspend", "resume"),
    "snapshot": ("snapshot",),
    "resize": ("resize", "prepare_migration", "migrate_disk_and_power_off", "finish_migration",
               "confirm_migration", "finish_revert_migration"),
    "rescue": ("rescue", "unrescue"),
    "live_migration": ("pre_live_migration", "live_migration", "rollback_live_migration_at_destination",
                       "live_migration_abort", "live_migration_force_complete"),
    "console_output": ("console_output",),
    "change_password": ("change_password",),
    "trigger_crash_dump": ("trigger_crash_dump",),
    "attach_volume": ("attach_volume", "detach_volume"),
    "attach_interface": ("attach_interface", "detach_interface"),
    "vnc_console": ("get_vnc_console",),
    "serial_console": ("get_serial_console",),
}

_R, _P, _S, _C, _Z = (PowerState.RUNNING, PowerState.PAUSED, PowerState.SHUTDOWN, PowerState.CRASHED,
                      PowerState.SUSPENDED)
# The power states each operation accepts: part of the contract, so every
# driver refuses the same transitions (with InstanceInvalidState). Operations
# not listed (hard reboot, power_off, destroy, snapshot, attach/detach,
# console_output) accept any state; power_off of a stopped guest does nothing.
ALLOWED_STATES: dict[str, frozenset[PowerState]] = {
    "soft reboot": frozenset({_R}),
    "power_on": frozenset({_S, _C}),
    "pause": frozenset({_R}),
    "unpause": frozenset({_P}),
    "suspend": frozenset({_R}),
    "resume": frozenset({_Z}),
    "resize": frozenset({_R, _S}),
    "rebuild": frozenset({_R, _S, _C}),
    "rescue": frozenset({_R, _S, _C}),
    "live_migration": frozenset({_R, _P}),
    "change_password": frozenset({_R}),
    "trigger_crash_dump": frozenset({_R}),
    "vnc_console": frozenset({_R, _P}),
    "serial_console": frozenset({_R, _P}),
}


class DriverError(errors.LoomError):
    """The hypervisor failed."""


class SpawnFailed(DriverError):
    """The instance could not be spawned."""


class InstanceNotFound(errors.NotFound):
    """The instance is not on this host."""


class InstanceExists(errors.Conflict):
    """An instance with this uuid is already on this host."""


class InstanceInvalidState(errors.BadState):
    """The instance's state does not allow this operation."""


class LiveMigrationAborted(DriverError):
    """live_migration_abort stopped the live migration; the guest stayed."""


class InsufficientResources(errors.NoResources):
    """The host lacks the memory or disk the instance needs."""


class NotSupported(errors.Conflict):
    """The driver does not support this operation."""


class ConsoleUnavailable(errors.Invalid):
    """The driver supports this console type but this guest has none (the
    host's settings turned it off, say)."""


def check_power_state(operation: str, uuid: str, state: PowerState) -> None:
    """Refuse ``operation`` on an instance in ``state`` per ALLOWED_STATES."""
    allowed = ALLOWED_STATES.get(operation)
    if allowed is not None and state not in allowed:
        wanted = " or ".join(s.name for s in sorted(allowed))
        raise InstanceInvalidState(
            f"cannot {operation} instance {uuid}: it is {state.name}, {operation} needs {wanted}",
            instance=uuid, power_state=state.name, operation=operation)


@dataclass
class InstanceSpec:
    """What the hypervisor needs to build (or rebuild, or resize) a guest."""

    uuid: str
    name: str
    hostname: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    image_id: str | None = None
    image_meta: dict[str, Any] = field(default_factory=dict)
    user_data: str | None = None  # base64, as the API received it
    key_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # network_info: each {"id", "mac", "ips": [...], "bridge", ...}
    networks: list[dict[str, Any]] = field(default_factory=list)
    config_drive: bool = False
    # The flavor's extra specs (quota:cpu_* become the guest's CPU limits).
    extra_specs: dict[str, str] = field(default_factory=dict)

    @property
    def disk_gb(self) -> int:
        """Local disk the instance takes: root, ephemeral and swap."""
        return self.root_gb + self.ephemeral_gb + math.ceil(self.swap_mb / 1024)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceSpec:
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in fields(cls)}})


@dataclass
class MigrationProgress:
    """How far a live migration has got, in bytes (disk only when the
    disks are copied too)."""

    memory_total: int
    memory_processed: int
    memory_remaining: int
    disk_total: int = 0
    disk_processed: int = 0
    disk_remaining: int = 0


# Called by live_migration as the copy progresses.
ProgressCallback = Callable[[MigrationProgress], Awaitable[None]]


@dataclass(frozen=True)
class ConsoleEndpoint:
    """Where a guest's console listens on its host, for the console proxy:
    a unix socket ``path``, else ``host``:``port``. ``protocol`` is what
    flows there: "vnc" (RFB) or "serial" (the serial port's raw bytes)."""

    protocol: str
    path: str = ""
    host: str = ""
    port: int = 0


@dataclass
class InstanceInfo:
    power_state: PowerState
    vcpus: int
    memory_mb: int
    cpu_time_ns: int
    uptime_s: float


@dataclass
class HostResources:
    """Physical totals, and ``*_used``: what the instances on the host have
    been given (spec sizes, disk as InstanceSpec.disk_gb), not what the host
    OS measures. Memory and disk are never overcommitted; vcpus may be."""

    hostname: str
    vcpus: int
    memory_mb: int
    local_gb: int
    vcpus_used: int
    memory_mb_used: int
    local_gb_used: int
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str
    cpu_info: dict[str, Any]


# Opens the image's data: a driver calls it (at most once per operation, or
# not at all if it has the image cached) and reads the chunks. An image
# client's download fits: ``lambda: images.download(ctx, image_id)``.
ImageSource = Callable[[], AsyncIterator[bytes]]


async def host_uptime() -> str:
    """This machine's ``uptime`` line (in the C locale)."""
    try:
        proc = await asyncio.create_subprocess_exec("uptime", env={"LANG": "C", "PATH": "/usr/bin:/bin"},
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
    except OSError as exc:
        raise DriverError(f"cannot run uptime: {exc}") from None
    if proc.returncode != 0:
        raise DriverError(f"uptime failed with status {proc.returncode}")
    return out.decode(errors="replace").rstrip("\n")


class VirtDriver(abc.ABC):
    """A hypervisor on one host. Abstract methods are what every driver does;
    optional operations raise NotSupported unless ``capabilities`` declares
    them and the driver overrides their methods."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [method for name in cls.capabilities.declared() for method in CAPABILITY_METHODS[name]
                   if getattr(cls, method) is getattr(VirtDriver, method)]
        if missing:
            raise TypeError(f"{cls.__name__} declares capabilities but does not implement {', '.join(missing)}")

    def check_capability(self, name: str) -> None:
        """Raise NotSupported unless this driver declares capability ``name``."""
        if name not in CAPABILITY_METHODS:
            raise ValueError(f"unknown capability {name!r}")
        if not getattr(self.capabilities, name):
            raise NotSupported(f"the {type(self).__name__} driver does not support {name.replace('_', ' ')}",
                               capability=name)

    # What every driver does.

    @abc.abstractmethod
    async def init_host(self, host: str) -> None:
        """Called once when compute starts, before anything else: find the
        guests already on the host (they outlive the compute service)."""

    async def cleanup(self) -> None:
        """Called when compute stops. Guests keep running."""
        return None

    @abc.abstractmethod
    async def host_resources(self) -> HostResources:
        """What the host has and what its instances take."""

    async def host_uptime(self) -> str:
        """What ``uptime`` prints on the hypervisor's host, as Nova shows it.
        The compute service runs on that host, so the default asks this
        machine; a driver that manages a remote hypervisor overrides it."""
        return await host_uptime()

    @abc.abstractmethod
    async def list_instances(self) -> list[str]:
        """The uuids of the instances on this host."""

    @abc.abstractmethod
    async def spawn(self, spec: InstanceSpec, open_image: ImageSource | None = None) -> None:
        """Create and boot the instance; returns once it is RUNNING.

        MUST raise InstanceExists if the uuid is on the host, and
        InsufficientResources if its memory or disk does not fit. On any
        failure MUST leave nothing behind (no guest, no usage)."""

    @abc.abstractmethod
    async def destroy(self, uuid: str) -> None:
        """Stop the instance and delete it and its disks. Destroying an
        instance that is not here is not an error (deletes are retried)."""

    @abc.abstractmethod
    async def reboot(self, uuid: str, hard: bool) -> None:
        """Soft (the guest restarts itself; RUNNING only) or hard (reset,
        from any state); ends RUNNING."""

    @abc.abstractmethod
    async def power_off(self, uuid: str, timeout: float = 0) -> None:
        """Ends SHUTDOWN. With ``timeout`` > 0 the guest is first asked to
        shut down and given that many seconds; then it is stopped."""

    @abc.abstractmethod
    async def power_on(self, uuid: str) -> None:
        """Boot a SHUTDOWN or CRASHED instance; ends RUNNING."""

    @abc.abstractmethod
    async def get_info(self, uuid: str) -> InstanceInfo:
        """The instance's power state and size; InstanceNotFound if absent."""

    async def rebuild(self, spec: InstanceSpec, open_image: ImageSource | None = None) -> None:
        """Reimage the instance (same uuid and flavor; name, image, metadata
        may change); ends RUNNING. The default destroys and spawns, as Nova's
        does: a failed spawn leaves the instance gone. Drivers that can
        reimage in place override this."""
        info = await self.get_info(spec.uuid)
        check_power_state("rebuild", spec.uuid, info.power_state)
        if (info.vcpus, info.memory_mb) != (spec.vcpus, spec.memory_mb):
            raise errors.Invalid(f"rebuild of {spec.uuid} keeps its flavor; resize changes it")
        await self.destroy(spec.uuid)
        await self.spawn(spec, open_image)

    # Optional operations, enabled by capabilities.

    async def pause(self, uuid: str) -> None:
        """RUNNING → PAUSED (the guest's vCPUs stop; memory stays)."""
        self._unsupported("pause")

    async def unpause(self, uuid: str) -> None:
        """PAUSED → RUNNING."""
        self._unsupported("pause")

    async def suspend(self, uuid: str) -> None:
        """RUNNING → SUSPENDED (memory saved to disk, host memory kept)."""
        self._unsupported("suspend")

    async def resume(self, uuid: str) -> None:
        """SUSPENDED → RUNNING."""
        self._unsupported("suspend")

    async def console_output(self, uuid: str, length: int | None = None) -> str:
        """The serial console log; ``length`` keeps only its last lines."""
        self._unsupported("console_output")

    async def snapshot(self, uuid: str) -> AsyncIterator[bytes]:
        """A point-in-time raw or qcow2 image of the root disk, in any power
        state. Awaiting takes the snapshot (errors raise here); the returned
        iterator streams it, e.g. into an image client's ``upload``."""
        self._unsupported("snapshot")

    async def resize(self, uuid: str, spec: InstanceSpec) -> None:
        """Give the instance ``spec``'s flavor (same uuid), keeping its power
        state. The root disk cannot shrink (Invalid); growth must fit."""
        self._unsupported("resize")

    # Cold migration and resize between hosts (or on one host): the source
    # keeps its copy of the guest, stopped and holding its resources, until
    # the move is confirmed (confirm_migration) or reverted.

    async def prepare_migration(self, spec: InstanceSpec) -> None:
        """On the destination, before a move: MUST raise InsufficientResources
        unless the instance (``spec``: its new size) fits beside everything
        here, a source copy on this same host included. Reserves nothing."""
        self._unsupported("resize")

    async def migrate_disk_and_power_off(self, uuid: str, dest_host: str, spec: InstanceSpec) -> dict[str, Any]:
        """On the source: stop the guest and hand its disk to ``dest_host``;
        the disk_info that finish_migration there takes. The guest is then no
        longer listed here but its copy stays, with its resources, until
        confirm_migration or finish_revert_migration. The root disk cannot
        shrink (Invalid)."""
        self._unsupported("resize")

    async def finish_migration(self, spec: InstanceSpec, disk_info: dict[str, Any], power_on: bool) -> None:
        """On the destination: make the guest from the handed-over disk with
        ``spec``'s size, started if ``power_on``, else SHUTDOWN."""
        self._unsupported("resize")

    async def confirm_migration(self, uuid: str) -> None:
        """On the source: delete the copy kept since migrate_disk_and_power_off.
        Not an error if there is none (confirmations are retried)."""
        self._unsupported("resize")

    async def finish_revert_migration(self, spec: InstanceSpec, power_on: bool) -> None:
        """On the source, once the destination's guest is destroyed: bring the
        kept copy back with ``spec`` (its old size), started if ``power_on``.
        Repeating it on a guest already back is not an error."""
        self._unsupported("resize")

    async def rescue(self, uuid: str, open_image: ImageSource | None = None) -> None:
        """Boot a rescue system (``open_image``, else the instance's own
        image) with the instance's disks attached; ends RUNNING."""
        self._unsupported("rescue")

    async def unrescue(self, uuid: str) -> None:
        """Boot the instance from its own disk again; ends RUNNING."""
        self._unsupported("rescue")

    async def change_password(self, uuid: str, password: str) -> None:
        """Set the guest's admin password through its agent (RUNNING only)."""
        self._unsupported("change_password")

    async def trigger_crash_dump(self, uuid: str) -> None:
        """Inject an NMI (RUNNING only); what follows is up to the guest."""
        self._unsupported("trigger_crash_dump")

    async def attach_volume(self, uuid: str, connection_info: dict[str, Any], mountpoint: str) -> None:
        """Attach a volume at ``mountpoint``; Conflict if that is in use.
        ``connection_info`` is the volume service's, with driver_volume_type."""
        self._unsupported("attach_volume")

    async def detach_volume(self, uuid: str, mountpoint: str) -> None:
        """Detach the volume at ``mountpoint``; NotFound if there is none."""
        self._unsupported("attach_volume")

    async def attach_interface(self, uuid: str, vif: dict[str, Any]) -> None:
        """Plug a network_info entry (needs ``id`` and ``mac``); Conflict if
        its id is plugged already."""
        self._unsupported("attach_interface")

    async def detach_interface(self, uuid: str, vif_id: str) -> None:
        """Unplug interface ``vif_id``; NotFound if it is not plugged."""
        self._unsupported("attach_interface")

    async def pre_live_migration(self, spec: InstanceSpec) -> dict[str, Any]:
        """On the destination: claim room for the incoming instance and
        return the migrate data the source passes to live_migration."""
        self._unsupported("live_migration")

    async def live_migration(self, uuid: str, dest_host: str, migrate_data: dict[str, Any],
                             progress: ProgressCallback | None = None) -> None:
        """On the source: move the running instance to ``dest_host``. When it
        returns the instance runs there and is gone from here. ``progress``
        is awaited as the copy advances. MUST raise LiveMigrationAborted
        (the instance still here, as it was) if live_migration_abort
        stopped it."""
        self._unsupported("live_migration")

    async def live_migration_abort(self, uuid: str) -> None:
        """On the source: stop the live migration of ``uuid`` under way, if
        any (live_migration then raises LiveMigrationAborted)."""
        self._unsupported("live_migration")

    async def live_migration_force_complete(self, uuid: str) -> None:
        """On the source: make the live migration of ``uuid`` under way
        finish now (a real hypervisor pauses the guest for the last copy)."""
        self._unsupported("live_migration")

    async def rollback_live_migration_at_destination(self, uuid: str) -> None:
        """On the destination: release what pre_live_migration claimed."""
        self._unsupported("live_migration")

    async def get_vnc_console(self, uuid: str) -> ConsoleEndpoint:
        """Where the guest's display speaks RFB (RUNNING or PAUSED only),
        without authentication: only the console proxy may reach it."""
        self._unsupported("vnc_console")

    async def get_serial_console(self, uuid: str) -> ConsoleEndpoint:
        """Where the guest's first serial port is a byte stream both ways
        (RUNNING or PAUSED only). A client connected there may hold it while
        the serial log goes on being written."""
        self._unsupported("serial_console")

    def _unsupported(self, capability: str) -> NoReturn:
        self.check_capability(capability)
        # Only reachable if capabilities were changed after the class was made.
        raise NotSupported(f"the {type(self).__name__} driver declares {capability} but does not implement it",
                           capability=capability)
