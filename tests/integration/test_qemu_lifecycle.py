"""Real guests through the API across a compute restart and a snapshot: a
whole cloud in one process on the qemu driver, driven with the stock CLI.

- Two guests run while the compute service stops and a new one starts on
  the same host (as a restarted process would): both keep their QEMU
  processes, stay ACTIVE, and answer through the new service (console log,
  pause and unpause over a fresh QMP connection).
- ``openstack server image create --wait`` of a running guest makes an
  image that boots: a new server from it prints its own READY line.

Guests of 128 MB under the session's accelerator (TCG here), at most two at
a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loom.virt.qemu import process
from tests.functional.cloud import Cloud, running_cloud
from tests.integration.test_qemu_api import console, qemu_state, wait_for, wait_status  # noqa: F401  (fixture)
from tests.integration.test_qemu_driver import accelerator, guest_image  # noqa: F401  (session fixtures)

READY = "LOOM-GUEST-READY"
FLAVOR = "q.lifecycle"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path,  # noqa: F811
          accelerator: str, qemu_state: Path) -> Iterator[Cloud]:  # noqa: F811
    with running_cloud(tmp_path_factory.mktemp("cloud"), **{
            "image.demo_image": True, "compute.driver": "qemu", "compute.qemu_state_dir": str(qemu_state),
            "compute.qemu_accelerator": accelerator, "compute.qemu_fallback_image": str(guest_image)}) as c:
        c.openstack("flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1", FLAVOR)
        yield c


def compute_service(cloud: Cloud) -> Any:
    return next(s for s in cloud.runner.services if s.manager.topic == "compute")


def restart_compute(cloud: Cloud) -> None:
    """Stop the compute service and start a new one (a new driver) on the
    same host and state directory, as a restarted process would."""
    old = compute_service(cloud)

    async def restart() -> None:
        await old.stop()
        cloud.runner.services.remove(old)
        await cloud.runner._start_service(cloud.runner._compute_manager(old.manager.host))

    cloud.run(restart())
    assert compute_service(cloud) is not old


def boot(cloud: Cloud, name: str, image: str = "demo") -> str:
    server = cloud.openstack("server", "create", "--flavor", FLAVOR, "--image", image, "--wait", name)
    assert server["status"] == "ACTIVE", server
    return str(server["id"])


def qemu_pid(qemu_state: Path, uuid: str) -> int | None:  # noqa: F811
    return process.guest_pid(qemu_state / "instances" / uuid / "qemu.pid", uuid)


def test_guests_keep_running_across_a_compute_restart(cloud: Cloud, qemu_state: Path) -> None:  # noqa: F811
    servers = [boot(cloud, "keep-1"), boot(cloud, "keep-2")]
    for uuid in servers:
        wait_for(cloud, uuid, READY)
    pids = {uuid: qemu_pid(qemu_state, uuid) for uuid in servers}
    assert all(pids.values()), pids

    restart_compute(cloud)

    for uuid in servers:
        assert qemu_pid(qemu_state, uuid) == pids[uuid]  # the same QEMU, never restarted
        shown = wait_status(cloud, uuid, "ACTIVE")
        assert shown["OS-EXT-STS:power_state"] in (1, "Running"), shown
        out = console(cloud, uuid)
        assert out.count(READY) == 1 and f"uuid={uuid}" in out  # the same boot, read by the new service
        # The new driver reaches the guest over QMP.
        cloud.openstack("server", "pause", uuid)
        wait_status(cloud, uuid, "PAUSED")
        cloud.openstack("server", "unpause", uuid)
        wait_status(cloud, uuid, "ACTIVE")
        assert qemu_pid(qemu_state, uuid) == pids[uuid]
    actions = cloud.openstack("server", "event", "list", servers[0])
    assert sorted(a["Action"] for a in actions) == ["create", "pause", "unpause"]

    for uuid in servers:
        cloud.openstack("server", "delete", "--wait", uuid)
        assert not (qemu_state / "instances" / uuid).exists()


def test_a_snapshot_of_a_running_guest_boots(cloud: Cloud, qemu_state: Path) -> None:  # noqa: F811
    original = boot(cloud, "snap-source")
    wait_for(cloud, original, READY)
    image = cloud.openstack("server", "image", "create", "--name", "lifecycle-snap", "--wait", original)
    shown = cloud.openstack("image", "show", str(image["id"]))
    assert shown["status"] == "active" and shown["disk_format"] == "qcow2", shown
    wait_status(cloud, original, "ACTIVE")  # running again after the copy
    cloud.openstack("server", "delete", "--wait", original)

    copy = boot(cloud, "snap-copy", image=str(image["id"]))
    out = wait_for(cloud, copy, READY)
    assert f"{READY} hostname=loom-guest uuid={copy}" in out  # its own boot (no config drive: no name)
    cloud.openstack("server", "delete", "--wait", copy)
    cloud.openstack("image", "delete", str(image["id"]))
    assert not (qemu_state / "instances" / copy).exists()
