"""The shapes the QEMU driver accepts for volumes and vifs, and what it
makes of them (blockdev nodes, tap names). No QEMU."""

from __future__ import annotations

from pathlib import Path

import pytest

from loom import errors
from loom.virt.qemu import interfaces, volumes

PORT = "3f1b2c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"


def test_a_file_volume_becomes_a_protocol_node_and_a_format_node(tmp_path: Path) -> None:
    path = tmp_path / "volume.qcow2"
    path.write_bytes(b"")
    volume = volumes.describe({"driver_volume_type": "file", "serial": "vol-1",
                               "data": {"device_path": str(path), "format": "qcow2", "access_mode": "ro"}},
                              "/dev/vdc")
    assert volumes.nodes(volume) == [
        {"driver": "file", "filename": str(path), "node-name": "volume-vdc-file", "read-only": True},
        {"driver": "qcow2", "file": "volume-vdc-file", "node-name": "volume-vdc", "read-only": True}]
    assert volumes.device(volume) == {"driver": "virtio-blk-pci", "drive": "volume-vdc", "id": "volume-vdc",
                                      "serial": "vol-1"}


def test_the_volume_id_is_the_serial_when_no_serial_is_given(tmp_path: Path) -> None:
    (tmp_path / "v").write_bytes(b"")
    volume = volumes.describe({"driver_volume_type": "local",
                               "data": {"device_path": str(tmp_path / "v"), "volume_id": PORT}}, "/dev/vdb")
    assert volume["serial"] == PORT and volume["protocol"] == "file" and not volume["read_only"]


def test_a_local_block_device_is_a_host_device_node() -> None:
    block = next((p for p in Path("/dev").iterdir() if p.is_block_device()), None)
    if block is None:
        pytest.skip("no block device in /dev here")
    volume = volumes.describe({"driver_volume_type": "local", "data": {"device_path": str(block)}}, "/dev/vdb")
    assert volumes.nodes(volume)[0]["driver"] == "host_device"
    with pytest.raises(errors.Invalid, match="not a regular file"):  # a file volume is a file
        volumes.describe({"driver_volume_type": "file", "data": {"device_path": str(block)}}, "/dev/vdb")


@pytest.mark.parametrize("kind", ["iscsi", "rbd", "nfs", None])
def test_volumes_needing_a_connector_are_refused(kind: str | None, tmp_path: Path) -> None:
    with pytest.raises(errors.Invalid, match="cannot attach volumes of driver_volume_type"):
        volumes.describe({"driver_volume_type": kind, "data": {"device_path": str(tmp_path)}}, "/dev/vdb")


def test_taps_are_named_as_nova_names_them() -> None:
    vif = interfaces.describe({"id": PORT, "address": "FA:16:3E:01:02:03",
                               "network": {"bridge": "brq1234", "meta": {"mtu": 1450}}})
    assert vif["tap"] == "tap3f1b2c4d-5e" and len(vif["tap"]) == 14
    assert (vif["mac"], vif["bridge"], vif["mtu"]) == ("fa:16:3e:01:02:03", "brq1234", 1450)
    assert interfaces.netdev(vif, user_network=False) == {
        "type": "tap", "id": "net-3f1b2c4d-5e", "ifname": "tap3f1b2c4d-5e", "script": "no", "downscript": "no",
        "vhost": False}
    assert interfaces.device(vif)["host_mtu"] == 1450


@pytest.mark.parametrize("vif", [
    {"mac": "fa:16:3e:00:00:01"},
    {"id": "a b", "mac": "fa:16:3e:00:00:01"},
    {"id": PORT},
    {"id": PORT, "mac": "01:16:3e:00:00:01"},  # multicast
    {"id": PORT, "mac": "fa:16:3e:00:00:01", "type": "vhostuser"},
    {"id": PORT, "mac": "fa:16:3e:00:00:01", "type": "bridge"},  # and no bridge
    {"id": PORT, "mac": "fa:16:3e:00:00:01", "bridge": "br;rm"},
    {"id": PORT, "mac": "fa:16:3e:00:00:01", "mtu": "1500"},
    {"id": PORT, "mac": "fa:16:3e:00:00:01", "mtu": 67},
])
def test_vifs_out_of_shape_are_refused(vif: dict[str, object]) -> None:
    with pytest.raises(errors.Invalid):
        interfaces.describe(vif)
