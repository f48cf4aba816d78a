"""The QEMU command line for one guest: a pure function of its layout and
settings, so that what a guest runs with can be read (and tested) in one
place.

Least privilege by construction: ``-nodefaults`` (no device the guest was
not given), ``-sandbox on`` (seccomp: no obsolete syscalls, no resource
control), no network unless the instance has
interfaces (taps, or QEMU's user-mode network only with ``restrict=on``:
the guest cannot reach the host or beyond). Disk formats are always stated,
never probed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCELERATORS = ("kvm", "tcg")


@dataclass(frozen=True)
class InstancePaths:
    """Everything of one instance lives in its directory."""

    directory: Path

    @property
    def spec(self) -> Path:
        return self.directory / "spec.json"

    @property
    def disk(self) -> Path:
        return self.directory / "disk.qcow2"

    @property
    def ephemeral(self) -> Path:
        return self.directory / "disk.eph0.qcow2"

    @property
    def config_drive(self) -> Path:
        return self.directory / "config.iso"

    @property
    def qmp(self) -> Path:
        return self.directory / "qmp.sock"

    @property
    def vnc(self) -> Path:
        return self.directory / "vnc.sock"

    @property
    def serial(self) -> Path:
        """The first serial port as a socket, for the console proxy."""
        return self.directory / "serial.sock"

    @property
    def console(self) -> Path:
        return self.directory / "console.log"

    @property
    def pidfile(self) -> Path:
        return self.directory / "qemu.pid"

    @property
    def suspend_state(self) -> Path:
        """A suspended guest's memory and device state (no process runs)."""
        return self.directory / "suspend.state"

    @property
    def rescue_disk(self) -> Path:
        """Present while the guest is rescued (rescue.py): it boots from it."""
        return self.directory / "disk.rescue.qcow2"


@dataclass(frozen=True)
class PortDevice:
    """A device on a PCIe root port of its own, so that it can be unplugged
    later: a volume or a NIC (volumes.py, interfaces.py). ``backend`` is its
    -blockdev/-netdev arguments, ``device`` its -device properties (no bus)."""

    backend: list[str]
    device: dict[str, Any]


def root_port(index: int) -> str:
    return f"port{index}"


@dataclass(frozen=True)
class GuestConfig:
    """What the command line is built from."""

    uuid: str
    name: str
    vcpus: int
    memory_mb: int
    paths: InstancePaths
    accelerator: str = "tcg"
    ephemeral: bool = False
    config_drive: bool = False
    vnc: bool = True
    # Volumes and NICs, each on a root port; at least pcie_ports root ports
    # are made so that hot-plugged devices find a free one.
    port_devices: list[PortDevice] = field(default_factory=list)
    pcie_ports: int = 8
    binary: str = "qemu-system-x86_64"
    # Wait for a saved state (migrate-incoming) instead of booting.
    incoming: bool = False
    # Boot the rescue disk, the root disk attached second (Nova's rescue).
    rescue: bool = False


def command_line(c: GuestConfig) -> list[str]:
    if c.accelerator not in ACCELERATORS:
        raise ValueError(f"unknown accelerator {c.accelerator!r}: expected one of {', '.join(ACCELERATORS)}")
    p = c.paths
    args = [
        c.binary,
        "-name", f"guest=loom-{c.uuid},debug-threads=on",
        "-uuid", c.uuid,
        "-nodefaults", "-no-user-config",
        # q35: PCIe, so that disks and NICs can be hot-plugged on root ports.
        "-machine", "q35",
        # TCG's translation cache defaults to 1 GiB; 64 MiB serves small guests.
        "-accel", "kvm" if c.accelerator == "kvm" else "tcg,tb-size=64",
        "-cpu", "host" if c.accelerator == "kvm" else "max",
        "-smp", str(c.vcpus),
        "-m", str(c.memory_mb),
        "-smbios", f"type=1,manufacturer=Loom,product=OpenStack Compute,serial={c.uuid},uuid={c.uuid}",
        # elevateprivileges=deny would also forbid the setsid() of -daemonize.
        "-sandbox", "on,obsolete=deny,resourcecontrol=deny",
        "-display", "none",
        "-chardev", f"socket,id=qmp,path={p.qmp},server=on,wait=off",
        "-mon", "chardev=qmp,mode=control",
        # The serial port is a socket (the console proxy's); what the guest
        # prints is logged too, with logappend=on so that the log can be
        # rotated from outside while QEMU writes.
        "-chardev", f"socket,id=serial0,path={p.serial},server=on,wait=off,logfile={p.console},logappend=on",
        "-serial", "chardev:serial0",
    ]
    if c.rescue:
        args += ["-blockdev", f"driver=file,filename={p.rescue_disk},node-name=rescue-file",
                 "-blockdev", "driver=qcow2,file=rescue-file,node-name=rescue",
                 "-device", "virtio-blk-pci,drive=rescue,id=disk-rescue,bootindex=0,serial=loom-rescue"]
    args += [
        "-blockdev", f"driver=file,filename={p.disk},node-name=root-file",
        "-blockdev", "driver=qcow2,file=root-file,node-name=root",
        "-device", "virtio-blk-pci,drive=root,id=disk-root" + ("" if c.rescue else ",bootindex=0"),
    ]
    if c.ephemeral and not c.rescue:
        args += ["-blockdev", f"driver=file,filename={p.ephemeral},node-name=eph0-file",
                 "-blockdev", "driver=qcow2,file=eph0-file,node-name=eph0",
                 "-device", "virtio-blk-pci,drive=eph0,id=disk-eph0"]
    if c.config_drive:
        args += ["-blockdev", f"driver=file,filename={p.config_drive},node-name=config-file,read-only=on",
                 "-blockdev", "driver=raw,file=config-file,node-name=config,read-only=on",
                 "-device", "virtio-blk-pci,drive=config,id=disk-config"]
    for index in range(max(c.pcie_ports, len(c.port_devices))):
        args += ["-device", f"pcie-root-port,id={root_port(index)},chassis={index + 1},bus=pcie.0"]
    for index, plugged in enumerate(c.port_devices):
        args += [*plugged.backend, "-device", json.dumps({**plugged.device, "bus": root_port(index)})]
    if c.vnc:
        args += ["-device", "VGA,id=video0", "-vnc", f"unix:{p.vnc}"]
    if c.incoming:
        args += ["-incoming", "defer"]
    args += ["-pidfile", str(p.pidfile), "-daemonize"]
    return args
