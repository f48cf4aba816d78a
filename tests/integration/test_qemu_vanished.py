"""A real guest whose QEMU dies while its compute service is down: the
service, started again, finds the guest's directory but no process, and
makes the server SHUTOFF with a "stop" action (event compute_init_host)
instead of losing it silently; ``openstack server start`` boots it again,
in its cgroup where the host has them.

One guest of 128 MB under the session's accelerator (TCG here).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loom.virt.qemu import cgroups, process
from tests.functional.cloud import Cloud
from tests.integration.test_qemu_api import console, qemu_cloud, qemu_state, wait_for, wait_status  # noqa: F401  (fixture)
from tests.integration.test_qemu_driver import accelerator, guest_image  # noqa: F401  (session fixtures)

READY = "LOOM-GUEST-READY"
FLAVOR = "q.vanished"
PARENT = f"loom-test-{uuid.uuid4().hex[:8]}.slice"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path,  # noqa: F811
          accelerator: str, qemu_state: Path) -> Iterator[Cloud]:  # noqa: F811
    with qemu_cloud(tmp_path_factory.mktemp("cloud"), guest_image, accelerator, qemu_state,
                    **{"compute.qemu_cgroup_parent": PARENT, "compute.sync_power_state_interval": 0}) as c:
        c.openstack("flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1", FLAVOR)
        yield c
    probe = cgroups.Cgroups("auto", PARENT)
    probe.probe()  # finds (or makes) the parent in each hierarchy: removed with it
    for base in probe._bases:
        base.rmdir()


def compute_service(cloud: Cloud) -> Any:
    return next(s for s in cloud.runner.services if s.manager.topic == "compute")


def qemu_pid(qemu_state: Path, server: str) -> int | None:  # noqa: F811
    return process.guest_pid(qemu_state / "instances" / server / "qemu.pid", server)


def test_a_guest_killed_while_compute_is_down_is_shutoff_then_starts(cloud: Cloud,
                                                                      qemu_state: Path) -> None:  # noqa: F811
    server = str(cloud.openstack("server", "create", "--flavor", FLAVOR, "--image", "demo", "--wait",
                                 "vanishing")["id"])
    wait_for(cloud, server, READY)
    pid = qemu_pid(qemu_state, server)
    assert pid is not None
    old = compute_service(cloud)

    async def restart() -> None:
        await old.stop()
        cloud.runner.services.remove(old)
        os.kill(pid, signal.SIGKILL)  # while no compute service watches it
        deadline = time.monotonic() + 60
        while qemu_pid(qemu_state, server) is not None:
            assert time.monotonic() < deadline, f"QEMU {pid} outlived SIGKILL"
            await asyncio.sleep(0.1)
        await cloud.runner._start_service(cloud.runner._compute_manager(old.manager.host))

    cloud.run(restart())

    shown = wait_status(cloud, server, "SHUTOFF")
    assert shown["OS-EXT-STS:task_state"] is None and shown["OS-EXT-STS:power_state"] in (4, "Shutdown"), shown
    actions = cloud.openstack("server", "event", "list", server)
    assert [a["Action"] for a in actions] == ["stop", "create"], actions
    stop = cloud.openstack("server", "event", "show", server, actions[0]["Request ID"])
    assert "found shut down" in str(stop["message"]), stop
    assert "compute_init_host" in str(stop["events"]), stop
    # The directory (disk, spec) stayed: the server starts again.
    cloud.openstack("server", "start", server)
    wait_status(cloud, server, "ACTIVE")
    wait_for(cloud, server, READY, count=2)  # the console log spans both boots
    restarted = qemu_pid(qemu_state, server)
    assert restarted is not None and restarted != pid
    group = compute_service(cloud).manager.driver.cgroups.group(server)
    if group is not None:  # the host delegates cgroups: the new QEMU is in the guest's group
        assert group.holds(restarted)
    cloud.openstack("server", "delete", "--wait", server)
    assert not (qemu_state / "instances" / server).exists()
    if group is not None:
        assert not any(d.exists() for d in group.directories)
