"""A fake guest: its power state, CPU time, serial console and disk."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from loom import errors
from loom.virt.driver import (
    InstanceInvalidState,
    InstanceSpec,
    PowerState,
)

BOOT_MARKER = "loom-fake-guest: booted"
RESCUE_MARKER = "loom-fake-guest: rescue system booted"
CONSOLE_LINES = 1000  # a serial log is bounded: the oldest lines go
SNAPSHOT_SIZE = 64 << 10
CHUNK_SIZE = 16 << 10
CPU_LOAD = 0.05  # the share of each vCPU a running fake guest burns


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


def _refuse_rescued(guest: FakeGuest, operation: str) -> None:
    if guest.rescued:
        raise InstanceInvalidState(f"cannot {operation} instance {guest.spec.uuid}: it is in rescue",
                                   instance=guest.spec.uuid)


def _refuse_shrinking(guest: FakeGuest, spec: InstanceSpec) -> None:
    if spec.root_gb < guest.spec.root_gb:
        raise errors.Invalid(f"cannot resize instance {guest.spec.uuid}: its root disk cannot shrink "
                             f"from {guest.spec.root_gb} GB to {spec.root_gb} GB")


def _disk_image(guest: FakeGuest) -> bytes:
    """A small raw disk whose first bytes say whose it is."""
    label = {"loom-fake-disk": 1, "instance": guest.spec.uuid, "hostname": guest.spec.hostname,
             "image_id": guest.spec.image_id, "image_sha256": guest.image_sha256, "root_gb": guest.spec.root_gb,
             "boots": guest.boots}
    return json.dumps(label, sort_keys=True).encode().ljust(SNAPSHOT_SIZE, b"\0")


async def _stream(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK_SIZE):
        yield data[start:start + CHUNK_SIZE]
