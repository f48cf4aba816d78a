"""A real guest through the API with the stock CLI: a whole cloud in one
process on the qemu driver (the test guest as its fallback image), driven
by `openstack` as a user would: create --wait, console log show, pause,
suspend/resume, reboot hard and soft, stop/start, delete."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from loom.virt.qemu import process
from tests.functional.cloud import Cloud, running_cloud
from tests.integration.test_qemu_driver import accelerator, guest_image  # noqa: F401  (session fixtures)

READY = "LOOM-GUEST-READY"


@pytest.fixture(scope="module")
def qemu_state() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="loom-qemu-", dir="/tmp"))  # short: socket paths
    yield path
    for pidfile in path.glob("instances/*/qemu.pid"):
        pid = process.guest_pid(pidfile, pidfile.parent.name)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def qemu_cloud(tmp: Path, guest_image: Path, accelerator: str, qemu_state: Path,  # noqa: F811
               **settings: Any) -> AbstractContextManager[Cloud]:
    """A cloud whose compute host runs the qemu driver on the test guest."""
    return running_cloud(tmp, **{
        "image.demo_image": True, "compute.driver": "qemu", "compute.qemu_state_dir": str(qemu_state),
        "compute.qemu_accelerator": accelerator, "compute.qemu_fallback_image": str(guest_image), **settings})


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, guest_image: Path,  # noqa: F811
          accelerator: str, qemu_state: Path) -> Iterator[Cloud]:  # noqa: F811
    with qemu_cloud(tmp_path_factory.mktemp("cloud"), guest_image, accelerator, qemu_state,
                    **{"compute.qemu_soft_reboot_timeout": 60.0}) as c:
        yield c


def console(cloud: Cloud, server: str) -> str:
    return str(cloud.openstack("console", "log", "show", server, parse=False))


def wait_for(cloud: Cloud, server: str, what: str, count: int = 1, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = console(cloud, server)
        if out.count(what) >= count:
            return out
        assert time.monotonic() < deadline, f"no {count}th {what} in {timeout}s:\n{out}"
        time.sleep(1)


def wait_status(cloud: Cloud, server: str, status: str, timeout: float = 180) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        shown = cloud.openstack("server", "show", server)
        if shown["status"] == status:
            return dict(shown)
        assert shown["status"] != "ERROR", json.dumps(shown)
        assert time.monotonic() < deadline, f"server stayed {shown['status']}"
        time.sleep(1)


def test_a_real_guest_through_the_cli(cloud: Cloud, qemu_state: Path) -> None:
    cloud.openstack("flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1", "q.tiny")
    server = cloud.openstack("server", "create", "--flavor", "q.tiny", "--image", "demo", "--config-drive", "true",
                             "--property", "role=web", "--wait", "qemu-vm")
    uuid = str(server["id"])
    assert server["status"] == "ACTIVE"
    out = wait_for(cloud, uuid, READY)
    assert f"hostname=qemu-vm uuid={uuid}" in out and '"role": "web"' in out

    cloud.openstack("server", "pause", uuid)
    shown = wait_status(cloud, uuid, "PAUSED")
    assert shown["OS-EXT-STS:power_state"] in (3, "Paused")
    cloud.openstack("server", "unpause", uuid)
    wait_status(cloud, uuid, "ACTIVE")

    cloud.openstack("server", "suspend", uuid)
    wait_status(cloud, uuid, "SUSPENDED")
    assert process.guest_pid(qemu_state / "instances" / uuid / "qemu.pid", uuid) is None  # saved to disk
    cloud.openstack("server", "resume", uuid)
    wait_status(cloud, uuid, "ACTIVE")
    assert console(cloud, uuid).count(READY) == 1  # the same boot went on

    cloud.openstack("server", "reboot", "--hard", "--wait", uuid)
    wait_for(cloud, uuid, READY, 2)
    cloud.openstack("server", "reboot", "--wait", uuid)
    out = wait_for(cloud, uuid, READY, 3)
    assert "LOOM-GUEST-SHUTDOWN" in out  # the guest restarted itself

    cloud.openstack("server", "stop", uuid)
    wait_status(cloud, uuid, "SHUTOFF")
    assert "LOOM-GUEST-POWER-BUTTON" in console(cloud, uuid)  # a clean ACPI shutdown
    assert process.guest_pid(qemu_state / "instances" / uuid / "qemu.pid", uuid) is None
    cloud.openstack("server", "start", uuid)
    wait_status(cloud, uuid, "ACTIVE")
    wait_for(cloud, uuid, READY, 4)

    cloud.openstack("server", "delete", "--wait", uuid)
    assert not (qemu_state / "instances" / uuid).exists()
