"""Resize: through the stock CLI to VERIFY_RESIZE, then confirmed or
reverted, with placement's allocations and the fake hosts' guests checked
after each step; Nova's refusals; a failure injected at every step leaves
the server recoverable and the allocations consistent; the periodic
confirmation. Two fake hosts: a resize never stays on its host here."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from loom.compute.resize import confirm as resize_confirm
from loom.db.models import Instance, Migration
from loom.virt.driver import DriverError
from tests.functional.cloud import Cloud
from tests.functional.compute_support import (
    act,
    admin_fixture,
    allocations,
    boot,
    cloud_fixture,
    compute,
    events,
    fake,
    member_compute,
    member_fixture,
    message,
    settled,
    wait_status,
)
from tests.functional.live_move_support import other
from tests.functional.move_support import (
    RUNNING,
    SHUTDOWN,
    SMALL,
    TINY,
    guests,
    migration_of,
    new_server,
    restart_compute,
    used_memory,
)
from tests.functional.test_identity_support import Member

HOSTS = ("test-host-1", "test-host-2")
cloud = cloud_fixture(**{"compute.fake_hosts": 2, "compute.fake_memory_mb": 8192})
nova = admin_fixture()
member = member_fixture()


def resize_to_verify(cloud: Cloud, nova: httpx.Client, server_id: str, flavor: str = "2") -> dict[str, Any]:
    assert act(nova, server_id, {"resize": {"flavorRef": flavor}}).status_code == 202
    return settled(nova, server_id, "VERIFY_RESIZE")


def test_resize_and_confirm_through_the_cli(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "resized")
    dest = other(source)
    before = {h: used_memory(cloud, h) for h in HOSTS}
    cloud.openstack("server", "resize", "--flavor", "m1.small", "--wait", server_id)
    server = settled(nova, server_id, "VERIFY_RESIZE")
    assert (server["OS-EXT-SRV-ATTR:host"], server["flavor"]["original_name"]) == (dest, "m1.small")
    assert (server["OS-EXT-STS:vm_state"], server["OS-EXT-STS:power_state"]) == ("resized", RUNNING)
    migration = migration_of(cloud, server_id)
    assert (migration.migration_type, migration.status) == ("resize", "finished")
    assert (migration.source_compute, migration.dest_compute) == (source, dest)
    # The source is held by the migration, the destination by the instance.
    assert allocations(cloud, nova, server_id) == {dest: SMALL}
    assert allocations(cloud, nova, migration.uuid) == {source: TINY}
    # The source keeps its stopped copy (and its memory) until the confirmation.
    assert guests(cloud, server_id) == {dest: ("guest", 2048, RUNNING), f"{source}:kept": ("kept", 512, SHUTDOWN)}
    assert used_memory(cloud, dest) == before[dest] + 2048
    assert used_memory(cloud, source) == before[source]

    cloud.openstack("server", "resize", "confirm", server_id)
    server = settled(nova, server_id, "ACTIVE")
    assert (server["OS-EXT-SRV-ATTR:host"], server["flavor"]["original_name"]) == (dest, "m1.small")
    assert migration_of(cloud, server_id).status == "confirmed"
    assert allocations(cloud, nova, server_id) == {dest: SMALL}
    assert allocations(cloud, nova, migration.uuid) == {}
    assert guests(cloud, server_id) == {dest: ("guest", 2048, RUNNING)}
    assert used_memory(cloud, source) == before[source] - 512
    assert events(nova, server_id, "resize") == [("conductor_migrate_server", "Success"),
                                                 ("compute_prep_resize", "Success"),
                                                 ("compute_resize_instance", "Success"),
                                                 ("compute_finish_resize", "Success")]
    assert events(nova, server_id, "confirmResize") == [("compute_confirm_resize", "Success")]
    assert nova.delete(f"/servers/{server_id}").status_code == 204
    wait_status(nova, server_id, {"DELETED"})
    assert allocations(cloud, nova, server_id) == {}


def test_resize_and_revert_through_the_cli(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "resized")
    dest = other(source)
    cloud.openstack("server", "resize", "--flavor", "m1.small", "--wait", server_id)
    migration = migration_of(cloud, server_id)
    cloud.openstack("server", "resize", "revert", server_id)
    server = settled(nova, server_id, "ACTIVE")
    assert (server["OS-EXT-SRV-ATTR:host"], server["flavor"]["original_name"]) == (source, "m1.tiny")
    assert server["OS-EXT-STS:power_state"] == RUNNING
    assert migration_of(cloud, server_id).status == "reverted"
    assert allocations(cloud, nova, server_id) == {source: TINY}
    assert allocations(cloud, nova, migration.uuid) == {}
    assert guests(cloud, server_id) == {source: ("guest", 512, RUNNING)}
    assert server_id not in fake(cloud, dest)._guests
    assert events(nova, server_id, "revertResize") == [("compute_revert_resize", "Success"),
                                                       ("compute_finish_revert_resize", "Success")]
    # The server can be resized again after a revert.
    resize_to_verify(cloud, nova, server_id)
    assert act(nova, server_id, {"confirmResize": None}).status_code == 204
    settled(nova, server_id, "ACTIVE")


def test_a_stopped_server_stays_stopped(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "stopped")
    act(nova, server_id, {"os-stop": None})
    settled(nova, server_id, "SHUTOFF")
    server = resize_to_verify(cloud, nova, server_id)
    assert server["OS-EXT-STS:power_state"] == SHUTDOWN
    assert guests(cloud, server_id)[other(source)] == ("guest", 2048, SHUTDOWN)
    assert act(nova, server_id, {"confirmResize": None}).status_code == 204
    server = settled(nova, server_id, "SHUTOFF")
    assert server["OS-EXT-STS:vm_state"] == "stopped"
    # And a reverted stopped server too.
    resize_to_verify(cloud, nova, server_id, "3")
    assert act(nova, server_id, {"revertResize": None}).status_code == 202
    server = settled(nova, server_id, "SHUTOFF")
    assert (server["flavor"]["original_name"], server["OS-EXT-STS:power_state"]) == ("m1.small", SHUTDOWN)


def test_refusals_as_nova_makes_them(cloud: Cloud, nova: httpx.Client, member: Member) -> None:
    server_id, _ = new_server(cloud, nova, "refused")

    assert message(act(nova, server_id, {"resize": {"flavorRef": "1"}}), 400) == (
        "When resizing, instances must change flavor!")
    assert message(act(nova, server_id, {"resize": {"flavorRef": "nope"}}), 400) == "Flavor nope could not be found."
    for body in ({"resize": {}}, {"resize": {"flavorRef": "2", "extra": 1}}, {"resize": None},
                 {"resize": {"flavorRef": "2", "OS-DCF:diskConfig": "SOMETIMES"}}):
        assert act(nova, server_id, body).status_code == 400, body
    assert message(act(nova, server_id, {"confirmResize": None}), 409) == (
        f"Cannot 'confirmResize' instance {server_id} while it is in vm_state active")
    assert message(act(nova, server_id, {"revertResize": None}), 409) == (
        f"Cannot 'revertResize' instance {server_id} while it is in vm_state active")
    resize_to_verify(cloud, nova, server_id)
    assert message(act(nova, server_id, {"resize": {"flavorRef": "3"}}), 409) == (
        f"Cannot 'resize' instance {server_id} while it is in vm_state resized")
    assert act(nova, server_id, {"confirmResize": None}).status_code == 204
    settled(nova, server_id, "ACTIVE")
    # Shrinking the root disk (20 GB → 1 GB) is refused before anything moves.
    assert message(act(nova, server_id, {"resize": {"flavorRef": "1"}}), 400) == (
        "Server disk was unable to be resized because: Unable to resize disk down.")
    assert nova.delete(f"/servers/{server_id}").status_code == 204

    # Quota: the upsize of cores (1 → 2) does not fit a limit of 1 core.
    with member_compute(cloud, member) as mine:
        theirs = boot(mine, cloud, name="quota")
        settled(nova, theirs, "ACTIVE")
        r = nova.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"cores": 1}})
        assert r.status_code == 200, r.text
        assert message(act(mine, theirs, {"resize": {"flavorRef": "3"}}), 403) == (
            "Quota exceeded for cores: Requested 1, but already used 1 of 1 cores")
        server = mine.get(f"/servers/{theirs}").json()["server"]
        assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
        assert migration_count(cloud, theirs) == 0
        # Members may resize (within quota) but not cold migrate.
        assert act(mine, theirs, {"migrate": None}).status_code == 403
        nova.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"cores": 20}})
        assert act(mine, theirs, {"resize": {"flavorRef": "2"}}).status_code == 202
        settled(nova, theirs, "VERIFY_RESIZE")
        assert act(mine, theirs, {"confirmResize": None}).status_code == 204
        settled(nova, theirs, "ACTIVE")
        assert mine.delete(f"/servers/{theirs}").status_code == 204


def migration_count(cloud: Cloud, server_id: str) -> int:
    try:
        migration_of(cloud, server_id)
    except AssertionError:
        return 0
    return 1


# step → (the host whose fake fails: "source"/"dest", its operation, the
# action after which it fails, where the server ends: status, host, flavor).
FAILURES = {
    "prep": ("dest", "prepare_migration", "resize", ("ACTIVE", "source", "m1.tiny")),
    "resize_instance": ("source", "migrate_disk_and_power_off", "resize", ("ERROR", "source", "m1.tiny")),
    "finish": ("dest", "finish_migration", "resize", ("ERROR", "dest", "m1.small")),
    "confirm": ("source", "confirm_migration", "confirmResize", ("ERROR", "dest", "m1.small")),
    "revert": ("dest", "destroy", "revertResize", ("ERROR", "dest", "m1.small")),
    "finish_revert": ("source", "finish_revert_migration", "revertResize", ("ERROR", "source", "m1.tiny")),
}
EVENTS = {"prep": "compute_prep_resize", "resize_instance": "compute_resize_instance",
          "finish": "compute_finish_resize", "confirm": "compute_confirm_resize", "revert": "compute_revert_resize",
          "finish_revert": "compute_finish_revert_resize"}


@pytest.mark.parametrize("step", list(FAILURES))
def test_a_failed_step_leaves_a_recoverable_server(cloud: Cloud, nova: httpx.Client, step: str) -> None:
    failing, operation, action, (status, where, flavor) = FAILURES[step]
    server_id, source = new_server(cloud, nova, f"fails-{step}")
    hosts = {"source": source, "dest": other(source)}
    driver = fake(cloud, hosts[failing])
    driver.fail_operations.add(operation)
    try:
        if action == "resize":
            assert act(nova, server_id, {"resize": {"flavorRef": "2"}}).status_code == 202
        else:
            resize_to_verify(cloud, nova, server_id)
            assert act(nova, server_id, {action: None}).status_code == (204 if action == "confirmResize" else 202)
        server = settled(nova, server_id, status)
    finally:
        driver.fail_operations.discard(operation)
    migration = migration_of(cloud, server_id)
    assert (server["OS-EXT-SRV-ATTR:host"], server["flavor"]["original_name"]) == (hosts[where], flavor)
    assert migration.status == "error"
    if status == "ERROR":
        assert server["fault"]["message"].startswith(f"injected failure: {operation} of instance {server_id}")
    else:
        assert "fault" not in server
    # The instance holds its flavor where it is; the migration holds nothing.
    assert allocations(cloud, nova, server_id) == {hosts[where]: TINY if flavor == "m1.tiny" else SMALL}
    assert allocations(cloud, nova, migration.uuid) == {}
    assert (EVENTS[step], "Error") in events(nova, server_id, action)
    # The guest is where the server is; no other copy is left, except the
    # source's copy a failed confirmation could not delete (as in Nova).
    placed = guests(cloud, server_id)
    assert placed[hosts[where]][0] == "guest"
    expected_copies = {hosts[where]} | ({f"{source}:kept"} if step == "confirm" else set())
    assert set(placed) == expected_copies
    if status == "ERROR":
        # A hard reboot brings it back, as Nova's fault hint says.
        assert act(nova, server_id, {"reboot": {"type": "HARD"}}).status_code == 202
        server = settled(nova, server_id, "ACTIVE")
        assert server["OS-EXT-SRV-ATTR:host"] == hosts[where]
    if step == "confirm":
        cloud.run(fake(cloud, source).confirm_migration(server_id))
    assert nova.delete(f"/servers/{server_id}").status_code == 204
    wait_status(nova, server_id, {"DELETED"})
    assert allocations(cloud, nova, server_id) == {}
    assert guests(cloud, server_id) == {}


def test_resizes_are_confirmed_after_the_window(cloud: Cloud, nova: httpx.Client,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server_id, source = new_server(cloud, nova, "auto")
    resize_to_verify(cloud, nova, server_id)
    dest = compute(cloud, other(source))
    # Not yet: the window (a day by default) has not passed.
    assert cloud.run(resize_confirm.confirm_due(dest)) == 0
    assert settled(nova, server_id, "VERIFY_RESIZE")
    # Nor on the source: moves are confirmed by their destination.
    for manager in (dest, compute(cloud, source)):
        monkeypatch.setattr(manager, "settings", manager.settings.model_copy(update={"resize_confirm_window": 0.01}))
    time.sleep(0.02)
    assert cloud.run(resize_confirm.confirm_due(compute(cloud, source))) == 0
    time.sleep(0.02)
    assert cloud.run(resize_confirm.confirm_due(dest)) == 1
    cloud.run(dest.confirm_resizes())  # the periodic task itself: nothing left to confirm
    server = settled(nova, server_id, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == dest.host
    migration = migration_of(cloud, server_id)
    assert migration.status == "confirmed"
    assert allocations(cloud, nova, migration.uuid) == {}
    assert guests(cloud, server_id) == {dest.host: ("guest", 2048, RUNNING)}
    assert events(nova, server_id, "confirmResize") == [("compute_confirm_resize", "Success")]
    nova.delete(f"/servers/{server_id}")


def test_deleting_a_resized_server_frees_both_hosts(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, _ = new_server(cloud, nova, "deleted")
    resize_to_verify(cloud, nova, server_id)
    migration = migration_of(cloud, server_id)
    assert nova.delete(f"/servers/{server_id}").status_code == 204
    wait_status(nova, server_id, {"DELETED"})
    assert allocations(cloud, nova, server_id) == {}
    assert allocations(cloud, nova, migration.uuid) == {}
    assert migration_of(cloud, server_id).status == "confirmed"
    deadline = time.monotonic() + 10
    while guests(cloud, server_id) and time.monotonic() < deadline:  # the source's copy goes by a cast
        time.sleep(0.05)
    assert guests(cloud, server_id) == {}


def test_a_driver_refusal_is_not_a_leak(cloud: Cloud, nova: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception the fake does not inject (any driver error) takes the same path."""
    server_id, source = new_server(cloud, nova, "refusal")

    async def broken(*args: Any) -> dict[str, Any]:
        raise DriverError("the disk copy was interrupted")

    monkeypatch.setattr(fake(cloud, source), "migrate_disk_and_power_off", broken)
    assert act(nova, server_id, {"resize": {"flavorRef": "2"}}).status_code == 202
    server = settled(nova, server_id, "ERROR")
    assert server["fault"]["message"] == "the disk copy was interrupted"
    assert allocations(cloud, nova, server_id) == {source: TINY}
    nova.delete(f"/servers/{server_id}")


def rewind(cloud: Cloud, server_id: str, migration_status: str, **values: Any) -> None:
    """Put a server in VERIFY_RESIZE back to where an interrupted move left it."""

    async def write() -> None:
        assert cloud.runner.db is not None
        async with cloud.runner.db.session.begin() as session:
            await session.execute(update(Instance).where(Instance.uuid == server_id).values(**values))
            await session.execute(update(Migration).where(Migration.instance_uuid == server_id)
                                  .values(status=migration_status))

    cloud.run(write())


@pytest.mark.parametrize("interrupted", ["resize_migrating", "resize_finish", "resize_reverting"])
def test_a_restart_in_the_middle_of_a_move_undoes_it(cloud: Cloud, nova: httpx.Client, interrupted: str) -> None:
    server_id, source = new_server(cloud, nova, f"restarted-{interrupted}")
    dest = other(source)
    server = resize_to_verify(cloud, nova, server_id)
    migration = migration_of(cloud, server_id)
    tiny = nova.get("/flavors/1").json()["flavor"]
    assert server["flavor"]["original_name"] == "m1.small" and tiny["name"] == "m1.tiny"
    old_flavor = {"flavorid": "1", "name": "m1.tiny", "vcpus": 1, "memory_mb": 512, "root_gb": 1,
                  "ephemeral_gb": 0, "swap": 0, "extra_specs": {}}
    if interrupted == "resize_migrating":
        # The source died while handing the disk over: the destination has nothing yet.
        cloud.run(fake(cloud, dest).destroy(server_id))
        rewind(cloud, server_id, "migrating", host=source, node=source, vm_state="active",
               task_state="resize_migrating", flavor=old_flavor)
        restarted = source
    elif interrupted == "resize_finish":
        # The destination died while making the guest.
        rewind(cloud, server_id, "post-migrating", vm_state="active", task_state="resize_finish", flavor=old_flavor)
        restarted = dest
    else:
        # The destination died as it began a revert the user asked for.
        rewind(cloud, server_id, "reverting", task_state="resize_reverting")
        restarted = dest
    restart_compute(cloud, restarted)
    server = settled(nova, server_id, "ACTIVE")
    assert (server["OS-EXT-SRV-ATTR:host"], server["flavor"]["original_name"]) == (source, "m1.tiny")
    assert server["OS-EXT-STS:power_state"] == RUNNING
    assert migration_of(cloud, server_id).status == ("reverted" if interrupted == "resize_reverting" else "error")
    assert allocations(cloud, nova, server_id) == {source: TINY}
    assert allocations(cloud, nova, migration.uuid) == {}
    assert guests(cloud, server_id) == {source: ("guest", 512, RUNNING)}
    nova.delete(f"/servers/{server_id}")


def test_of_a_confirm_and_a_revert_sent_at_once_one_wins(cloud: Cloud, nova: httpx.Client) -> None:
    server_id, source = new_server(cloud, nova, "raced")
    resize_to_verify(cloud, nova, server_id)
    barrier = threading.Barrier(2)
    answers: dict[str, int] = {}

    def send(action: str) -> None:
        barrier.wait()
        answers[action] = act(nova, server_id, {action: None}).status_code

    threads = [threading.Thread(target=send, args=(a,)) for a in ("confirmResize", "revertResize")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [a for a, code in answers.items() if code in (202, 204)]
    assert len(won) == 1, answers
    assert {code for a, code in answers.items() if a not in won} <= {400, 409}, answers
    server = settled(nova, server_id, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == (other(source) if won == ["confirmResize"] else source)
    assert allocations(cloud, nova, migration_of(cloud, server_id).uuid) == {}
    nova.delete(f"/servers/{server_id}")
