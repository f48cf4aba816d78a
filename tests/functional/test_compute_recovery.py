"""A compute service that restarts reconciles its host, and the periodic
power-state sync follows the hypervisor: nothing stays in BUILD or in a
task state, vanished guests become SHUTOFF with an action saying so, the
guests of deleted instances are removed (unknown ones are left alone), and
guests nobody owns are removed."""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import update

from loom.compute import power_sync, recover
from loom.compute.rpcapi import ComputeAPI
from loom.conductor.build import instance_dict
from loom.context import RequestContext
from loom.db.models import Instance
from loom.objects import instances
from loom.virt.driver import InstanceSpec, PowerState
from tests.functional.cloud import Cloud
from tests.functional.compute_support import admin_fixture, boot, cloud_fixture, wait_status

cloud = cloud_fixture(**{"compute.sync_power_state_interval": 0})
nova = admin_fixture()


def compute_service(cloud: Cloud) -> Any:
    return next(s for s in cloud.runner.services if s.manager.topic == "compute")


def restart_compute(cloud: Cloud) -> None:
    """Stop the compute service and start a new one on the same host and
    hypervisor, as a restarted process would find it."""
    old = compute_service(cloud)

    async def restart() -> None:
        await old.stop()
        cloud.runner.services.remove(old)
        await cloud.runner._start_service(cloud.runner._compute_manager(old.manager.host))

    cloud.run(restart())


def set_instance(cloud: Cloud, uuid: str, **values: Any) -> None:
    async def write() -> None:
        assert cloud.runner.db is not None
        async with cloud.runner.db.session.begin() as session:
            await session.execute(update(Instance).where(Instance.uuid == uuid).values(**values))

    cloud.run(write())


def actions(nova: httpx.Client, uuid: str) -> list[str]:
    r = nova.get(f"/servers/{uuid}/os-instance-actions")
    assert r.status_code == 200, r.text
    return [a["action"] for a in r.json()["instanceActions"]]


def test_guests_outlive_a_compute_restart(nova: httpx.Client, cloud: Cloud) -> None:
    uuid = boot(nova, cloud)
    wait_status(nova, uuid, {"ACTIVE"})
    restart_compute(cloud)
    server = nova.get(f"/servers/{uuid}").json()["server"]
    assert server["status"] == "ACTIVE" and server["OS-EXT-STS:power_state"] == 1
    assert actions(nova, uuid) == ["create"]


def test_restart_settles_every_interrupted_operation(nova: httpx.Client, cloud: Cloud) -> None:
    built, lost, deleting, busy, gone = (boot(nova, cloud) for _ in range(5))
    for uuid in (built, lost, deleting, busy, gone):
        wait_status(nova, uuid, {"ACTIVE"})
    driver = compute_service(cloud).manager.driver
    cloud.run(driver.destroy(lost))
    # The process died after the guest came up but before it said so; while
    # deleting one server; in the middle of some other operation.
    set_instance(cloud, built, vm_state="building", task_state="spawning")
    set_instance(cloud, lost, vm_state="building", task_state="spawning")
    set_instance(cloud, deleting, task_state="deleting")
    set_instance(cloud, busy, task_state="powering-off")
    # Deleted while the host was away: its guest is still there.
    set_instance(cloud, gone, vm_state="deleted", deleted=True)
    orphan = InstanceSpec(uuid="0f0f0f0f-0000-4000-8000-000000000001", name="orphan", hostname="orphan", vcpus=1,
                          memory_mb=64, root_gb=1)
    cloud.run(driver.spawn(orphan))

    restart_compute(cloud)

    assert wait_status(nova, built, {"ACTIVE"})["OS-EXT-STS:task_state"] is None
    # Once no redelivered build took it up (the queue is drained), it fails.
    failed = wait_status(nova, lost, {"ERROR"})
    assert failed["OS-EXT-STS:task_state"] is None
    assert "interrupted by a restart" in failed["fault"]["message"]
    assert nova.get(f"/servers/{deleting}").status_code == 404
    settled = nova.get(f"/servers/{busy}").json()["server"]
    assert settled["status"] == "ACTIVE" and settled["OS-EXT-STS:task_state"] is None
    assert actions(nova, busy)[0] == "reset"
    new_driver = compute_service(cloud).manager.driver
    listed = cloud.run(new_driver.list_instances())
    assert gone not in listed and deleting not in listed and built in listed
    assert orphan.uuid in listed  # nobody's: logged, not destroyed
    cloud.run(new_driver.destroy(orphan.uuid))


def test_a_vanished_guest_becomes_shutoff_on_restart(nova: httpx.Client, cloud: Cloud) -> None:
    uuid = boot(nova, cloud)
    wait_status(nova, uuid, {"ACTIVE"})
    cloud.run(compute_service(cloud).manager.driver.destroy(uuid))
    restart_compute(cloud)
    server = nova.get(f"/servers/{uuid}").json()["server"]
    assert server["status"] == "SHUTOFF" and server["OS-EXT-STS:power_state"] == 0
    assert actions(nova, uuid)[0] == "stop"
    events = nova.get(f"/servers/{uuid}/os-instance-actions/{_request_id(nova, uuid, 'stop')}").json()
    assert events["instanceAction"]["events"][0]["event"] == "compute_init_host"
    assert "not found" in events["instanceAction"]["message"]
    # A SHUTOFF server without a guest can still be deleted.
    assert nova.delete(f"/servers/{uuid}").status_code == 204
    wait_status(nova, uuid, {"DELETED"})


def _request_id(nova: httpx.Client, uuid: str, action: str) -> str:
    listed = nova.get(f"/servers/{uuid}/os-instance-actions").json()["instanceActions"]
    return str(next(a["request_id"] for a in listed if a["action"] == action))


def test_power_sync_follows_the_hypervisor(nova: httpx.Client, cloud: Cloud) -> None:
    stopped_outside, vanished = boot(nova, cloud), boot(nova, cloud)
    for uuid in (stopped_outside, vanished):
        wait_status(nova, uuid, {"ACTIVE"})
    manager = compute_service(cloud).manager
    cloud.run(manager.driver.power_off(stopped_outside))
    cloud.run(manager.driver.destroy(vanished))
    cloud.run(power_sync.sync_power_states(manager))
    server = nova.get(f"/servers/{stopped_outside}").json()["server"]
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("SHUTOFF", int(PowerState.SHUTDOWN))
    assert actions(nova, stopped_outside)[0] == "stop"
    # Not found is only noted, as in Nova: the next start of the service settles it.
    server = nova.get(f"/servers/{vanished}").json()["server"]
    assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", int(PowerState.NOSTATE))
    assert actions(nova, vanished) == ["create"]
    # A stopped server whose guest runs again is powered off.
    cloud.run(manager.driver.power_on(stopped_outside))
    cloud.run(power_sync.sync_power_states(manager))
    info = cloud.run(manager.driver.get_info(stopped_outside))
    assert info.power_state == PowerState.SHUTDOWN
    assert nova.get(f"/servers/{stopped_outside}").json()["server"]["status"] == "SHUTOFF"


def test_a_build_redelivered_after_a_restart_goes_on(nova: httpx.Client, cloud: Cloud) -> None:
    """A durable broker hands the restarted host the build its old process
    never finished: the build is not failed meanwhile, and ends ACTIVE."""
    uuid = boot(nova, cloud)
    wait_status(nova, uuid, {"ACTIVE"})
    host = compute_service(cloud).manager.host
    cloud.run(compute_service(cloud).manager.driver.destroy(uuid))
    set_instance(cloud, uuid, vm_state="building", task_state="spawning", launched_at=None)

    async def redeliver() -> None:
        async with cloud.runner.db.session() as session:
            row = await instances.get_any(session, uuid)
        await ComputeAPI(cloud.runner.bus).build_and_run_instance(
            RequestContext.for_service("test"), host, instance_dict(row), {}, [])

    restart_compute(cloud)
    cloud.run(redeliver())
    server = wait_status(nova, uuid, {"ACTIVE", "ERROR"})
    assert server["status"] == "ACTIVE", server.get("fault")
    manager = compute_service(cloud).manager
    deadline = time.monotonic() + recover.DRAIN_WAIT
    while manager._settling is not None and not manager._settling.done():  # the host settles what it found
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server = nova.get(f"/servers/{uuid}").json()["server"]
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    assert compute_service(cloud).manager.driver.guest(uuid)
    assert nova.delete(f"/servers/{uuid}").status_code == 204
    wait_status(nova, uuid, {"DELETED"})
