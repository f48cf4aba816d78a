"""Volumes: a file or a host block device given by the volume service's
``connection_info``, as a ``virtio-blk-pci`` disk on a root port.

The connection_info shapes accepted (Cinder's, as Nova's libvirt driver
reads them)::

    {"driver_volume_type": "local",    # os-brick's local connector
     "data": {"device_path": "/dev/...", "volume_id": "<uuid>"}}
    {"driver_volume_type": "file",     # a file on the compute host
     "data": {"device_path": "/srv/.../volume.raw", "format": "raw" | "qcow2",
              "volume_id": "<uuid>"}}

plus, in either, ``data.access_mode`` ("rw", the default, or "ro") and
the top-level ``serial`` (the volume id, as Nova stores it). The volume id
becomes the disk's serial: the guest sees ``/dev/disk/by-id/virtio-<id>``
(virtio keeps 20 characters). Anything else (iSCSI, RBD, NFS...) is
refused: those need the volume service's connectors, not yet here.

A running guest gets the disk at once (``blockdev-add`` of a protocol
node and a format node, ``device_add`` on a free root port); a stopped one
gets it on its next start. Either way it is recorded in attachments.json
and is on every later command line.
"""

from __future__ import annotations

import contextlib
import json
import re
import stat
from pathlib import Path
from typing import Any

from loom import errors
from loom.virt.driver import PowerState
from loom.virt.qemu import hotplug, qmp
from loom.virt.qemu.command import InstancePaths, PortDevice

VOLUME_TYPES = ("local", "file")
FORMATS = ("raw", "qcow2")
MOUNTPOINT = re.compile(r"^/dev/(vd|sd|xvd|hd)([a-z]{1,2})$")
SERIAL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ROOT_MOUNTPOINTS = ("/dev/vda", "/dev/sda", "/dev/xvda", "/dev/hda")


def describe(connection_info: dict[str, Any], mountpoint: str) -> dict[str, Any]:
    """The disk to attach, checked: Invalid for any shape not accepted."""
    match = MOUNTPOINT.match(mountpoint or "")
    if match is None:
        raise errors.Invalid(f"the mountpoint {mountpoint!r} is not a disk device name such as /dev/vdb")
    kind = connection_info.get("driver_volume_type")
    if kind not in VOLUME_TYPES:
        raise errors.Invalid(f"the qemu driver cannot attach volumes of driver_volume_type {kind!r} "
                             f"(it attaches {', '.join(VOLUME_TYPES)})")
    data = connection_info.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("device_path"), str) or not data["device_path"]:
        raise errors.Invalid(f"a {kind} volume's connection_info needs data.device_path")
    path = Path(data["device_path"])
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise errors.Invalid(f"the volume at {path} cannot be opened: {exc.strerror}") from None
    if not (stat.S_ISREG(mode) or (kind == "local" and stat.S_ISBLK(mode))):
        raise errors.Invalid(f"the volume at {path} is not a regular file"
                             + (" or a block device" if kind == "local" else ""))
    image_format = data.get("format", "raw")
    if image_format not in FORMATS:
        raise errors.Invalid(f"volume format {image_format!r} is not one of {', '.join(FORMATS)}")
    access = data.get("access_mode", "rw")
    if access not in ("rw", "ro"):
        raise errors.Invalid(f"volume access_mode {access!r} is neither rw nor ro")
    serial = connection_info.get("serial") or data.get("volume_id") or ""
    if serial and not SERIAL.match(str(serial)):
        raise errors.Invalid(f"the volume id {serial!r} is not a usable disk serial")
    name = match.group(1) + match.group(2)
    return {"mountpoint": mountpoint, "id": f"volume-{name}", "path": str(path.resolve()),
            "protocol": "host_device" if stat.S_ISBLK(mode) else "file", "format": image_format,
            "read_only": access == "ro", "serial": str(serial), "connection_info": connection_info}


def nodes(volume: dict[str, Any]) -> list[dict[str, Any]]:
    """The blockdev nodes, protocol first (blockdev-add's arguments)."""
    read_only = volume["read_only"]
    return [{"driver": volume["protocol"], "filename": volume["path"], "node-name": f"{volume['id']}-file",
             "read-only": read_only},
            {"driver": volume["format"], "file": f"{volume['id']}-file", "node-name": volume["id"],
             "read-only": read_only}]


def device(volume: dict[str, Any]) -> dict[str, Any]:
    properties = {"driver": "virtio-blk-pci", "drive": volume["id"], "id": volume["id"]}
    if volume["serial"]:
        properties["serial"] = volume["serial"]
    return properties


def port_devices(paths: InstancePaths) -> list[PortDevice]:
    """The attached volumes, for the command line."""
    return [PortDevice([arg for node in nodes(v) for arg in ("-blockdev", json.dumps(node))], device(v))
            for v in hotplug.load(paths).get("volumes", [])]


def attached(paths: InstancePaths) -> list[dict[str, Any]]:
    return list(hotplug.load(paths).get("volumes", []))


async def attach(paths: InstancePaths, uuid: str, state: PowerState, connection_info: dict[str, Any],
                 mountpoint: str) -> None:
    volume = describe(connection_info, mountpoint)
    if mountpoint in ROOT_MOUNTPOINTS:
        raise errors.Conflict(f"{mountpoint} of instance {uuid} is its root disk", instance=uuid)
    record = hotplug.load(paths)
    volumes = record.setdefault("volumes", [])
    if any(v["id"] == volume["id"] for v in volumes):
        raise errors.Conflict(f"{mountpoint} of instance {uuid} is in use", instance=uuid)
    if hotplug.check_state("attach_volume", uuid, state):
        await _plug(paths, uuid, volume)
    volumes.append(volume)
    try:
        hotplug.save(paths, record)
    except OSError:
        if state != PowerState.SHUTDOWN:
            with contextlib.suppress(Exception):
                await detach_device(paths, volume, f"rolling back the attach of {mountpoint}", 30.0)
        raise


async def detach(paths: InstancePaths, uuid: str, state: PowerState, mountpoint: str, timeout: float) -> None:
    record = hotplug.load(paths)
    volumes = record.setdefault("volumes", [])
    volume = next((v for v in volumes if v["mountpoint"] == mountpoint), None)
    if volume is None:
        raise errors.NotFound(f"no volume is attached at {mountpoint} of instance {uuid}", instance=uuid)
    if hotplug.check_state("detach_volume", uuid, state):
        await detach_device(paths, volume, f"detaching {mountpoint} from instance {uuid}", timeout)
    volumes.remove(volume)
    hotplug.save(paths, record)


async def _plug(paths: InstancePaths, uuid: str, volume: dict[str, Any]) -> None:
    """blockdev-add then device_add; a failure removes what was added."""
    added: list[str] = []
    async with qmp.connect(paths.qmp) as monitor:
        try:
            for node in nodes(volume):
                await monitor.execute("blockdev-add", node)
                added.append(node["node-name"])
            port = await hotplug.free_port(monitor, uuid)
            await monitor.execute("device_add", {**device(volume), "bus": port})
        except BaseException:
            for node_name in reversed(added):
                with contextlib.suppress(Exception):
                    await monitor.execute("blockdev-del", {"node-name": node_name})
            raise


async def detach_device(paths: InstancePaths, volume: dict[str, Any], what: str, timeout: float) -> None:
    """device_del, wait for the guest to let go, then drop the nodes."""
    async with qmp.connect(paths.qmp) as monitor:
        await hotplug.unplug(monitor, volume["id"], what, timeout)
        for node in reversed(nodes(volume)):
            try:
                await monitor.execute("blockdev-del", {"node-name": node["node-name"]})
            except qmp.CommandFailed as exc:
                if "not found" not in exc.message.lower():
                    raise
