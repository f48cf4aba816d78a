"""The config drive: an ISO 9660 image labelled ``config-2`` holding the
instance's OpenStack and EC2 metadata, user data and keys, as Nova writes
it, so that a guest has its metadata before any network exists."""

from __future__ import annotations

import base64
import binascii
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from loom.virt.driver import InstanceSpec, SpawnFailed
from loom.virt.qemu.images import run

LABEL = "config-2"
ISO_TOOLS = ("genisoimage", "xorrisofs", "mkisofs")


def openstack_metadata(spec: InstanceSpec) -> dict[str, Any]:
    data: dict[str, Any] = {
        "uuid": spec.uuid, "name": spec.name, "hostname": spec.hostname, "launch_index": 0,
        "availability_zone": "nova", "meta": dict(spec.metadata),
    }
    if spec.key_data:
        data["public_keys"] = {"default": spec.key_data}
        data["keys"] = [{"name": "default", "type": "ssh", "data": spec.key_data}]
    return data


def ec2_metadata(spec: InstanceSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"instance-id": spec.uuid, "hostname": spec.hostname, "local-hostname": spec.hostname,
                            "ami-launch-index": 0}
    if spec.key_data:
        data["public-keys"] = {"0": {"openssh-key": spec.key_data}}
    return data


def files(spec: InstanceSpec) -> dict[str, bytes]:
    """The drive's files by path. JSON on one line: the test guest prints it."""
    meta = json.dumps(openstack_metadata(spec), sort_keys=True).encode()
    out = {"openstack/latest/meta_data.json": meta,
           "openstack/latest/network_data.json": json.dumps({"links": [], "networks": [], "services": []}).encode(),
           "ec2/latest/meta-data.json": json.dumps(ec2_metadata(spec), sort_keys=True).encode()}
    if spec.user_data:
        try:
            user_data = base64.b64decode(spec.user_data, validate=True)
        except (binascii.Error, ValueError):
            raise SpawnFailed(f"the user data of instance {spec.uuid} is not base64") from None
        out["openstack/latest/user_data"] = user_data
        out["ec2/latest/user-data"] = user_data
    return out


async def build(spec: InstanceSpec, target: Path) -> None:
    tool = next((t for t in ISO_TOOLS if shutil.which(t)), None)
    if tool is None:
        raise SpawnFailed("a config drive needs genisoimage (or xorriso) on the compute host")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        root = Path(tmp, "drive")
        for name, content in files(spec).items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        await run(tool, "-quiet", "-o", str(target), "-V", LABEL, "-r", "-J", "-l", str(root))
