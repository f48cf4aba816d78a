"""Guests that stop or vanish while their compute service is down: when the
service starts again, each server whose guest should run but does not is
SHUTOFF at once (not at the next power sync), with a "stop" action whose
compute_init_host event says what was found; it starts again as usual.
A server already stopped gets no action."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from loom.virt.driver import PowerState
from loom.virt.fake import FakeDriver
from tests.functional.cloud import Cloud
from tests.functional.compute_support import act, admin_fixture, boot, cloud_fixture, events, wait_status

# The periodic sync off: whatever happens here, the restart does it.
cloud = cloud_fixture(**{"compute.sync_power_state_interval": 0})
nova = admin_fixture()


def restart_compute(cloud: Cloud, while_down: Callable[[FakeDriver], Awaitable[Any]]) -> None:
    """Stop the compute service, change its hypervisor while no service
    watches it (``while_down``), and start a new service on the same host."""
    old = next(s for s in cloud.runner.services if s.manager.topic == "compute")
    driver = old.manager.driver
    assert isinstance(driver, FakeDriver)

    async def restart() -> None:
        await old.stop()
        cloud.runner.services.remove(old)
        await while_down(driver)  # the fake keeps its guests on disk: the new driver sees this
        await cloud.runner._start_service(cloud.runner._compute_manager(old.manager.host))

    cloud.run(restart())


def action_messages(nova: httpx.Client, uuid: str) -> dict[str, str | None]:
    listed = nova.get(f"/servers/{uuid}/os-instance-actions").json()["instanceActions"]
    return {a["action"]: a["message"] for a in listed}


def test_guests_gone_while_compute_was_down_become_shutoff(nova: httpx.Client, cloud: Cloud) -> None:
    killed, crashed, vanished, paused, stopped = (boot(nova, cloud) for _ in range(5))
    for uuid in (killed, crashed, vanished, paused, stopped):
        wait_status(nova, uuid, {"ACTIVE"})
    assert act(nova, paused, {"pause": None}).status_code == 202
    assert act(nova, stopped, {"os-stop": None}).status_code == 202
    wait_status(nova, paused, {"PAUSED"})
    wait_status(nova, stopped, {"SHUTOFF"})

    async def break_guests(driver: FakeDriver) -> None:
        await driver.power_off(killed)  # its process died: the guest is there, powered off
        await driver.trigger_crash_dump(crashed)
        await driver.destroy(vanished)
        await driver.destroy(paused)

    restart_compute(cloud, break_guests)

    found = {killed: ("found shut down", PowerState.SHUTDOWN), crashed: ("found crashed", PowerState.CRASHED),
             vanished: ("not found", PowerState.NOSTATE), paused: ("not found", PowerState.NOSTATE)}
    for uuid, (what, state) in found.items():
        server = wait_status(nova, uuid, {"SHUTOFF"})
        assert server["OS-EXT-STS:task_state"] is None
        assert server["OS-EXT-STS:power_state"] == int(state), server
        messages = action_messages(nova, uuid)
        assert what in str(messages.get("stop")), messages
        assert events(nova, uuid, "stop") == [("compute_init_host", "Success")]
        assert "fault" not in server  # as Nova's power sync: a stop, not a failure
    assert list(action_messages(nova, stopped)) == ["stop", "create"]  # the user's stop; nothing new

    # Guests that are still there start again.
    assert act(nova, killed, {"os-start": None}).status_code == 202
    assert wait_status(nova, killed, {"ACTIVE"})["OS-EXT-STS:power_state"] == 1
    assert act(nova, crashed, {"os-start": None}).status_code == 202
    wait_status(nova, crashed, {"ACTIVE"})
    for uuid in (killed, crashed, vanished, paused, stopped):
        assert nova.delete(f"/servers/{uuid}").status_code == 204
        wait_status(nova, uuid, {"DELETED"})
