"""What the move tests (cold and live migration, resize, evacuation) share:
the flavors' placement amounts, a new server and its host, the fake hosts'
guests and usage, a server's newest migration record, restarting one
host's compute service. There are no tests here."""

from __future__ import annotations

import httpx

from loom.db.models import Migration
from loom.objects import migrations
from tests.functional.cloud import Cloud
from tests.functional.compute_support import boot, compute, fake, hosts, settled

RUNNING, SHUTDOWN = 1, 4
TINY = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}
SMALL = {"VCPU": 1, "MEMORY_MB": 2048, "DISK_GB": 20}


def new_server(cloud: Cloud, nova: httpx.Client, name: str) -> tuple[str, str]:
    """An ACTIVE m1.tiny server and its host."""
    server_id = boot(nova, cloud, name=name)
    return server_id, settled(nova, server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]


def guests(cloud: Cloud, server_id: str) -> dict[str, tuple[str, int, int]]:
    """Where the fake hosts hold the server: host → ("guest", memory, power
    state), and "<host>:kept" → ("kept", ...) for a move's kept source copy."""
    out: dict[str, tuple[str, int, int]] = {}
    for host in hosts(cloud):
        driver = fake(cloud, host)
        guest = driver._guests.get(server_id)
        if guest is not None:
            out[host] = ("guest", guest.spec.memory_mb, int(guest.power_state))
        kept = driver._kept.get(server_id)
        if kept is not None:
            out[f"{host}:kept"] = ("kept", kept.spec.memory_mb, int(kept.power_state))
    return out


def used_memory(cloud: Cloud, host: str) -> int:
    """Memory the host's hypervisor has given its guests (kept copies too)."""
    return int(cloud.run(fake(cloud, host).host_resources()).memory_mb_used)


def migration_of(cloud: Cloud, server_id: str) -> Migration:
    """The server's newest migration record."""

    async def newest() -> list[Migration]:
        assert cloud.runner.db is not None
        async with cloud.runner.db.session() as session:
            return await migrations.of_instance(session, server_id)

    found = cloud.run(newest())
    assert found, f"server {server_id} has no migration"
    return found[0]


def restart_compute(cloud: Cloud, host: str) -> None:
    """Stop ``host``'s compute service and start a new one on the same
    hypervisor state, as a restarted process would find it."""
    old = next(s for s in cloud.runner.services if s.manager is compute(cloud, host))

    async def restart() -> None:
        await old.stop()
        cloud.runner.services.remove(old)
        await cloud.runner._start_service(cloud.runner._compute_manager(host))

    cloud.run(restart())
