"""How a server looks at each microversion."""

from __future__ import annotations

import hashlib
from typing import Any

from loom.api.compute.base import links
from loom.api.http import Call
from loom.db.models import Instance
from loom.objects import instances
from loom.timeutils import isotime

# (vm_state, task_state) → the status users see, as Nova maps them.
_TASK_STATUS = {"rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT",
                "rebooting_hard": "HARD_REBOOT", "reboot_pending_hard": "HARD_REBOOT",
                "reboot_started_hard": "HARD_REBOOT", "rebuilding": "REBUILD", "rebuild_spawning": "REBUILD",
                "resize_prep": "RESIZE", "resize_migrating": "RESIZE", "resize_migrated": "RESIZE",
                "resize_finish": "RESIZE", "migrating": "MIGRATING", "updating_password": "PASSWORD"}
_VM_STATUS = {"building": "BUILD", "active": "ACTIVE", "stopped": "SHUTOFF", "paused": "PAUSED",
              "suspended": "SUSPENDED", "error": "ERROR", "deleted": "DELETED", "soft-delete": "SOFT_DELETED",
              "shelved": "SHELVED", "shelved_offloaded": "SHELVED_OFFLOADED", "rescued": "RESCUE",
              "resized": "VERIFY_RESIZE"}
STATUS_TO_VM = {v: k for k, v in _VM_STATUS.items()}


def status(i: Instance) -> str:
    if i.vm_state in ("active", "stopped") and i.task_state in _TASK_STATUS:
        return _TASK_STATUS[i.task_state]
    if i.vm_state == "active" and i.task_state == "deleting":
        return "ACTIVE"
    if i.vm_state == "resized" and i.task_state == "resize_reverting":
        return "REVERT_RESIZE"
    if (i.vm_state, i.task_state) == ("paused", "migrating"):
        return "MIGRATING"
    if i.vm_state == "error" and i.task_state in ("rebuilding", "rebuild_spawning"):
        return "REBUILD"  # an evacuation of a server in ERROR
    return _VM_STATUS.get(i.vm_state, "UNKNOWN")


def host_id(i: Instance) -> str:
    if not i.host:
        return ""
    return hashlib.sha224((i.project_id + i.host).encode()).hexdigest()


def networks(network_info: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Fixed and floating addresses by network label, in the order the
    interfaces come (Nova's get_networks_for_instance)."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for vif in network_info:
        network = vif.get("network") or {}
        found = out.setdefault(network.get("label", ""), {"ips": [], "floating_ips": []})
        for subnet in network.get("subnets") or []:
            for ip in subnet.get("ips") or []:
                found["ips"].append({**ip, "type": ip.get("type", "fixed"), "mac_address": vif.get("address")})
                for fip in ip.get("floating_ips") or []:
                    found["floating_ips"].append({**fip, "type": "floating", "mac_address": vif.get("address")})
    return out


def addresses(by_label: dict[str, dict[str, list[dict[str, Any]]]], *, extended: bool) -> dict[str, Any]:
    """``{label: [{"version", "addr"}, ...]}``; the server view adds each
    address's type and MAC, the ips API does not."""
    out: dict[str, Any] = {}
    for label, network in by_label.items():
        items = []
        for ip in [*network["ips"], *network["floating_ips"]]:
            item = {"version": ip.get("version"), "addr": ip.get("address")}
            if extended:
                item.update({"OS-EXT-IPS:type": ip["type"], "OS-EXT-IPS-MAC:mac_addr": ip["mac_address"]})
            items.append(item)
        out[label] = items
    return out


def summary(call: Call, i: Instance) -> dict[str, Any]:
    return {"id": i.uuid, "name": i.display_name, "links": links(call, "servers", i.uuid)}


def detail(call: Call, i: Instance, *, admin: bool, host_status: str | None = None) -> dict[str, Any]:
    v = call.version
    flavor = i.flavor
    out: dict[str, Any] = {
        "id": i.uuid, "name": i.display_name, "status": status(i), "tenant_id": i.project_id,
        "user_id": i.user_id, "metadata": dict(i.metadata_ or {}), "hostId": host_id(i),
        "image": {"id": i.image_ref, "links": links(call, "images", i.image_ref)[1:]} if i.image_ref else "",
        "created": isotime(i.created_at), "updated": isotime(i.updated_at or i.created_at),
        "addresses": addresses(networks(instances.network_info(i)), extended=True), "accessIPv4": "",
        "accessIPv6": "", "links": links(call, "servers", i.uuid),
        "OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": i.availability_zone or "",
        "config_drive": "True" if i.config_drive else "", "key_name": i.key_name,
        "OS-SRV-USG:launched_at": _micro(i.launched_at), "OS-SRV-USG:terminated_at": _micro(i.terminated_at),
        "OS-EXT-STS:task_state": i.task_state, "OS-EXT-STS:vm_state": i.vm_state,
        "OS-EXT-STS:power_state": i.power_state, "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": "default"}],
    }
    if i.vm_state in ("building", "active"):
        out["progress"] = i.progress
    if v.at_least("2.47"):
        out["flavor"] = {"vcpus": flavor["vcpus"], "ram": flavor["memory_mb"], "disk": flavor["root_gb"],
                         "ephemeral": flavor.get("ephemeral_gb", 0), "swap": flavor.get("swap", 0),
                         "original_name": flavor["name"], "extra_specs": dict(flavor.get("extra_specs", {}))}
    else:
        out["flavor"] = {"id": flavor["flavorid"], "links": links(call, "flavors", flavor["flavorid"])[1:]}
    if admin:
        out.update({"OS-EXT-SRV-ATTR:host": i.host, "OS-EXT-SRV-ATTR:hypervisor_hostname": i.node,
                    "OS-EXT-SRV-ATTR:instance_name": instances.instance_name(i)})
        if v.at_least("2.3"):
            out.update({"OS-EXT-SRV-ATTR:reservation_id": i.reservation_id,
                        "OS-EXT-SRV-ATTR:launch_index": i.launch_index, "OS-EXT-SRV-ATTR:kernel_id": "",
                        "OS-EXT-SRV-ATTR:ramdisk_id": "", "OS-EXT-SRV-ATTR:hostname": i.hostname,
                        "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda", "OS-EXT-SRV-ATTR:user_data": i.user_data})
        if v.at_least("2.16") and host_status is not None:
            out["host_status"] = host_status
    if v.at_least("2.9"):
        out["locked"] = i.locked
    if v.at_least("2.73"):
        out["locked_reason"] = i.locked_reason
    if v.at_least("2.19"):
        out["description"] = i.display_description
    if v.at_least("2.26"):
        out["tags"] = list(i.tags or ())
    if v.at_least("2.63"):
        out["trusted_image_certificates"] = None
    if v.at_least("2.3"):
        out["os-extended-volumes:volumes_attached"] = []
    if i.fault and i.vm_state == "error":
        fault = dict(i.fault)
        if not (admin or fault.get("code", 500) != 500):
            fault.pop("details", None)
        out["fault"] = fault
    return out


def _micro(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None
