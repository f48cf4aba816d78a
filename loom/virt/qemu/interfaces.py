"""Interfaces: each vif a tap device on the host, opened by QEMU, as a
``virtio-net-pci`` NIC on a root port.

The vif (a network_info entry) accepted::

    {"id": "<port id>",                      # letters, digits, . _ -
     "mac": "fa:16:3e:..",                   # or "address", as Nova's VIF has it
     "type": "bridge" | "tap",               # optional; bridge needs a bridge
     "bridge": "brq..",                      # optional; or network.bridge
     "mtu": 1450}                            # optional; or network.meta.mtu

The driver makes the tap ``tap<first 11 characters of the id>`` (as Nova
names them: 14 characters, within the kernel's 15), sets its MTU, puts it
on the bridge (which must exist: the network service makes bridges) and
brings it up; QEMU opens it by name (``script=no``, ``vhost=off``). Taps
live as long as the instance: power off keeps them, destroy deletes them.
With ``compute.qemu_user_network`` on there are no taps: each vif is QEMU's
user-mode network with ``restrict=on`` instead.

Which vifs an instance has: its spec's networks, until one is attached or
detached; from then on the list in attachments.json.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from loom import errors
from loom.virt.driver import InstanceSpec, PowerState
from loom.virt.qemu import hotplug, qmp
from loom.virt.qemu.command import InstancePaths, PortDevice
from loom.virt.qemu.images import run

TAP_NAME_LENGTH = 14  # Nova's NIC_NAME_LEN
VIF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
BRIDGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$")
VIF_TYPES = (None, "bridge", "tap")
SYS_NET = Path("/sys/class/net")


def describe(vif: dict[str, Any]) -> dict[str, Any]:
    """The vif with its tap name, MAC, bridge and MTU checked and resolved;
    Invalid for anything else."""
    vif_id = vif.get("id")
    if not isinstance(vif_id, str) or not VIF_ID.match(vif_id):
        raise errors.Invalid(f"an interface needs an id of letters, digits, '.', '_' or '-' (got {vif_id!r})")
    mac = str(vif.get("mac") or vif.get("address") or "").lower()
    if not MAC.match(mac) or int(mac[:2], 16) & 1:
        raise errors.Invalid(f"interface {vif_id} needs a unicast MAC address (got {mac!r})")
    if vif.get("type") not in VIF_TYPES:
        raise errors.Invalid(f"the qemu driver cannot plug vifs of type {vif.get('type')!r} (it plugs bridge, tap)")
    network: dict[str, Any] = vif["network"] if isinstance(vif.get("network"), dict) else {}
    bridge = vif.get("bridge") or network.get("bridge") or ""
    if bridge and not BRIDGE.match(str(bridge)):
        raise errors.Invalid(f"interface {vif_id}: {bridge!r} is not a bridge name")
    if vif.get("type") == "bridge" and not bridge:
        raise errors.Invalid(f"interface {vif_id} is of type bridge but names no bridge")
    mtu = vif.get("mtu") or (network.get("meta") or {}).get("mtu")
    if mtu is not None and (not isinstance(mtu, int) or isinstance(mtu, bool) or not 68 <= mtu <= 65535):
        raise errors.Invalid(f"interface {vif_id}: MTU {mtu!r} is not a number from 68 to 65535")
    short = ("tap" + vif_id)[:TAP_NAME_LENGTH][3:]
    return {**vif, "mac": mac, "bridge": str(bridge), "mtu": mtu, "tap": f"tap{short}",
            "device_id": f"nic-{short}", "netdev_id": f"net-{short}"}


def current(paths: InstancePaths, spec: InstanceSpec) -> list[dict[str, Any]]:
    record = hotplug.load(paths)
    vifs = record["interfaces"] if "interfaces" in record else [v for v in spec.networks if v.get("mac")]
    return [describe(v) for v in vifs]


def netdev(vif: dict[str, Any], user_network: bool) -> dict[str, Any]:
    """netdev_add's arguments."""
    if user_network:
        return {"type": "user", "id": vif["netdev_id"], "restrict": True}
    return {"type": "tap", "id": vif["netdev_id"], "ifname": vif["tap"], "script": "no", "downscript": "no",
            "vhost": False}


def netdev_option(vif: dict[str, Any], user_network: bool) -> str:
    if user_network:
        return f"user,id={vif['netdev_id']},restrict=on"
    return f"tap,id={vif['netdev_id']},ifname={vif['tap']},script=no,downscript=no,vhost=off"


def device(vif: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {"driver": "virtio-net-pci", "netdev": vif["netdev_id"], "mac": vif["mac"],
                                  "id": vif["device_id"]}
    if vif["mtu"]:
        properties["host_mtu"] = vif["mtu"]
    return properties


def port_devices(vifs: list[dict[str, Any]], user_network: bool) -> list[PortDevice]:
    return [PortDevice(["-netdev", netdev_option(v, user_network)], device(v)) for v in vifs]


async def plug_all(vifs: list[dict[str, Any]], user_network: bool) -> None:
    """Make (or find) each vif's tap before QEMU starts."""
    if not user_network:
        for vif in vifs:
            await plug_tap(vif, exist_ok=True)


async def unplug_all(vifs: list[dict[str, Any]]) -> None:
    for vif in vifs:
        await delete_tap(vif["tap"])


async def plug_tap(vif: dict[str, Any], exist_ok: bool = False) -> None:
    tap, bridge = vif["tap"], vif["bridge"]
    if bridge and not (SYS_NET / bridge / "bridge").is_dir():
        raise errors.Invalid(f"interface {vif['id']}: there is no bridge {bridge} on this host")
    if (SYS_NET / tap).exists():
        if not exist_ok:
            raise errors.Conflict(f"a network device {tap} exists on this host already", device=tap)
    else:
        await run("ip", "tuntap", "add", "dev", tap, "mode", "tap")
    try:
        if vif["mtu"]:
            await run("ip", "link", "set", "dev", tap, "mtu", str(vif["mtu"]))
        if bridge:
            await run("ip", "link", "set", "dev", tap, "master", bridge)
        await run("ip", "link", "set", "dev", tap, "up")
    except BaseException:
        if not exist_ok:
            await delete_tap(tap)
        raise


async def delete_tap(tap: str) -> None:
    if (SYS_NET / tap).exists():
        await run("ip", "link", "delete", "dev", tap)


async def attach(paths: InstancePaths, spec: InstanceSpec, state: PowerState, vif: dict[str, Any],
                 user_network: bool) -> None:
    uuid = spec.uuid
    wanted = describe(vif)
    vifs = current(paths, spec)
    for other in vifs:
        if other["id"] == wanted["id"]:
            raise errors.Conflict(f"interface {wanted['id']} is plugged into instance {uuid} already",
                                  instance=uuid)
        if other["tap"] == wanted["tap"]:
            raise errors.Conflict(f"interface {wanted['id']} would share tap {wanted['tap']} with interface "
                                  f"{other['id']} of instance {uuid}", instance=uuid)
    live = hotplug.check_state("attach_interface", uuid, state)
    if not user_network:
        await plug_tap(wanted)
    try:
        if live:
            await _hot_plug(paths, uuid, wanted, user_network)
        record = hotplug.load(paths)
        record["interfaces"] = [_stored(v) for v in vifs] + [_stored(wanted)]
        hotplug.save(paths, record)
    except BaseException:
        if not user_network:
            await delete_tap(wanted["tap"])
        raise


async def detach(paths: InstancePaths, spec: InstanceSpec, state: PowerState, vif_id: str,
                 timeout: float) -> None:
    uuid = spec.uuid
    vifs = current(paths, spec)
    vif = next((v for v in vifs if v["id"] == vif_id), None)
    if vif is None:
        raise errors.NotFound(f"interface {vif_id} is not plugged into instance {uuid}", instance=uuid)
    if hotplug.check_state("detach_interface", uuid, state):
        async with qmp.connect(paths.qmp) as monitor:
            await hotplug.unplug(monitor, vif["device_id"], f"detaching interface {vif_id} from instance {uuid}",
                                 timeout)
            with contextlib.suppress(qmp.CommandFailed):  # gone with its device, or never added
                await monitor.execute("netdev_del", {"id": vif["netdev_id"]})
    record = hotplug.load(paths)
    record["interfaces"] = [_stored(v) for v in vifs if v["id"] != vif_id]
    hotplug.save(paths, record)
    await delete_tap(vif["tap"])


async def _hot_plug(paths: InstancePaths, uuid: str, vif: dict[str, Any], user_network: bool) -> None:
    async with qmp.connect(paths.qmp) as monitor:
        await monitor.execute("netdev_add", netdev(vif, user_network))
        try:
            port = await hotplug.free_port(monitor, uuid)
            await monitor.execute("device_add", {**device(vif), "bus": port})
        except BaseException:
            with contextlib.suppress(Exception):
                await monitor.execute("netdev_del", {"id": vif["netdev_id"]})
            raise


def _stored(vif: dict[str, Any]) -> dict[str, Any]:
    """The vif as given, without what describe() derives from it."""
    return {k: v for k, v in vif.items() if k not in ("tap", "device_id", "netdev_id")}
