"""The QEMU driver's pure parts: the command line, the console log's cap,
the config drive's files, the pid checks, the accelerator choice. No QEMU."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from loom.virt.driver import DriverError, InstanceSpec, SpawnFailed
from loom.virt.qemu import accel, configdrive, console, host, interfaces, process
from loom.virt.qemu.command import GuestConfig, InstancePaths, command_line

UUID = "0f8b5d7e-1c2a-4b3c-9d4e-5f6a7b8c9d0e"


def config(**overrides: Any) -> GuestConfig:
    fields: dict[str, Any] = {"uuid": UUID, "name": "vm", "vcpus": 2, "memory_mb": 256,
                              "paths": InstancePaths(Path("/srv/loom/instances") / UUID)}
    return GuestConfig(**{**fields, **overrides})


def option(args: list[str], flag: str) -> list[str]:
    """Every value given to ``flag``."""
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_a_guest_gets_what_its_flavor_says_and_nothing_by_default() -> None:
    args = command_line(config())
    assert args[0] == "qemu-system-x86_64"
    assert option(args, "-smp") == ["2"] and option(args, "-m") == ["256"]
    assert "-nodefaults" in args and "-no-user-config" in args
    assert option(args, "-uuid") == [UUID]
    assert f"guest=loom-{UUID}" in option(args, "-name")[0]  # how the driver recognises its process
    assert not option(args, "-netdev") and not any("net" in d for d in option(args, "-device"))
    assert "-daemonize" in args
    assert option(args, "-pidfile") == [f"/srv/loom/instances/{UUID}/qemu.pid"]


def test_the_sandbox_is_on() -> None:
    sandbox = option(command_line(config()), "-sandbox")
    assert len(sandbox) == 1 and sandbox[0].startswith("on,") and "obsolete=deny" in sandbox[0]


def test_the_root_disk_is_a_qcow2_whose_format_is_stated() -> None:
    args = command_line(config())
    blockdevs = option(args, "-blockdev")
    assert f"driver=file,filename=/srv/loom/instances/{UUID}/disk.qcow2,node-name=root-file" in blockdevs
    assert "driver=qcow2,file=root-file,node-name=root" in blockdevs
    assert "virtio-blk-pci,drive=root,id=disk-root,bootindex=0" in option(args, "-device")
    assert not option(args, "-drive")  # -drive would let QEMU probe the format


def test_serial_console_qmp_and_vnc_are_files_and_unix_sockets() -> None:
    args = command_line(config())
    chardevs = option(args, "-chardev")
    assert f"socket,id=qmp,path=/srv/loom/instances/{UUID}/qmp.sock,server=on,wait=off" in chardevs
    assert (f"socket,id=serial0,path=/srv/loom/instances/{UUID}/serial.sock,server=on,wait=off,"
            f"logfile=/srv/loom/instances/{UUID}/console.log,logappend=on") in chardevs
    assert option(args, "-mon") == ["chardev=qmp,mode=control"]
    assert option(args, "-serial") == ["chardev:serial0"]
    assert option(args, "-vnc") == [f"unix:/srv/loom/instances/{UUID}/vnc.sock"]
    assert option(args, "-display") == ["none"]
    no_vnc = command_line(config(vnc=False))
    assert not option(no_vnc, "-vnc") and "VGA,id=video0" not in option(no_vnc, "-device")


@pytest.mark.parametrize(("accelerator", "accel_option", "cpu"), [("tcg", "tcg,tb-size=64", "max"),
                                                                   ("kvm", "kvm", "host")])
def test_the_accelerator(accelerator: str, accel_option: str, cpu: str) -> None:
    args = command_line(config(accelerator=accelerator))
    assert option(args, "-accel") == [accel_option] and option(args, "-cpu") == [cpu]


def test_an_unknown_accelerator_is_refused() -> None:
    with pytest.raises(ValueError, match="hvf"):
        command_line(config(accelerator="hvf"))


def test_ephemeral_disk_and_config_drive() -> None:
    args = command_line(config(ephemeral=True, config_drive=True))
    blockdevs = option(args, "-blockdev")
    assert f"driver=file,filename=/srv/loom/instances/{UUID}/disk.eph0.qcow2,node-name=eph0-file" in blockdevs
    assert (f"driver=file,filename=/srv/loom/instances/{UUID}/config.iso,node-name=config-file,read-only=on"
            in blockdevs)
    assert "driver=raw,file=config-file,node-name=config,read-only=on" in blockdevs
    assert {"virtio-blk-pci,drive=eph0,id=disk-eph0", "virtio-blk-pci,drive=config,id=disk-config"} <= set(
        option(args, "-device"))


def test_a_resumed_guest_waits_for_its_saved_state() -> None:
    assert "-incoming" not in command_line(config())
    assert option(command_line(config(incoming=True)), "-incoming") == ["defer"]


def test_user_mode_networking_only_restricted_and_only_when_enabled() -> None:
    vifs = [interfaces.describe({"id": "a", "mac": "fa:16:3e:00:00:01"}),
            interfaces.describe({"id": "b", "mac": "fa:16:3e:00:00:02"})]
    taps = command_line(config(port_devices=interfaces.port_devices(vifs, user_network=False)))
    assert option(taps, "-netdev") == ["tap,id=net-a,ifname=tapa,script=no,downscript=no,vhost=off",
                                       "tap,id=net-b,ifname=tapb,script=no,downscript=no,vhost=off"]
    args = command_line(config(port_devices=interfaces.port_devices(vifs, user_network=True)))
    assert option(args, "-netdev") == ["user,id=net-a,restrict=on", "user,id=net-b,restrict=on"]
    nic = json.loads([d for d in option(args, "-device") if "virtio-net" in d][-1])
    assert nic == {"driver": "virtio-net-pci", "netdev": "net-b", "mac": "fa:16:3e:00:00:02", "id": "nic-b",
                   "bus": "port1"}


def test_q35_with_root_ports_for_hot_plugged_devices() -> None:
    args = command_line(config(pcie_ports=3))
    assert option(args, "-machine") == ["q35"]
    ports = [d for d in option(args, "-device") if d.startswith("pcie-root-port")]
    assert ports == [f"pcie-root-port,id=port{i},chassis={i + 1},bus=pcie.0" for i in range(3)]
    # Devices present at start take ports of their own; there are always enough.
    vifs = [interfaces.describe({"id": f"p{i}", "mac": f"fa:16:3e:00:00:0{i}"}) for i in range(4)]
    crowded = command_line(config(pcie_ports=2, port_devices=interfaces.port_devices(vifs, user_network=True)))
    assert len([d for d in option(crowded, "-device") if d.startswith("pcie-root-port")]) == 4


# The console log.


def test_the_console_log_is_capped(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"".join(b"line %d\r\n" % i for i in range(1000)))
    assert console.rotate(log, cap=1024)
    assert log.stat().st_size == 0 and console.previous(log).stat().st_size == 1024
    with log.open("ab") as f:  # QEMU goes on appending
        f.write(b"after\n")
    text = console.read(log, cap=1024)
    assert text.endswith("line 999\nafter\n") and "\r" not in text
    assert console.read(log, cap=1024, length=2) == "line 999\nafter\n"
    assert console.read(log, cap=1024, length=0) == ""
    assert not console.rotate(log, cap=1024)


def test_reading_a_missing_console_gives_nothing(tmp_path: Path) -> None:
    assert console.read(tmp_path / "console.log", cap=1024) == ""


# The config drive.


def test_config_drive_files() -> None:
    spec = InstanceSpec(uuid=UUID, name="web", hostname="web-1", vcpus=1, memory_mb=64, root_gb=1,
                        metadata={"role": "web"}, key_data="ssh-ed25519 AAAA k",
                        user_data=base64.b64encode(b"#!/bin/sh\necho hi\n").decode(), config_drive=True)
    files = configdrive.files(spec)
    meta = json.loads(files["openstack/latest/meta_data.json"])
    assert (meta["uuid"], meta["hostname"], meta["meta"]) == (UUID, "web-1", {"role": "web"})
    assert meta["public_keys"] == {"default": "ssh-ed25519 AAAA k"}
    assert b"\n" not in files["openstack/latest/meta_data.json"]  # the test guest prints it as one line
    assert files["openstack/latest/user_data"] == b"#!/bin/sh\necho hi\n"
    assert json.loads(files["ec2/latest/meta-data.json"])["instance-id"] == UUID


def test_config_drive_refuses_user_data_that_is_not_base64() -> None:
    spec = InstanceSpec(uuid=UUID, name="web", hostname="web", vcpus=1, memory_mb=64, root_gb=1, user_data="%%%")
    with pytest.raises(SpawnFailed, match="base64"):
        configdrive.files(spec)


# The QEMU process.


def test_a_pid_counts_only_if_it_runs_this_guest(tmp_path: Path) -> None:
    pidfile = tmp_path / "qemu.pid"
    assert process.guest_pid(pidfile, UUID) is None  # no file
    pidfile.write_text("not a pid")
    assert process.guest_pid(pidfile, UUID) is None
    pidfile.write_text(str(os.getpid()))  # alive, but pytest, not a QEMU of this guest
    assert process.guest_pid(pidfile, UUID) is None
    pidfile.write_text("999999999")
    assert process.guest_pid(pidfile, UUID) is None


async def test_a_pid_of_a_live_process_naming_the_guest(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)", f"loom-{UUID}")
    pidfile = tmp_path / "qemu.pid"
    pidfile.write_text(f"{proc.pid}\n")
    try:
        assert process.guest_pid(pidfile, UUID) == proc.pid
        assert process.cpu_time_ns(proc.pid) >= 0 and process.uptime_s(proc.pid) >= 0
        await process.kill(pidfile, UUID, timeout=5)
        assert process.guest_pid(pidfile, UUID) is None
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


# The accelerator.


async def test_a_configured_accelerator_is_used_as_is(tmp_path: Path) -> None:
    for name in ("kvm", "tcg"):
        choice = await accel.choose(name, binary="/nonexistent/qemu", cache=tmp_path / "a.json")
        assert (choice.accelerator, choice.reason) == (name, "configured")
    with pytest.raises(ValueError, match="xen"):
        await accel.choose("xen", binary="qemu", cache=tmp_path / "a.json")


async def test_auto_without_a_usable_kvm_device_is_tcg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel, "KVM_DEVICE", tmp_path / "kvm")  # absent
    monkeypatch.setattr(accel.kvm_usable, "__defaults__", (tmp_path / "kvm",))
    choice = await accel.choose("auto", binary="qemu", cache=tmp_path / "a.json")
    assert choice.accelerator == "tcg" and "cannot be opened" in choice.reason


async def test_auto_probes_once_then_trusts_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"kernel")
    monkeypatch.setattr(accel, "KVM_DEVICE", device)
    monkeypatch.setattr(accel.kvm_usable, "__defaults__", (device,))
    probes: list[Path] = []

    async def boots(binary: str, probed: Path, timeout: float) -> tuple[bool, str]:
        probes.append(probed)
        return False, "a kernel did not boot under KVM: KVM internal error"

    async def version(binary: str) -> str:
        return "QEMU emulator version 7.2.22"

    monkeypatch.setattr(accel, "boots_with_kvm", boots)
    monkeypatch.setattr(accel, "qemu_version", version)
    cache = tmp_path / "accelerator.json"
    first = await accel.choose("auto", binary="qemu", cache=cache, kernel=str(kernel))
    second = await accel.choose("auto", binary="qemu", cache=cache, kernel=str(kernel))
    assert first.accelerator == second.accelerator == "tcg"
    assert probes == [kernel] and second.reason.endswith("(cached)")


def test_the_probe_boots_a_kernel_under_kvm_without_a_root() -> None:
    args = accel.probe_command("qemu-system-x86_64", Path("/boot/vmlinuz-x"))
    assert option(args, "-accel") == ["kvm"] and option(args, "-kernel") == ["/boot/vmlinuz-x"]
    assert "-no-reboot" in args and "panic=-1" in option(args, "-append")[0]


def test_instance_paths_live_in_the_instance_directory() -> None:
    paths = InstancePaths(Path("/x") / str(uuid.UUID(UUID)))
    for path in (paths.spec, paths.disk, paths.ephemeral, paths.config_drive, paths.qmp, paths.vnc, paths.console,
                 paths.pidfile, paths.suspend_state):
        assert path.parent == paths.directory


def test_qemu_versions_as_nova_numbers_them() -> None:
    assert host.version_number("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)") == 7002022
    with pytest.raises(DriverError):
        host.version_number("something else")
