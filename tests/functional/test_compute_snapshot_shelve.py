"""Acceptance of createImage, createBackup (with rotation), shelve,
shelveOffload and unshelve: the stock CLI end to end over the bus with the
fake driver, plain HTTP for Nova's refusals and bodies, injected failures.
Placement's allocations are checked after every step."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from loom.compute import recover, shelve
from loom.db.models import Instance
from loom.virt.driver import DriverError, PowerState
from loom.virt.fake import FakeDriver
from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    act,
    admin_fixture,
    admin_token,
    allocations,
    boot,
    cloud_fixture,
    compute,
    compute_client,
    events,
    fake,
    host_of,
    hosts,
    member_compute,
    member_fixture,
    settled,
    wait_status,
)
from tests.functional.test_identity_support import Member

cloud = cloud_fixture(**{"compute.fake_hosts": 2})
nova = admin_fixture()
member = member_fixture()

TINY = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}


# What the tests look at.


def eventually(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def claimed_on(cloud: Cloud, nova: httpx.Client, server: dict[str, Any]) -> None:
    """The server holds exactly one m1.tiny claim, on its own host."""
    host = server["OS-EXT-SRV-ATTR:host"]
    assert host
    assert allocations(cloud, nova, server["id"]) == {host: TINY}


def image(cloud: Cloud, image_id: str) -> httpx.Response:
    return httpx.get(f"{cloud.url}/image/v2/images/{image_id}", headers={"X-Auth-Token": admin_token(cloud)},
                     timeout=30)


def image_data(cloud: Cloud, image_id: str) -> bytes:
    r = httpx.get(f"{cloud.url}/image/v2/images/{image_id}/file", headers={"X-Auth-Token": admin_token(cloud)},
                  timeout=30)
    assert r.status_code == 200, r.text
    return r.content


def images_where(cloud: Cloud, **properties: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{cloud.url}/image/v2/images", params=properties, headers={"X-Auth-Token": admin_token(cloud)},
                  timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json()["images"])


def fakes(cloud: Cloud) -> list[FakeDriver]:
    return [fake(cloud, host) for host in hosts(cloud)]


def break_snapshots(cloud: Cloud, nova: httpx.Client, server_id: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make every snapshot on the server's host fail; that host."""
    host = host_of(nova, server_id)

    async def broken(uuid: str) -> Any:
        raise DriverError("injected snapshot failure")

    monkeypatch.setattr(compute(cloud, host).driver, "snapshot", broken)
    return host


def guest_hosts(cloud: Cloud, server_id: str) -> list[str]:
    """The fake hosts holding a guest of the server."""
    return [d.host or "" for d in fakes(cloud) if server_id in d._guests]


def run_on_cloud(cloud: Cloud, coro: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, cloud.loop).result(30)


@pytest.fixture
def server(cloud: Cloud, nova: httpx.Client) -> Iterator[str]:
    """A fresh ACTIVE admin server, deleted after the test."""
    server_id = boot(nova, cloud, name="subject")
    claimed_on(cloud, nova, settled(nova, server_id, "ACTIVE"))
    yield server_id
    nova.delete(f"/servers/{server_id}")
    wait_status(nova, server_id, {"DELETED"})


# Snapshots.


def test_image_create_through_the_cli_then_boot_from_it(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    shown = cloud.openstack("server", "image", "create", "--name", "snap-1", "--property", "purpose=test",
                            "--wait", server)
    snap = image(cloud, shown["id"]).json()
    assert snap["status"] == "active" and snap["name"] == "snap-1"
    demo = nova.get(f"/servers/{server}").json()["server"]["image"]["id"]
    assert {k: snap.get(k) for k in ("instance_uuid", "image_type", "base_image_ref", "purpose", "visibility",
                                      "disk_format", "container_format", "min_disk")} == {
        "instance_uuid": server, "image_type": "snapshot", "base_image_ref": demo, "purpose": "test",
        "visibility": "private", "disk_format": "raw", "container_format": "bare", "min_disk": 1}
    assert snap["owner"] and snap["user_id"]
    after = settled(nova, server, "ACTIVE")
    assert (after["OS-EXT-STS:vm_state"], after["OS-EXT-STS:power_state"]) == ("active", PowerState.RUNNING)
    claimed_on(cloud, nova, after)
    assert events(nova, server, "createImage") == [("compute_snapshot_instance", "Success")]
    # The snapshot holds the guest's disk, and boots.
    assert server.encode() in image_data(cloud, snap["id"])[:4096]
    body = {"server": {"name": "from-snap", "imageRef": snap["id"], "flavorRef": "1", "networks": "none"}}
    r = nova.post("/servers", json=body)
    assert r.status_code == 202, r.text
    child = r.json()["server"]["id"]
    claimed_on(cloud, nova, settled(nova, child, "ACTIVE"))
    assert nova.delete(f"/servers/{child}").status_code == 204
    wait_status(nova, child, {"DELETED"})
    assert allocations(cloud, nova, child) == {}


def test_create_image_answers_per_microversion(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    with compute_client(cloud, admin_token(cloud), "2.44") as old:
        r = act(old, server, {"createImage": {"name": "old-style", "metadata": {"k": "v"}}})
    assert r.status_code == 202 and not r.content
    image_id = r.headers["Location"].rsplit("/", 1)[1]
    assert r.headers["Location"] == f"{cloud.settings.public_url}/image/images/{image_id}"
    settled(nova, server, "ACTIVE")
    assert image(cloud, image_id).json()["k"] == "v"
    r = act(nova, server, {"createImage": {"name": "new-style"}})
    assert r.status_code == 202 and set(r.json()) == {"image_id"}
    settled(nova, server, "ACTIVE")
    eventually(lambda: image(cloud, r.json()["image_id"]).json()["status"] == "active", "snapshot active")


def test_snapshot_refusals(cloud: Cloud, nova: httpx.Client, server: str, member: Member) -> None:
    r = act(nova, server, {"createImage": {}})
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"].endswith("'name' is a required property")
    for bad in ({"name": " padded"}, {"name": ""}, {"name": "x", "extra": 1}, {"name": "x", "metadata": {"k": 1}}):
        assert act(nova, server, {"createImage": bad}).status_code == 400, bad
    for bad in ({"name": "b", "backup_type": "daily"}, {"name": "b", "backup_type": "daily", "rotation": -1},
                {"name": "b", "backup_type": "daily", "rotation": "two"}, {"name": "b", "rotation": 1}):
        assert act(nova, server, {"createBackup": bad}).status_code == 400, bad
    # Backups only of active or stopped servers; a refusal writes nothing.
    before = len(images_where(cloud, instance_uuid=server))
    assert act(nova, server, {"os-stop": None}).status_code == 202
    settled(nova, server, "SHUTOFF")
    assert act(nova, server, {"pause": None}).status_code == 409
    assert act(nova, server, {"os-start": None}).status_code == 202
    settled(nova, server, "ACTIVE")
    assert act(nova, server, {"pause": None}).status_code == 202
    settled(nova, server, "PAUSED")
    r = act(nova, server, {"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}})
    assert r.status_code == 409
    assert r.json()["conflictingRequest"]["message"] == (
        f"Cannot 'createBackup' instance {server} while it is in vm_state paused")
    assert len(images_where(cloud, instance_uuid=server)) == before  # nothing half-written
    assert act(nova, server, {"unpause": None}).status_code == 202
    settled(nova, server, "ACTIVE")
    # Over the image quota: a 403, and no trace.
    with member_compute(cloud, member) as mine:
        theirs = boot(mine, cloud, name="quota")
        settled(mine, theirs, "ACTIVE")
        assert cloud.runner.api_deps is not None
        service = cloud.runner.api_deps.images
        s = service.settings
        service.settings = s.model_copy(update={"image": s.image.model_copy(update={"quota_images": 0})})
        try:
            r = act(mine, theirs, {"createImage": {"name": "too-many"}})
        finally:
            service.settings = s
        assert r.status_code == 403, r.text
        assert "Maximum number of images exceeded" in r.json()["forbidden"]["message"]
        assert mine.get(f"/servers/{theirs}").json()["server"]["OS-EXT-STS:task_state"] is None
        assert images_where(cloud, instance_uuid=theirs) == []
        # Backups need os-create-backup, which members hold; offloading is admin only.
        r = act(mine, theirs, {"createBackup": {"name": "b", "backup_type": "weekly", "rotation": 0}})
        assert r.status_code == 202, r.text
        settled(mine, theirs, "ACTIVE")
        eventually(lambda: images_where(cloud, instance_uuid=theirs) == [], "rotation 0 deletes every backup")
        mine.delete(f"/servers/{theirs}")
        wait_status(mine, theirs, {"DELETED"})


def test_a_failed_snapshot_deletes_its_image(cloud: Cloud, nova: httpx.Client, server: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    break_snapshots(cloud, nova, server, monkeypatch)
    r = act(nova, server, {"createImage": {"name": "doomed"}})
    assert r.status_code == 202, r.text
    image_id = r.json()["image_id"]
    after = settled(nova, server, "ACTIVE")
    assert after["OS-EXT-STS:power_state"] == PowerState.RUNNING
    eventually(lambda: image(cloud, image_id).status_code == 404, "the failed snapshot's image is deleted")
    assert events(nova, server, "createImage") == [("compute_snapshot_instance", "Error")]
    claimed_on(cloud, nova, after)


# Backups.


def test_backups_rotate_through_the_cli(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    made = []
    for n in (1, 2, 3):
        shown = cloud.openstack("server", "backup", "create", "--name", f"daily-{n}", "--type", "daily",
                                "--rotate", "2", "--wait", server)
        made.append(shown["id"])
        settled(nova, server, "ACTIVE")
    # The oldest goes once the third is uploaded.
    kept = eventually(lambda: (found := images_where(cloud, instance_uuid=server, image_type="backup"))
                      and len(found) == 2 and found, "two backups left")
    assert sorted(i["id"] for i in kept) == sorted(made[1:])
    assert {(i["backup_type"], i["status"]) for i in kept} == {("daily", "active")}
    assert image(cloud, made[0]).status_code == 404
    # Other types rotate separately.
    r = act(nova, server, {"createBackup": {"name": "weekly-1", "backup_type": "weekly", "rotation": 1}})
    assert r.status_code == 202, r.text
    settled(nova, server, "ACTIVE")
    eventually(lambda: image(cloud, r.json()["image_id"]).json()["status"] == "active", "weekly backup active")
    assert len(images_where(cloud, instance_uuid=server, image_type="backup", backup_type="daily")) == 2
    assert events(nova, server, "createBackup") == [("compute_backup_instance", "Success")]
    claimed_on(cloud, nova, nova.get(f"/servers/{server}").json()["server"])
    with compute_client(cloud, admin_token(cloud), "2.44") as old:
        r = act(old, server, {"createBackup": {"name": "gone", "backup_type": "hourly", "rotation": 0}})
        assert r.status_code == 202 and "Location" not in r.headers
        settled(nova, server, "ACTIVE")
        r = act(old, server, {"createBackup": {"name": "kept", "backup_type": "hourly", "rotation": "1"}})
        assert r.status_code == 202 and "/images/" in r.headers["Location"]
        settled(nova, server, "ACTIVE")


# Shelving.


def test_shelve_and_unshelve_through_the_cli(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    cloud.openstack("server", "shelve", server)
    shelved = settled(nova, server, "SHELVED_OFFLOADED")
    assert (shelved["OS-EXT-STS:vm_state"], shelved["OS-EXT-SRV-ATTR:host"]) == ("shelved_offloaded", None)
    assert allocations(cloud, nova, server) == {}
    assert guest_hosts(cloud, server) == []
    assert events(nova, server, "shelve") == [("compute_shelve_instance", "Success"),
                                               ("compute_shelve_offload_instance", "Success")]
    (snap,) = images_where(cloud, instance_uuid=server, name="subject-shelved")
    assert (snap["status"], snap["image_type"]) == ("active", "snapshot")
    disk = hashlib.sha256(image_data(cloud, snap["id"])).hexdigest()

    cloud.openstack("server", "unshelve", server)
    back = settled(nova, server, "ACTIVE")
    assert back["OS-EXT-STS:power_state"] == PowerState.RUNNING
    claimed_on(cloud, nova, back)
    (host,) = guest_hosts(cloud, server)
    assert host == back["OS-EXT-SRV-ATTR:host"]
    # Spawned from the shelve image, which then goes.
    assert compute(cloud, host).driver.guest(server).image_sha256 == disk  # type: ignore[attr-defined]
    eventually(lambda: image(cloud, snap["id"]).status_code == 404, "the shelve image is deleted")
    assert events(nova, server, "unshelve") == [("conductor_unshelve_instance", "Success"),
                                                 ("compute_unshelve_instance", "Success")]


def test_shelve_refusals(cloud: Cloud, nova: httpx.Client, server: str, member: Member) -> None:
    for body, action in (({"unshelve": None}, "unshelve"), ({"shelveOffload": None}, "shelveOffload")):
        r = act(nova, server, body)
        assert r.status_code == 409, r.text
        assert r.json()["conflictingRequest"]["message"] == (
            f"Cannot '{action}' instance {server} while it is in vm_state active")
    assert act(nova, server, {"shelve": None}).status_code == 202
    settled(nova, server, "SHELVED_OFFLOADED")
    refused: list[tuple[dict[str, Any], str]] = [
        ({"shelve": None}, "shelve"), ({"createImage": {"name": "x"}}, "createImage"),
        ({"shelveOffload": None}, "shelveOffload")]
    for body, action in refused:
        r = act(nova, server, body)
        assert r.status_code == 409, r.text
        assert r.json()["conflictingRequest"]["message"] == (
            f"Cannot '{action}' instance {server} while it is in vm_state shelved_offloaded")
    # 2.77: a zone, which must exist; {} is not a body.
    zones: list[dict[str, str]] = [{}, {"availability_zone": ""}, {"availability_zone": "nowhere"},
                                    {"zone": "nova"}]
    for zone in zones:
        r = act(nova, server, {"unshelve": zone})
        assert r.status_code == 400, (zone, r.text)
    with compute_client(cloud, admin_token(cloud), "2.76") as old:
        # Before 2.77 the body is not looked at.
        assert act(old, server, {"unshelve": {"whatever": 1}}).status_code == 202
    settled(nova, server, "ACTIVE")
    assert allocations(cloud, nova, server) != {}
    with member_compute(cloud, member) as mine:
        theirs = boot(mine, cloud, name="member-shelved")
        settled(mine, theirs, "ACTIVE")
        monkey = pytest.MonkeyPatch()
        try:
            for m in (compute(cloud, h) for h in hosts(cloud)):
                monkey.setattr(m, "settings", m.settings.model_copy(update={"shelved_offload_time": -1}))
            assert act(mine, theirs, {"shelve": None}).status_code == 202
            settled(mine, theirs, "SHELVED")
        finally:
            monkey.undo()
        r = act(mine, theirs, {"shelveOffload": None})
        assert r.status_code == 403, r.text
        r = act(mine, theirs, {"unshelve": {"availability_zone": "nova"}})
        assert r.status_code == 409, r.text
        assert "The server status must be SHELVED_OFFLOADED" in r.json()["conflictingRequest"]["message"]
        assert act(nova, theirs, {"shelveOffload": None}).status_code == 202
        settled(mine, theirs, "SHELVED_OFFLOADED")
        assert allocations(cloud, nova, theirs) == {}
        assert events(nova, theirs, "shelveOffload") == [("compute_shelve_offload_instance", "Success")]
        # Deleting an offloaded server takes its shelve image along.
        (snap,) = images_where(cloud, instance_uuid=theirs, name="member-shelved-shelved")
        assert mine.delete(f"/servers/{theirs}").status_code == 204
        wait_status(mine, theirs, {"DELETED"})
        assert image(cloud, snap["id"]).status_code == 404
        assert allocations(cloud, nova, theirs) == {}


def test_shelved_servers_stay_on_their_host_until_offloaded(cloud: Cloud, nova: httpx.Client, server: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    managers = [compute(cloud, h) for h in hosts(cloud)]
    for m in managers:
        monkeypatch.setattr(m, "settings", m.settings.model_copy(update={"shelved_offload_time": -1}))
    host = nova.get(f"/servers/{server}").json()["server"]["OS-EXT-SRV-ATTR:host"]
    assert act(nova, server, {"shelve": None}).status_code == 202
    shelved = settled(nova, server, "SHELVED")
    assert shelved["OS-EXT-STS:power_state"] == PowerState.SHUTDOWN
    claimed_on(cloud, nova, shelved)
    assert guest_hosts(cloud, server) == [host]
    (snap,) = images_where(cloud, instance_uuid=server, name="subject-shelved")
    # Unshelving a shelved server powers it on where it is.
    assert act(nova, server, {"unshelve": None}).status_code == 202
    back = settled(nova, server, "ACTIVE")
    assert (back["OS-EXT-SRV-ATTR:host"], back["OS-EXT-STS:power_state"]) == (host, PowerState.RUNNING)
    claimed_on(cloud, nova, back)
    eventually(lambda: image(cloud, snap["id"]).status_code == 404, "the shelve image is deleted")
    assert events(nova, server, "unshelve") == [("compute_start_instance", "Success")]
    # The periodic task offloads servers shelved longer than shelved_offload_time.
    assert act(nova, server, {"shelve": None}).status_code == 202
    settled(nova, server, "SHELVED")
    for m in managers:
        monkeypatch.setattr(m, "settings", m.settings.model_copy(update={"shelved_offload_time": 0.001}))
    run_on_cloud(cloud, shelve.offload_expired(compute(cloud, host)))
    offloaded = settled(nova, server, "SHELVED_OFFLOADED")
    assert offloaded["OS-EXT-SRV-ATTR:host"] is None
    assert allocations(cloud, nova, server) == {}
    assert guest_hosts(cloud, server) == []
    assert events(nova, server, "shelveOffload") == [("compute_shelve_offload_instance", "Success")]


def test_a_failed_unshelve_goes_back_to_shelved_offloaded(cloud: Cloud, nova: httpx.Client, server: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert act(nova, server, {"shelve": None}).status_code == 202
    settled(nova, server, "SHELVED_OFFLOADED")
    (snap,) = images_where(cloud, instance_uuid=server, name="subject-shelved")
    for driver in fakes(cloud):
        monkeypatch.setattr(driver, "fail_spawn", True)
    assert act(nova, server, {"unshelve": None}).status_code == 202
    failed = eventually(lambda: (s := nova.get(f"/servers/{server}").json()["server"])["OS-EXT-STS:task_state"]
                        is None and s["status"] == "SHELVED_OFFLOADED" and s, "back to SHELVED_OFFLOADED")
    assert failed["OS-EXT-SRV-ATTR:host"] is None
    assert allocations(cloud, nova, server) == {}
    assert guest_hosts(cloud, server) == []
    assert events(nova, server, "unshelve") == [("conductor_unshelve_instance", "Success"),
                                                 ("compute_unshelve_instance", "Error")]
    assert image(cloud, snap["id"]).json()["status"] == "active"  # kept for the next try
    # The next try, in the zone the hosts are in (2.77), succeeds.
    for driver in fakes(cloud):
        monkeypatch.setattr(driver, "fail_spawn", None)
    assert act(nova, server, {"unshelve": {"availability_zone": "nova"}}).status_code == 202
    back = settled(nova, server, "ACTIVE")
    claimed_on(cloud, nova, back)
    assert guest_hosts(cloud, server) == [back["OS-EXT-SRV-ATTR:host"]]
    eventually(lambda: image(cloud, snap["id"]).status_code == 404, "the shelve image is deleted")


def test_unshelve_without_room_stays_offloaded(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    assert act(nova, server, {"shelve": None}).status_code == 202
    settled(nova, server, "SHELVED_OFFLOADED")
    disabled = []
    try:
        for host in hosts(cloud):
            r = nova.put("/os-services/disable", json={"host": host, "binary": "nova-compute"})
            if r.status_code != 200:  # 2.53+: by uuid
                (svc,) = nova.get("/os-services", params={"host": host, "binary": "nova-compute"}).json()["services"]
                r = nova.put(f"/os-services/{svc['id']}", json={"status": "disabled"})
            assert r.status_code == 200, r.text
            disabled.append(host)
        assert act(nova, server, {"unshelve": None}).status_code == 202
        eventually(lambda: events(nova, server, "unshelve") == [("conductor_unshelve_instance", "Error")],
                   "the scheduling failure is recorded")
        after = settled(nova, server, "SHELVED_OFFLOADED")
        assert after["OS-EXT-SRV-ATTR:host"] is None
        assert allocations(cloud, nova, server) == {}
    finally:
        for host in disabled:
            (svc,) = nova.get("/os-services", params={"host": host, "binary": "nova-compute"}).json()["services"]
            assert nova.put(f"/os-services/{svc['id']}", json={"status": "enabled"}).status_code == 200


def test_a_failed_shelve_leaves_the_server_on_its_host(cloud: Cloud, nova: httpx.Client, server: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    host = break_snapshots(cloud, nova, server, monkeypatch)
    assert act(nova, server, {"shelve": None}).status_code == 202
    # The guest was powered off before the snapshot failed: it shows so.
    after = settled(nova, server, "SHUTOFF")
    assert after["OS-EXT-STS:vm_state"] == "stopped"
    claimed_on(cloud, nova, after)
    assert guest_hosts(cloud, server) == [host]
    assert events(nova, server, "shelve") == [("compute_shelve_instance", "Error")]
    eventually(lambda: images_where(cloud, instance_uuid=server) == [], "the shelve image is deleted")
    monkeypatch.undo()
    assert act(nova, server, {"os-start": None}).status_code == 202
    settled(nova, server, "ACTIVE")


def test_deleting_a_shelved_server_deletes_its_image(cloud: Cloud, nova: httpx.Client, server: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for m in (compute(cloud, h) for h in hosts(cloud)):
        monkeypatch.setattr(m, "settings", m.settings.model_copy(update={"shelved_offload_time": -1}))
    assert act(nova, server, {"shelve": None}).status_code == 202
    settled(nova, server, "SHELVED")
    (snap,) = images_where(cloud, instance_uuid=server, name="subject-shelved")
    assert nova.delete(f"/servers/{server}").status_code == 204
    wait_status(nova, server, {"DELETED"})
    assert image(cloud, snap["id"]).status_code == 404
    assert allocations(cloud, nova, server) == {}
    assert guest_hosts(cloud, server) == []


def test_a_restart_settles_an_interrupted_unshelve(cloud: Cloud, nova: httpx.Client, server: str) -> None:
    host = nova.get(f"/servers/{server}").json()["server"]["OS-EXT-SRV-ATTR:host"]
    manager = compute(cloud, host)

    async def interrupted() -> None:
        """As the database is when the spawn of an unshelve was cut short."""
        assert cloud.runner.db is not None
        async with cloud.runner.db.session.begin() as session:
            await session.execute(update(Instance).where(Instance.uuid == server).values(
                vm_state="shelved_offloaded", task_state="spawning"))

    # The guest came up: the unshelve is finished.
    run_on_cloud(cloud, interrupted())
    run_on_cloud(cloud, recover.recover_host(manager))
    claimed_on(cloud, nova, settled(nova, server, "ACTIVE"))
    # It did not: back to SHELVED_OFFLOADED, the claim released.
    run_on_cloud(cloud, interrupted())
    run_on_cloud(cloud, manager.driver.destroy(server))
    run_on_cloud(cloud, recover.recover_host(manager))
    after = settled(nova, server, "SHELVED_OFFLOADED")
    assert after["OS-EXT-SRV-ATTR:host"] is None
    assert allocations(cloud, nova, server) == {}
