"""Interfaces on the QEMU driver with real guests: each vif a tap on a
bridge. The bridge is made here with no address on the host; a veth pair
joins it to a network namespace of the test's own, where busybox's udhcpd
hands out addresses. A guest whose NIC is up on that link gets an address
(its READY line, or the line the test guest prints for a hot-plugged NIC)
and answers pings from the namespace.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loom import errors
from loom.virt.driver import SpawnFailed
from loom.virt.qemu import QemuDriver, hotplug
from loom.virt.qemu.command import InstancePaths
from tests.integration import test_qemu_driver as base
from tests.integration.test_qemu_driver import file_source, spec
from tests.integration.test_qemu_volumes import last_ready, pci_ids, wait_for_line

guest_image, accelerator, state_dir, make_driver = base.guest_image, base.accelerator, base.state_dir, base.make_driver
SYS_NET = Path("/sys/class/net")


@dataclass
class Lan:
    bridge: str
    namespace: str
    prefix: str  # the first three octets
    taps: list[str]  # of the vifs made for it: deleted after the test whatever happened


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def lan(tmp_path: Path) -> Iterator[Lan]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("busybox") is None:
        pytest.skip("tap networking needs root, iproute2 and busybox (udhcpd)")
    if not Path("/dev/net/tun").exists():
        pytest.skip("this machine has no /dev/net/tun")
    tag = uuid.uuid4().hex[:6]
    bridge, namespace, outside, inside = f"lbr{tag}", f"loom-test-{tag}", f"lvh{tag}", f"lvn{tag}"
    prefix = f"10.{200 + int(tag[:2], 16) % 50}.{int(tag[2:4], 16)}"
    made = Lan(bridge, namespace, prefix, [])
    udhcpd = None
    try:
        ip("netns", "add", namespace)
        ip("link", "add", bridge, "type", "bridge")  # no address on the host: nothing routes out
        ip("link", "set", bridge, "up")
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", outside, "master", bridge, "up")
        ip("link", "set", inside, "netns", namespace)
        ip("-n", namespace, "addr", "add", f"{prefix}.1/24", "dev", inside)
        ip("-n", namespace, "link", "set", inside, "up")
        config = tmp_path / "udhcpd.conf"
        (tmp_path / "leases").touch()
        config.write_text(f"start {prefix}.100\nend {prefix}.150\ninterface {inside}\nlease_file {tmp_path}/leases\n"
                          f"pidfile {tmp_path}/udhcpd.pid\noption subnet 255.255.255.0\n")
        udhcpd = subprocess.Popen(["ip", "netns", "exec", namespace, "busybox", "udhcpd", "-f", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield made
    finally:
        for name in made.taps:
            subprocess.run(["ip", "link", "delete", name], capture_output=True)
        if udhcpd is not None:
            udhcpd.kill()
            udhcpd.wait()
        for command in (("link", "delete", outside), ("link", "delete", bridge), ("netns", "delete", namespace)):
            subprocess.run(["ip", *command], capture_output=True)


def vif(lan: Lan | None, **overrides: Any) -> dict[str, Any]:
    port = str(uuid.uuid4())
    mac = "fa:16:3e:" + ":".join(port.replace("-", "")[i:i + 2] for i in (0, 2, 4))
    made = {"id": port, "mac": mac, "type": "bridge", "bridge": lan.bridge if lan else "", "mtu": 1400,
            **overrides}
    if lan is not None:
        lan.taps.append(tap(made))
    return made


def tap(port: dict[str, Any]) -> str:
    return ("tap" + str(port.get("id")))[:14]


def address_in(line: str, lan: Lan) -> str:
    """The guest's address on the lan, from a marker line's addresses=."""
    field = next(part for part in line.split() if part.startswith("addresses="))
    found = [a.split("/")[0] for a in field.removeprefix("addresses=").split(",") if a.startswith(lan.prefix + ".")]
    assert found, f"no address in {lan.prefix}.0/24 in {line!r}"
    return found[0]


async def answers_ping(lan: Lan, address: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ping = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", lan.namespace, "busybox", "ping", "-c", "1", "-W", "2", address,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        if await ping.wait() == 0:
            return
        assert time.monotonic() < deadline, f"{address} did not answer pings from {lan.namespace} in {timeout}s"
        await asyncio.sleep(1)


@pytest.fixture
async def driver(make_driver: Any) -> QemuDriver:
    return await make_driver()


async def test_a_guest_on_a_tap_gets_its_address_on_the_bridge(
        driver: QemuDriver, guest_image: Path, lan: Lan) -> None:
    port = vif(lan)
    s = spec(networks=[port])
    await driver.spawn(s, file_source(guest_image))
    name = tap(port)
    assert (SYS_NET / name / "master").resolve().name == lan.bridge
    assert (SYS_NET / name / "mtu").read_text().strip() == "1400"
    address = address_in(await last_ready(driver, s.uuid, 1), lan)  # DHCP over the tap and the bridge
    await answers_ping(lan, address)
    await driver.power_off(s.uuid)
    assert (SYS_NET / name).exists()  # the tap lives as long as the instance
    await driver.power_on(s.uuid)
    address = address_in(await last_ready(driver, s.uuid, 2), lan)
    await answers_ping(lan, address)
    await driver.destroy(s.uuid)
    assert not (SYS_NET / name).exists()


async def test_an_interface_hot_plugged_into_a_running_guest_comes_up_and_goes(
        driver: QemuDriver, guest_image: Path, lan: Lan) -> None:
    s = spec()
    paths = InstancePaths(driver.state_dir / "instances" / s.uuid)
    await driver.spawn(s, file_source(guest_image))
    await last_ready(driver, s.uuid, 1)
    port = vif(lan)
    await driver.attach_interface(s.uuid, port)
    added = (await wait_for_line(driver, s.uuid, "LOOM-GUEST-NIC-ADDED"))[0]
    assert f"mac={port['mac']}" in added
    await answers_ping(lan, address_in(added, lan))
    assert (SYS_NET / tap(port) / "master").resolve().name == lan.bridge
    with pytest.raises(errors.Conflict):
        await driver.attach_interface(s.uuid, port)
    with pytest.raises(errors.Conflict, match="would share tap"):  # Nova's names keep 11 characters of the id
        await driver.attach_interface(s.uuid, vif(lan, id=port["id"][:11] + "-other"))

    await driver.detach_interface(s.uuid, port["id"])
    await wait_for_line(driver, s.uuid, "LOOM-GUEST-NIC-REMOVED")
    assert not (SYS_NET / tap(port)).exists()
    assert "nic-" + port["id"][:11] not in await pci_ids(paths)
    with pytest.raises(errors.NotFound):
        await driver.detach_interface(s.uuid, port["id"])

    # Attached while stopped: plugged at the next start, its NIC in the READY line.
    await driver.power_off(s.uuid)
    later = vif(lan)
    await driver.attach_interface(s.uuid, later)
    await driver.power_on(s.uuid)
    await answers_ping(lan, address_in(await last_ready(driver, s.uuid, 2), lan))
    await driver.destroy(s.uuid)
    assert not (SYS_NET / tap(later)).exists()


async def test_refused_vifs_leave_no_tap(driver: QemuDriver, guest_image: Path, lan: Lan) -> None:
    s = spec()
    paths = InstancePaths(driver.state_dir / "instances" / s.uuid)
    await driver.spawn(s, file_source(guest_image))
    refused = [vif(lan, bridge="lbrmissing"), vif(lan, mac="01:00:5e:00:00:01"), vif(lan, mac="nonsense"),
               vif(lan, type="ovs"), vif(lan, mtu=10), vif(lan, id="../etc"), vif(lan, type="bridge", bridge=""),
               {"mac": "fa:16:3e:00:00:01"}]
    for port in refused:
        with pytest.raises(errors.Invalid):
            await driver.attach_interface(s.uuid, port)
        if isinstance(port.get("id"), str) and port["id"][0].isalnum():
            assert not (SYS_NET / tap(port)).exists()
    assert "interfaces" not in hotplug.load(paths)
    await driver.destroy(s.uuid)

    # A spawn whose vif names a missing bridge fails and leaves nothing.
    port = vif(lan, bridge="lbrmissing")
    bad = spec(networks=[port])
    with pytest.raises((errors.Invalid, SpawnFailed)):
        await driver.spawn(bad, file_source(guest_image))
    assert not (SYS_NET / tap(port)).exists()
    assert not (driver.state_dir / "instances" / bad.uuid).exists()


async def test_user_mode_interfaces_when_no_tap_is_wanted(make_driver: Any, guest_image: Path) -> None:
    """compute.qemu_user_network: QEMU's own restricted network, no tap."""
    driver = await make_driver(user_network=True)
    port = vif(None, type=None, bridge="")
    s = spec(networks=[port])
    await driver.spawn(s, file_source(guest_image))
    ready = await last_ready(driver, s.uuid, 1)
    assert "addresses=10.0.2.15/24" in ready, ready  # slirp's DHCP answers even with restrict=on
    assert not (SYS_NET / tap(port)).exists()
    await driver.destroy(s.uuid)
