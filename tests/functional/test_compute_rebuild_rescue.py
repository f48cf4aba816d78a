"""Acceptance of rebuild, rescue/unrescue, console output, changePassword,
trigger_crash_dump and os-resetState: through the stock CLI end to end over
the bus with the fake driver, and over plain HTTP for Nova's refusals,
response bodies per microversion, driver failures and concurrent actions."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loom.virt.driver import DriverError, NotSupported
from loom.virt.fake import BOOT_MARKER, RESCUE_MARKER
from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    act,
    act_at_once,
    admin_fixture,
    admin_token,
    boot,
    cloud_fixture,
    compute_client,
    demo_image,
    driver_of,
    events,
    member_compute,
    member_fixture,
    message,
    settled,
    states,
    wait_status,
)
from tests.functional.test_identity_support import Member
from tests.functional.test_image_support import active, admin_images, create

cloud = cloud_fixture()
nova = admin_fixture()
member = member_fixture()

STOPPED, RUNNING = 4, 1


@pytest.fixture(scope="module")
def images(cloud: Cloud) -> Iterator[httpx.Client]:
    with admin_images(cloud) as client:
        yield client


@pytest.fixture(scope="module")
def new_image(images: httpx.Client) -> str:
    """A second public image to rebuild with."""
    return str(active(images, b"another root disk", visibility="public")["id"])


@pytest.fixture(scope="module")
def server(cloud: Cloud, nova: httpx.Client) -> str:
    """An ACTIVE admin server; every test leaves it ACTIVE."""
    server_id = boot(nova, cloud, name="worked-on")
    settled(nova, server_id, "ACTIVE")
    return server_id


def allocation_records(cloud: Cloud, server_id: str) -> dict[str, Any]:
    """Placement's records of what the server holds, with each provider's
    generation: an equal record later means nothing was released and claimed
    again meanwhile."""
    r = httpx.get(f"{cloud.url}/placement/allocations/{server_id}", timeout=30,
                  headers={"X-Auth-Token": admin_token(cloud), "OpenStack-API-Version": "placement latest"})
    assert r.status_code == 200, r.text
    return dict(r.json()["allocations"])


def guest(cloud: Cloud, nova: httpx.Client, server_id: str) -> Any:
    return driver_of(cloud, nova, server_id).guest(server_id)


def wait_for(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# Rebuild


def test_rebuild_through_the_cli(cloud: Cloud, nova: httpx.Client, server: str, new_image: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = nova.get(f"/servers/{server}").json()["server"]
    held = allocation_records(cloud, server)
    assert held
    boots = guest(cloud, nova, server).boots
    monkeypatch.setattr(driver_of(cloud, nova, server), "op_delay", 0.5)
    shown = cloud.openstack("server", "rebuild", "--image", new_image, "--name", "rebuilt", server, "-f", "json")
    assert (shown["id"], shown["status"]) == (server, "REBUILD")
    after = settled(nova, server, "ACTIVE")
    assert states(after) == ("active", None, RUNNING)
    assert (after["id"], after["name"], after["image"]["id"]) == (server, "rebuilt", new_image)
    assert after["OS-EXT-SRV-ATTR:host"] == before["OS-EXT-SRV-ATTR:host"]
    assert after["image"]["id"] != before["image"]["id"]
    assert allocation_records(cloud, server) == held
    rebuilt = guest(cloud, nova, server)
    assert (rebuilt.spec.image_id, rebuilt.boots) == (new_image, boots + 1)
    assert events(nova, server, "rebuild") == [
        ("rebuild_server", "Success"), ("compute_rebuild_instance", "Success")]


def test_a_stopped_server_is_rebuilt_stopped(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    assert act(nova, server, {"os-stop": None}).status_code == 202
    settled(nova, server, "SHUTOFF")
    r = act(nova, server, {"rebuild": {"imageRef": demo_image(nova, cloud)}})
    assert r.status_code == 202, r.text
    assert states(settled(nova, server, "SHUTOFF")) == ("stopped", None, STOPPED)
    assert guest(cloud, nova, server).spec.image_id == demo_image(nova, cloud)
    assert act(nova, server, {"os-start": None}).status_code == 202
    settled(nova, server, "ACTIVE")


def test_the_rebuild_response_follows_the_microversion(cloud: Cloud, nova: httpx.Client, server: str,
                                                       new_image: str) -> None:
    token = nova.headers["X-Auth-Token"]
    with compute_client(cloud, token, None) as old:
        r = act(old, server, {"rebuild": {"imageRef": new_image, "adminPass": "s3cret-pass"}})
    assert r.status_code == 202, r.text
    assert r.headers["location"].endswith(f"/servers/{server}")
    body = r.json()["server"]
    assert body["adminPass"] == "s3cret-pass" and body["id"] == server
    for absent in ("OS-EXT-STS:task_state", "OS-EXT-SRV-ATTR:host", "key_name", "user_data", "description",
                   "security_groups", "OS-EXT-AZ:availability_zone"):
        assert absent not in body, absent
    settled(nova, server, "ACTIVE")
    user_data = "IyEvYmluL3NoCmVjaG8gaGk="
    r = act(nova, server, {"rebuild": {"imageRef": new_image, "description": "again", "user_data": user_data,
                                       "metadata": {"role": "db"}, "preserve_ephemeral": True,
                                       "accessIPv4": "192.0.2.7", "trusted_image_certificates": None}})
    assert r.status_code == 202, r.text
    body = r.json()["server"]
    assert len(body["adminPass"]) == 12  # generated
    assert (body["description"], body["user_data"], body["metadata"]) == ("again", user_data, {"role": "db"})
    assert body["OS-EXT-STS:task_state"] in ("rebuilding", "rebuild_spawning", None)
    assert body["OS-EXT-SRV-ATTR:host"] and body["server_groups"] == [] and body["key_name"] is None
    after = settled(nova, server, "ACTIVE")
    assert after["OS-EXT-SRV-ATTR:user_data"] == user_data
    assert guest(cloud, nova, server).spec.metadata == {"role": "db"}


def test_rebuild_refusals_are_nova_s(cloud: Cloud, nova: httpx.Client, server: str, images: httpx.Client,
                                     new_image: str) -> None:
    def rebuild(body: Any, client: httpx.Client = nova) -> httpx.Response:
        return act(client, server, {"rebuild": body})

    assert message(rebuild({}), 400).endswith("'imageRef' is a required property")
    assert "is not a 'uuid'" in message(rebuild({"imageRef": "demo"}), 400)
    assert "'flavorRef' was unexpected" in message(rebuild({"imageRef": new_image, "flavorRef": "1"}), 400)
    assert message(rebuild({"imageRef": new_image, "name": ""}), 400)
    with compute_client(cloud, nova.headers["X-Auth-Token"], "2.18") as v218:
        assert "'description' was unexpected" in message(rebuild({"imageRef": new_image, "description": "x"},
                                                                 v218), 400)
    with compute_client(cloud, nova.headers["X-Auth-Token"], "2.53") as v253:
        assert "'key_name' was unexpected" in message(rebuild({"imageRef": new_image, "key_name": None}, v253), 400)
    missing = "0e6d5d5e-0000-4000-8000-000000000000"
    assert message(rebuild({"imageRef": missing}), 400) == "Cannot find image for rebuild"
    assert message(rebuild({"imageRef": new_image, "key_name": "nope"}), 400) == "Invalid key_name provided."
    queued = create(images)["id"]
    assert message(rebuild({"imageRef": queued}), 400) == f"Image {queued} is not active."
    hungry = active(images, min_ram=4096)["id"]
    assert message(rebuild({"imageRef": hungry}), 400) == "Flavor's memory is too small for requested image."
    big = active(images, min_disk=5)["id"]
    assert message(rebuild({"imageRef": big}), 400) == (
        "Flavor's disk is smaller than the minimum size specified in image metadata. Flavor disk is "
        f"{1 << 30} bytes, minimum size is {5 << 30} bytes.")
    assert act(nova, missing, {"rebuild": {"imageRef": new_image}}).status_code == 404
    # Nothing was half-written.
    shown = settled(nova, server, "ACTIVE")
    assert shown["image"]["id"] in (new_image, demo_image(nova, cloud)) and shown["OS-EXT-STS:task_state"] is None

    assert act(nova, server, {"pause": None}).status_code == 202
    settled(nova, server, "PAUSED")
    assert message(rebuild({"imageRef": new_image}), 409) == (
        f"Cannot 'rebuild' instance {server} while it is in vm_state paused")
    assert act(nova, server, {"unpause": None}).status_code == 202
    settled(nova, server, "ACTIVE")


def test_an_image_the_host_cannot_run_is_refused_as_nova_does(cloud: Cloud, nova: httpx.Client, server: str,
                                                              images: httpx.Client) -> None:
    before = nova.get(f"/servers/{server}").json()["server"]
    held = allocation_records(cloud, server)
    alien = active(images, hw_architecture="unicore32")["id"]
    assert act(nova, server, {"rebuild": {"imageRef": alien}}).status_code == 202
    failed = settled(nova, server, "ERROR")
    assert failed["OS-EXT-STS:task_state"] is None
    assert failed["image"]["id"] == before["image"]["id"]  # set back, as Nova does
    assert failed["fault"]["message"].startswith("No valid host was found.")
    assert "ImagePropertiesFilter: (start: 1, end: 0)" in failed["fault"]["message"]
    assert allocation_records(cloud, server) == held
    assert events(nova, server, "rebuild") == [("rebuild_server", "Error")]
    assert guest(cloud, nova, server).spec.image_id == before["image"]["id"]  # the host was never asked
    # A server in ERROR may be rebuilt, and ends ACTIVE; an image asking for
    # what the host has passes the same check.
    native = active(images, hw_architecture="x86_64")["id"]
    assert act(nova, server, {"rebuild": {"imageRef": native}}).status_code == 202
    rebuilt = settled(nova, server, "ACTIVE")
    assert states(rebuilt) == ("active", None, RUNNING) and rebuilt["image"]["id"] == native
    assert guest(cloud, nova, server).spec.image_id == native
    assert allocation_records(cloud, server) == held


def test_a_driver_failure_during_rebuild_leaves_error_with_a_fault(
        cloud: Cloud, nova: httpx.Client, server: str, new_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    held = allocation_records(cloud, server)

    async def broken(spec: Any, open_image: Any = None) -> None:
        raise DriverError("injected rebuild failure")

    monkeypatch.setattr(driver_of(cloud, nova, server), "rebuild", broken)
    assert act(nova, server, {"rebuild": {"imageRef": new_image}}).status_code == 202
    failed = settled(nova, server, "ERROR")
    assert failed["OS-EXT-STS:task_state"] is None
    assert failed["fault"]["message"] == "injected rebuild failure" and failed["fault"]["code"] == 500
    assert allocation_records(cloud, server) == held
    assert events(nova, server, "rebuild") == [
        ("rebuild_server", "Success"), ("compute_rebuild_instance", "Error")]
    monkeypatch.undo()
    cloud.openstack("server", "set", "--auto-approve", "--state", "active", server)
    settled(nova, server, "ACTIVE")


# Console output


def test_console_log_through_the_cli(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    log = cloud.openstack("console", "log", "show", server, parse=False)
    assert BOOT_MARKER in log
    last = cloud.openstack("console", "log", "show", "--lines", "1", server, parse=False)
    assert last.strip().splitlines() == [log.strip().splitlines()[-1]]


def test_console_output_over_http(cloud: Cloud, nova: httpx.Client, server: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    whole = act(nova, server, {"os-getConsoleOutput": {}}).json()["output"]
    assert whole.splitlines() == guest(cloud, nova, server).console
    assert act(nova, server, {"os-getConsoleOutput": {"length": -1}}).json()["output"] == whole
    assert act(nova, server, {"os-getConsoleOutput": {"length": None}}).json()["output"] == whole
    two = act(nova, server, {"os-getConsoleOutput": {"length": "2"}}).json()["output"]
    assert two.splitlines() == whole.splitlines()[-2:]
    assert "less than the minimum of -1" in message(act(nova, server, {"os-getConsoleOutput": {"length": -2}}), 400)
    assert message(act(nova, server, {"os-getConsoleOutput": {"length": "many"}}), 400)
    assert message(act(nova, server, {"os-getConsoleOutput": {"lines": 2}}), 400)

    async def unsupported(uuid: str, length: int | None = None) -> str:
        raise NotSupported("no serial console here")

    monkeypatch.setattr(driver_of(cloud, nova, server), "console_output", unsupported)
    r = act(nova, server, {"os-getConsoleOutput": {}})
    assert r.status_code == 501, r.text
    assert r.json() == {"notImplemented": {"code": 501, "message": "The requested functionality is not supported."}}


# Rescue


def test_rescue_and_unrescue_through_the_cli(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    cloud.openstack("server", "rescue", server)
    rescued = settled(nova, server, "RESCUE")
    assert states(rescued) == ("rescued", None, RUNNING)
    assert guest(cloud, nova, server).rescued
    assert RESCUE_MARKER in act(nova, server, {"os-getConsoleOutput": {"length": 3}}).json()["output"]
    assert message(act(nova, server, {"rescue": None}), 409) == (
        f"Cannot 'rescue' instance {server} while it is in vm_state rescued")
    cloud.openstack("server", "unrescue", server)
    assert states(settled(nova, server, "ACTIVE")) == ("active", None, RUNNING)
    assert not guest(cloud, nova, server).rescued
    for action in ("rescue", "unrescue"):
        assert events(nova, server, action) == [
            (f"compute_{action}_instance", "Success")]


def test_rescue_over_http(cloud: Cloud, nova: httpx.Client, server: str, new_image: str,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert message(act(nova, server, {"unrescue": None}), 409) == (
        f"Cannot 'unrescue' instance {server} while it is in vm_state active")
    assert message(act(nova, server, {"rescue": {"rescue_image_ref": "0e6d5d5e-0000-4000-8000-000000000000"}}),
                   400) == "Requested rescue image '0e6d5d5e-0000-4000-8000-000000000000' is not supported"
    assert message(act(nova, server, {"rescue": {"password": "x"}}), 400)
    r = act(nova, server, {"rescue": {"adminPass": "rescue-me", "rescue_image_ref": new_image}})
    assert (r.status_code, r.json()) == (200, {"adminPass": "rescue-me"})
    settled(nova, server, "RESCUE")
    assert act(nova, server, {"unrescue": None}).status_code == 202
    settled(nova, server, "ACTIVE")

    async def broken(uuid: str, open_image: Any = None) -> None:
        raise DriverError("no rescue disk")

    monkeypatch.setattr(driver_of(cloud, nova, server), "rescue", broken)
    r = act(nova, server, {"rescue": None})
    assert r.status_code == 200 and len(r.json()["adminPass"]) == 12
    failed = settled(nova, server, "ERROR")
    assert failed["fault"]["message"] == f"Instance {server} cannot be rescued: Driver Error: no rescue disk"
    monkeypatch.undo()
    cloud.openstack("server", "set", "--auto-approve", "--state", "active", server)
    settled(nova, server, "ACTIVE")


# Admin password


def test_change_password(cloud: Cloud, nova: httpx.Client, server: str, monkeypatch: pytest.MonkeyPatch,
                         caplog: pytest.LogCaptureFixture) -> None:
    secret = "Very-Secret-0451"
    changes = guest(cloud, nova, server).password_changes
    with caplog.at_level(logging.DEBUG):
        assert act(nova, server, {"changePassword": {"adminPass": secret}}).status_code == 202
        assert guest(cloud, nova, server).password_changes == changes + 1
        assert states(settled(nova, server, "ACTIVE")) == ("active", None, RUNNING)
        assert events(nova, server, "changePassword") == [
            ("compute_set_admin_password", "Success")]

        driver = driver_of(cloud, nova, server)

        async def unsupported(uuid: str, password: str) -> None:
            raise NotSupported("no agent")

        monkeypatch.setattr(driver, "change_password", unsupported)
        r = act(nova, server, {"changePassword": {"adminPass": secret}})
        assert r.json() == {"notImplemented": {"code": 501, "message": "Unable to set password on instance"}}

        async def broken(uuid: str, password: str) -> None:
            raise DriverError(f"agent refused {password}")

        monkeypatch.setattr(driver, "change_password", broken)
        assert message(act(nova, server, {"changePassword": {"adminPass": secret}}), 409) == (
            f"Failed to set admin password on {server} because error setting admin password")
        assert states(settled(nova, server, "ACTIVE")) == ("active", None, RUNNING)
    assert all(secret not in record.getMessage() for record in caplog.records)
    monkeypatch.undo()

    assert message(act(nova, server, {"changePassword": {}}), 400).endswith("'adminPass' is a required property")
    assert message(act(nova, server, {"changePassword": {"adminPass": 5}}), 400)
    assert act(nova, server, {"os-stop": None}).status_code == 202
    settled(nova, server, "SHUTOFF")
    assert message(act(nova, server, {"changePassword": {"adminPass": secret}}), 409) == (
        f"Cannot 'changePassword' instance {server} while it is in vm_state stopped")
    assert act(nova, server, {"os-start": None}).status_code == 202
    settled(nova, server, "ACTIVE")


# Crash dump


def test_crash_dump(cloud: Cloud, nova: httpx.Client) -> None:
    server_id = boot(nova, cloud, name="dumped")
    settled(nova, server_id, "ACTIVE")
    with compute_client(cloud, nova.headers["X-Auth-Token"], "2.16") as v216:
        assert act(v216, server_id, {"trigger_crash_dump": None}).status_code == 404
    assert message(act(nova, server_id, {"trigger_crash_dump": {}}), 400)
    cloud.openstack("--os-compute-api-version", "2.17", "server", "dump", "create", server_id)
    wait_for(lambda: [result for _, result in events(nova, server_id, "trigger_crash_dump")] == ["Success"])
    assert "NMI received" in act(nova, server_id, {"os-getConsoleOutput": {"length": 1}}).json()["output"]
    assert nova.get(f"/servers/{server_id}").json()["server"]["OS-EXT-STS:task_state"] is None
    assert act(nova, server_id, {"os-stop": None}).status_code == 202
    settled(nova, server_id, "SHUTOFF")
    assert message(act(nova, server_id, {"trigger_crash_dump": None}), 409) == (
        f"Cannot 'trigger_crash_dump' instance {server_id} while it is in vm_state stopped")
    assert nova.delete(f"/servers/{server_id}").status_code == 204


# Reset state


def test_reset_state(cloud: Cloud, nova: httpx.Client, member: Member) -> None:
    with member_compute(cloud, member) as mine:
        server_id = boot(mine, cloud, name="reset-me")
        settled(nova, server_id, "ACTIVE")
        cloud.openstack("server", "set", "--auto-approve", "--state", "error", server_id)
        assert states(wait_status(nova, server_id, {"ERROR"})) == ("error", None, RUNNING)
        cloud.openstack("server", "set", "--auto-approve", "--state", "active", server_id)
        assert states(settled(nova, server_id, "ACTIVE")) == ("active", None, RUNNING)
        assert [a["action"] for a in nova.get(f"/servers/{server_id}/os-instance-actions").json()[
            "instanceActions"]][:2] == ["resetState", "resetState"]
        r = act(mine, server_id, {"os-resetState": {"state": "error"}})
        assert r.status_code == 403, r.text
        denied = cloud.openstack("server", "set", "--auto-approve", "--state", "error", server_id, check=False,
                                 env=cloud.env(member.name, member.password, member.project))
        assert denied.returncode != 0 and "403" in denied.stderr
        assert message(act(nova, server_id, {"os-resetState": {"state": "stopped"}}), 400)
        assert message(act(nova, server_id, {"os-resetState": {}}), 400)
        assert mine.get(f"/servers/{server_id}").json()["server"]["status"] == "ACTIVE"
        assert mine.delete(f"/servers/{server_id}").status_code == 204


# Concurrency


def test_of_two_concurrent_actions_one_wins(cloud: Cloud, nova: httpx.Client, server: str, new_image: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_of(cloud, nova, server), "op_delay", 0.3)
    answers = act_at_once(nova, server, {"rebuild": {"imageRef": new_image}}, {"rescue": None})
    assert sorted(answers.values()) in ([200, 409], [202, 409]), answers
    if answers["rescue"] == 200:
        settled(nova, server, "RESCUE")
        assert act(nova, server, {"unrescue": None}).status_code == 202
    settled(nova, server, "ACTIVE")

