"""Starts the services a process runs and stops them in order.

``loom up`` runs every service here in one process; each distributed
subcommand runs one. Functional tests use the same runner, so the code
path is the same in every mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import uvicorn

from loom.api.app import ApiDeps, build_app, make_deps
from loom.bus.rpc import Bus
from loom.conductor.manager import ConductorManager
from loom.conductor.rpcapi import ConductorServiceRegistry
from loom.config import Settings
from loom.db import migrate
from loom.db.engine import Database
from loom.db.registry import DbServiceRegistry
from loom.errors import Invalid
from loom.identity.bootstrap import Credentials, bootstrap
from loom.manager import Manager
from loom.objects import defaults
from loom.scheduler.manager import SchedulerManager
from loom.service import Service, ServiceRegistry

LOG = logging.getLogger(__name__)

ROLES = ("conductor", "scheduler", "compute", "api")
# Roles that must not open the database (a compromised host must not reach it).
NO_DATABASE = frozenset({"compute"})


def _hosts(s: Settings) -> tuple[str, ...]:
    if s.compute.fake_hosts <= 1:
        return (s.service.host,)
    return tuple(f"{s.service.host}-{i}" for i in range(1, s.compute.fake_hosts + 1))


class _ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The runner owns signal handling for every service in the process.
        yield


@dataclass
class Runner:
    settings: Settings
    roles: tuple[str, ...]
    compute_hosts: tuple[str, ...] = ()
    migrate_database: bool = False
    # Create the default domain, roles, admin and catalog (loom up does).
    bootstrap: bool = False
    credentials: Credentials | None = None
    db: Database | None = None
    bus: Bus | None = None
    services: list[Service] = field(default_factory=list)
    api: _ApiServer | None = None
    api_deps: ApiDeps | None = None
    _api_task: asyncio.Task[None] | None = None

    @property
    def api_url(self) -> str | None:
        if self.api is None or not self.api.servers:
            return None
        host, port = self.api.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        s = self.settings
        if any(role not in NO_DATABASE for role in self.roles):
            self.db = Database(s.database_url, pool_size=s.database.pool_size, echo=s.database.echo)
            if self.migrate_database:
                await migrate.upgrade(self.db)
            if self.bootstrap:
                self.credentials = await bootstrap(s, self.db)
                await defaults.ensure(s, self.db)
        self.bus = Bus.from_settings(s.bus)
        await self.bus.start()
        try:
            for role in self.roles:
                if role == "api":
                    await self._start_api()
                elif role == "compute":
                    for host in self.compute_hosts or _hosts(s):
                        await self._start_service(self._compute_manager(host))
                else:
                    await self._start_service(self._manager(role))
        except BaseException:
            await self.stop()
            raise

    def _manager(self, role: str) -> Manager:
        host = self.settings.service.host
        if role == "conductor":
            assert self.db is not None
            return ConductorManager(host, self.db, self.bus)
        if role == "scheduler":
            assert self.db is not None
            return SchedulerManager(host, self.db, service_down_time=self.settings.service.down_time)
        raise ValueError(f"unknown service {role!r}")

    def _compute_manager(self, host: str) -> Manager:
        from loom.compute.manager import ComputeManager
        from loom.virt.fake import FakeDriver

        assert self.bus is not None
        c = self.settings.compute
        state = self.settings.data_dir / "fake-hosts" / host if c.fake_persist else None
        driver = FakeDriver(host=host, vcpus=c.fake_vcpus, memory_mb=c.fake_memory_mb, disk_gb=c.fake_disk_gb,
                            spawn_delay=c.fake_spawn_delay, state_path=state)
        return ComputeManager(host, driver, self.bus, c)

    def _registry(self, manager: Manager) -> ServiceRegistry:
        assert self.bus is not None
        if self.db is None or manager.topic == "compute":
            return ConductorServiceRegistry(self.bus)
        return DbServiceRegistry(self.db)

    async def _start_service(self, manager: Manager) -> None:
        assert self.bus is not None
        service = Service(manager, bus=self.bus, settings=self.settings.service,
                          registry=self._registry(manager))
        await service.start()
        self.services.append(service)

    async def _start_api(self) -> None:
        assert self.db is not None and self.bus is not None
        self.api_deps = make_deps(self.settings, self.db, self.bus)
        await self.api_deps.identity.start()
        await self.api_deps.images.start()
        app = build_app(self.api_deps)
        config = uvicorn.Config(
            app, host=self.settings.api.host, port=self.settings.api.port,
            log_config=None, access_log=False, lifespan="off", server_header=False,
        )
        self.api = _ApiServer(config)
        self._api_task = asyncio.create_task(self.api.serve(), name="api")
        while not self.api.started:
            if self._api_task.done():
                with contextlib.suppress(SystemExit):
                    await self._api_task
                raise Invalid(f"the API could not listen on {config.host}:{config.port}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop taking requests first, then services in reverse start order."""
        if self.api is not None and self._api_task is not None:
            self.api.should_exit = True
            with contextlib.suppress(Exception):
                await self._api_task
            self.api = self._api_task = None
        if self.api_deps is not None:
            await self.api_deps.images.stop()
            await self.api_deps.identity.stop()
            self.api_deps = None
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                LOG.exception("stopping %s failed", service.name)
        self.services.clear()
        if self.bus is not None:
            await self.bus.close()
            self.bus = None
        if self.db is not None:
            await self.db.close()
            self.db = None

    async def run_until_signalled(self, on_ready: Callable[[Runner], None] | None = None) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            if on_ready is not None:
                on_ready(self)
            await stop.wait()
            LOG.info("signal received: stopping")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()
