"""Acceptance of the first server actions (stop, start, reboot, pause,
unpause, suspend, resume, lock, unlock): through the stock CLI end to end
over the bus with the fake driver, and over plain HTTP for what the CLI
cannot show: Nova's refusals, concurrent actions, driver failures."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from loom.compute import power
from loom.virt.driver import DriverError
from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    act,
    act_at_once,
    admin_fixture,
    boot,
    cloud_fixture,
    driver_of,
    events,
    member_compute,
    member_fixture,
    settled,
    states,
)
from tests.functional.test_identity_support import Member

cloud = cloud_fixture()
nova = admin_fixture()
member = member_fixture()

STOPPED, RUNNING, PAUSED, SUSPENDED = 4, 1, 3, 7


@pytest.fixture(scope="module")
def server(cloud: Cloud, nova: httpx.Client) -> str:
    """An ACTIVE admin server; every test leaves it ACTIVE and unlocked."""
    server_id = boot(nova, cloud, name="acted-on")
    settled(nova, server_id, "ACTIVE")
    return server_id


def test_every_action_through_the_cli(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    steps = [
        (("stop",), "SHUTOFF", ("stopped", None, STOPPED)),
        (("start",), "ACTIVE", ("active", None, RUNNING)),
        (("reboot", "--soft", "--wait"), "ACTIVE", ("active", None, RUNNING)),
        (("pause",), "PAUSED", ("paused", None, PAUSED)),
        (("reboot", "--hard", "--wait"), "ACTIVE", ("active", None, RUNNING)),
        (("pause",), "PAUSED", ("paused", None, PAUSED)),
        (("unpause",), "ACTIVE", ("active", None, RUNNING)),
        (("suspend",), "SUSPENDED", ("suspended", None, SUSPENDED)),
        (("resume",), "ACTIVE", ("active", None, RUNNING)),
    ]
    boots = driver_of(cloud, nova, server)._guests[server].boots
    for args, status, expected in steps:
        cloud.openstack("server", args[0], *args[1:], server)
        assert states(settled(nova, server, status)) == expected, args
    # start, two reboots: three more boots of the guest.
    assert driver_of(cloud, nova, server)._guests[server].boots == boots + 3

    cloud.openstack("server", "lock", "--reason", "maintenance", server)
    shown = nova.get(f"/servers/{server}").json()["server"]
    assert (shown["locked"], shown["locked_reason"]) == (True, "maintenance")
    cloud.openstack("server", "unlock", server)
    shown = nova.get(f"/servers/{server}").json()["server"]
    assert (shown["locked"], shown["locked_reason"]) == (False, None)

    listed = cloud.openstack("server", "event", "list", server)
    assert [e["Action"] for e in listed][:11] == [
        "unlock",
        "lock",
        "resume",
        "suspend",
        "unpause",
        "pause",
        "reboot",
        "pause",
        "reboot",
        "start",
        "stop",
    ]
    for action in ("stop", "start", "reboot", "pause", "unpause", "suspend", "resume"):
        assert events(nova, server, action) == [
            (f"compute_{action}_instance", "Success")
        ]
    assert events(nova, server, "lock") == [("api_lock", "Success")]


def test_an_action_in_the_wrong_state_is_refused_as_nova_does(nova: httpx.Client, server: str) -> None:
    for body, action in (({"os-start": None}, "start"), ({"unpause": None}, "unpause"), ({"resume": None}, "resume")):
        r = act(nova, server, body)
        assert r.status_code == 409, r.text
        assert r.json() == {
            "conflictingRequest": {
                "code": 409,
                "message": f"Cannot '{action}' instance {server} while it is in vm_state active",
            }
        }
    assert act(nova, server, {"pause": None}).status_code == 202
    settled(nova, server, "PAUSED")
    r = act(nova, server, {"reboot": {"type": "SOFT"}})
    assert r.json()["conflictingRequest"]["message"] == (
        f"Cannot 'reboot' instance {server} while it is in vm_state paused"
    )
    assert act(nova, server, {"unpause": None}).status_code == 202
    settled(nova, server, "ACTIVE")


def test_malformed_actions_are_a_400(nova: httpx.Client, server: str) -> None:
    r = act(nova, server, {"frobnicate": None})
    assert (r.status_code, r.json()["badRequest"]["message"]) == (400, "There is no such action: frobnicate")
    for body in ({}, {"os-stop": None, "pause": None}):
        r = act(nova, server, body)
        assert (r.status_code, r.json()["badRequest"]["message"]) == (400, "Malformed request body")
    for reboot in ({"type": "GENTLE"}, {}, {"type": "SOFT", "force": True}, None):
        assert act(nova, server, {"reboot": reboot}).status_code == 400
    assert act(nova, server, {"lock": {"locked_reason": ""}}).status_code == 400
    assert act(nova, "0e6d5d5e-0000-4000-8000-000000000000", {"os-stop": None}).status_code == 404


def test_locks_as_nova_keeps_them(cloud: Cloud, nova: httpx.Client, member: Member) -> None:
    with member_compute(cloud, member) as mine:
        server_id = boot(mine, cloud, name="theirs")
        settled(nova, server_id, "ACTIVE")
        assert act(nova, server_id, {"lock": {"locked_reason": "audit"}}).status_code == 202
        r = act(mine, server_id, {"os-stop": None})
        assert r.status_code == 409
        assert r.json()["conflictingRequest"]["message"] == f"Instance {server_id} is locked"
        # The admin's lock needs unlock_override, which members lack.
        r = act(mine, server_id, {"unlock": None})
        assert r.status_code == 403, r.text
        assert "unlock_override" in r.json()["forbidden"]["message"]
        assert act(nova, server_id, {"os-stop": None}).status_code == 202  # admins pass a lock
        settled(nova, server_id, "SHUTOFF")
        assert act(nova, server_id, {"unlock": None}).status_code == 202
        assert act(mine, server_id, {"lock": None}).status_code == 202
        shown = mine.get(f"/servers/{server_id}").json()["server"]
        assert (shown["locked"], shown["locked_reason"]) == (True, None)
        assert act(mine, server_id, {"unlock": None}).status_code == 202
        assert act(mine, server_id, {"os-start": None}).status_code == 202
        settled(nova, server_id, "ACTIVE")


def test_of_two_concurrent_actions_one_wins(
    cloud: Cloud, nova: httpx.Client, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_of(cloud, nova, server), "op_delay", 0.3)
    answers = act_at_once(nova, server, {"os-stop": None}, {"pause": None})
    assert sorted(answers.values()) == [202, 409], answers
    if answers["os-stop"] == 202:
        assert states(settled(nova, server, "SHUTOFF")) == ("stopped", None, STOPPED)
        assert act(nova, server, {"os-start": None}).status_code == 202
    else:
        assert states(settled(nova, server, "PAUSED")) == ("paused", None, PAUSED)
        assert act(nova, server, {"unpause": None}).status_code == 202
    settled(nova, server, "ACTIVE")


def test_a_driver_failure_leaves_the_server_usable(
    cloud: Cloud, nova: httpx.Client, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(uuid: str) -> None:
        raise DriverError("injected pause failure")

    monkeypatch.setattr(driver_of(cloud, nova, server), "pause", broken)
    assert act(nova, server, {"pause": None}).status_code == 202
    assert states(settled(nova, server, "ACTIVE")) == ("active", None, RUNNING)
    assert events(nova, server, "pause") == [("compute_pause_instance", "Error")]


@pytest.mark.parametrize("failure", ["error", "timeout"])
def test_a_failed_soft_reboot_falls_back_to_hard(
    cloud: Cloud, nova: httpx.Client, server: str, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = driver_of(cloud, nova, server)
    real, calls = driver.reboot, []

    async def reboot(uuid: str, hard: bool) -> None:
        calls.append(hard)
        if not hard and failure == "error":
            raise DriverError("the guest ignored the reboot request")
        if not hard:
            await asyncio.sleep(30)
        await real(uuid, hard)

    monkeypatch.setattr(driver, "reboot", reboot)
    monkeypatch.setattr(power, "SOFT_REBOOT_TIMEOUT", 0.2)
    assert act(nova, server, {"reboot": {"type": "SOFT"}}).status_code == 202
    assert states(settled(nova, server, "ACTIVE")) == ("active", None, RUNNING)
    assert calls == [False, True]
    assert events(nova, server, "reboot") == [
        ("compute_reboot_instance", "Success")
    ]
