"""A host that fails every build: its builds are rescheduled to the other
hosts, its claims are released, and the scheduler learns to avoid it."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from loom.db.models import ComputeNode, PlacementAllocation, ResourceProvider
from loom.scheduler.hosts import compute_node_uuid
from loom.virt.driver import InstanceSpec
from tests.functional.cloud import Cloud
from tests.functional.compute_support import admin_fixture, cloud_fixture, demo_image, wait_status

BAD = "test-host-1"


cloud = cloud_fixture(**{"compute.fake_hosts": 3})
nova = admin_fixture()


def _always_fail(spec: InstanceSpec) -> bool:
    return True


def test_builds_leave_a_failing_host(nova: httpx.Client, cloud: Cloud) -> None:
    manager = next(s.manager for s in cloud.runner.services if getattr(s.manager, "host", "") == BAD
                   and s.manager.topic == "compute")
    manager.driver.fail_spawn = _always_fail
    body = {"server": {"name": "r", "imageRef": demo_image(nova, cloud), "flavorRef": "1", "networks": "none",
                       "min_count": 6, "max_count": 6, "return_reservation_id": True}}
    r = nova.post("/servers", json=body)
    assert r.status_code == 202, r.text
    listed = nova.get("/servers", params={"reservation_id": r.json()["reservation_id"]}).json()["servers"]
    assert len(listed) == 6
    hosts = [wait_status(nova, s["id"], {"ACTIVE", "ERROR"})["OS-EXT-SRV-ATTR:host"] for s in listed]
    assert BAD not in hosts and all(hosts), hosts
    assert cloud.run(manager.driver.list_instances()) == []

    async def state() -> tuple[list[str], int]:
        assert cloud.runner.db is not None
        async with cloud.runner.db.session() as session:
            providers = list(await session.scalars(select(ResourceProvider.uuid).join(
                PlacementAllocation, PlacementAllocation.provider_id == ResourceProvider.id)))
            failed = await session.scalar(select(ComputeNode.failed_builds).where(ComputeNode.host == BAD))
        return providers, int(failed or 0)

    providers, failed = cloud.run(state())
    assert compute_node_uuid(BAD) not in providers
    assert len(providers) == 6 * 3  # VCPU, MEMORY_MB and DISK_GB for each server, all on the good hosts
    assert failed >= 1
