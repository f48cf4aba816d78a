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
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loom import metrics
from loom.bus.rpc import Bus
from loom.cmd import heap
from loom.conductor.rpcapi import ConductorServiceRegistry
from loom.config import Settings
from loom.errors import Invalid
from loom.manager import Manager
from loom.service import Service, ServiceRegistry

# Each role's code is imported when that role starts: a compute process
# then never loads the API, the database or the scheduler (memory).
if TYPE_CHECKING:
    from loom.api.app import ApiDeps
    from loom.cmd.api_server import ApiServer
    from loom.console.proxy import ConsoleProxy
    from loom.db.engine import Database
    from loom.identity.bootstrap import Credentials
    from loom.image.base import ImageClient
    from loom.virt.driver import VirtDriver

LOG = logging.getLogger(__name__)

ROLES = ("conductor", "scheduler", "compute", "api", "console")
# Roles that must not open the database (a compromised host must not reach it).
NO_DATABASE = frozenset({"compute"})


def _hosts(s: Settings) -> tuple[str, ...]:
    if s.compute.fake_hosts <= 1:
        return (s.service.host,)
    return tuple(f"{s.service.host}-{i}" for i in range(1, s.compute.fake_hosts + 1))


def _qemu_driver(s: Settings) -> VirtDriver:
    from loom.virt.qemu import QemuDriver, QemuOptions

    c = s.compute
    fallback = c.qemu_fallback_image
    if not fallback and (s.data_dir / "guest" / "loom-test-guest.qcow2").is_file():
        fallback = str(s.data_dir / "guest" / "loom-test-guest.qcow2")
    options = QemuOptions(accelerator=c.qemu_accelerator, vnc=c.qemu_vnc, console_bytes=c.qemu_console_bytes,
                          soft_reboot_timeout=c.qemu_soft_reboot_timeout, fallback_image=fallback,
                          user_network=c.qemu_user_network, cgroups=c.qemu_cgroups,
                          cgroup_parent=c.qemu_cgroup_parent,
                          cgroup_memory_overhead_mb=c.qemu_cgroup_memory_overhead_mb,
                          pcie_ports=c.qemu_pcie_ports, detach_timeout=c.qemu_detach_timeout)
    return QemuDriver(Path(c.qemu_state_dir) if c.qemu_state_dir else s.data_dir / "qemu", options)


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
    api: ApiServer | None = None
    api_deps: ApiDeps | None = None
    _api_task: asyncio.Task[None] | None = None
    # A listening socket the API serves on instead of binding its own (the
    # API's worker processes share one).
    api_socket: socket.socket | None = None
    metrics_server: metrics.MetricsServer | None = None
    console_proxy: ConsoleProxy | None = None
    image_client: ImageClient | None = None
    _metrics_task: asyncio.Task[None] | None = None

    @property
    def api_url(self) -> str | None:
        if self.api is None or not self.api.servers:
            return None
        host, port = self.api.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        s = self.settings
        if any(role not in NO_DATABASE for role in self.roles):
            from loom.db import migrate
            from loom.db.engine import Database
            from loom.identity.bootstrap import bootstrap
            from loom.objects import defaults

            self.db = Database(s.database_url, pool_size=s.database.pool_size, echo=s.database.echo)
            metrics.watch_pool(self.db.engine.sync_engine)
            if self.migrate_database:
                await migrate.upgrade(self.db)
            if self.bootstrap:
                self.credentials = await bootstrap(s, self.db)
                await defaults.ensure(s, self.db)
        self.bus = Bus.from_settings(s.bus)
        await self.bus.start()
        try:
            self._start_metrics()
            for role in self.roles:
                if role == "api":
                    await self._start_api()
                elif role == "console":
                    await self._start_console_proxy()
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
            from loom.conductor.manager import ConductorManager

            assert self.db is not None
            return ConductorManager(host, self.db, self.bus)
        if role == "scheduler":
            from loom.scheduler.manager import SchedulerManager

            assert self.db is not None
            return SchedulerManager(host, self.db, service_down_time=self.settings.service.down_time)
        raise ValueError(f"unknown service {role!r}")

    def _compute_manager(self, host: str) -> Manager:
        from loom.compute.manager import ComputeManager
        from loom.virt.fake import FakeDriver

        assert self.bus is not None
        c = self.settings.compute
        driver: VirtDriver
        if c.driver == "qemu":
            driver = _qemu_driver(self.settings)
        elif c.driver == "fake":
            state = self.settings.data_dir / "fake-hosts" / host if c.fake_persist else None
            driver = FakeDriver(host=host, vcpus=c.fake_vcpus, memory_mb=c.fake_memory_mb, disk_gb=c.fake_disk_gb,
                                spawn_delay=c.fake_spawn_delay, state_path=state)
        else:
            raise Invalid(f"unknown compute driver {c.driver!r}: expected fake or qemu")
        return ComputeManager(host, driver, self.bus, c, images=self._image_client())

    def _image_client(self) -> ImageClient | None:
        """How compute hosts reach images: in process where this process has
        the database, else over the Image API as the service user (one
        client for every host of the process); None where no service user
        password is set (the fake driver needs no images)."""
        if self.image_client is not None:
            return self.image_client
        if self.db is not None:
            from loom.image.client import LocalImageClient
            from loom.image.service import ImageService

            self.image_client = LocalImageClient(ImageService(self.settings, self.db))
        elif self.settings.service_user.password:
            from loom.identity.session import ServiceSession
            from loom.image.remote import HttpImageClient

            self.image_client = HttpImageClient(ServiceSession.from_settings(self.settings),
                                                self.settings.image.endpoint)
        else:
            LOG.warning("no service_user.password: compute hosts here cannot read or upload images")
        return self.image_client

    def _registry(self, manager: Manager) -> ServiceRegistry:
        assert self.bus is not None
        if self.db is None or manager.topic == "compute":
            return ConductorServiceRegistry(self.bus)
        from loom.db.registry import DbServiceRegistry

        return DbServiceRegistry(self.db)

    async def _start_service(self, manager: Manager) -> None:
        assert self.bus is not None
        service = Service(manager, bus=self.bus, settings=self.settings.service,
                          registry=self._registry(manager))
        await service.start()
        self.services.append(service)

    def _start_metrics(self) -> None:
        s = self.settings.service
        if s.metrics_port:
            self.metrics_server = metrics.serve(s.metrics_host, s.metrics_port)
        if self.db is not None:
            from loom.metrics import instances

            self._metrics_task = asyncio.create_task(instances.refresh_forever(self.db, s.metrics_interval),
                                                     name="metrics")

    async def _start_console_proxy(self) -> None:
        from loom.console.proxy import ConsoleProxy

        assert self.db is not None
        self.console_proxy = ConsoleProxy(self.settings, self.db)
        await self.console_proxy.start()
        if self.settings.console.port == 0:  # the console URLs handed out name the port chosen
            self.settings = self.settings.replace(**{"console.port": self.console_proxy.port})

    async def _start_api(self) -> None:
        import uvicorn

        from loom.api.app import build_app, make_deps
        from loom.cmd.api_server import ApiServer

        assert self.db is not None and self.bus is not None
        # The proxy comes with the API, but not with each of several API workers (one port).
        if self.settings.console.with_api and self.api_socket is None and "console" not in self.roles:
            try:
                await self._start_console_proxy()
            except Invalid as exc:  # the cloud still runs; only its consoles do not
                LOG.error("%s: remote consoles will not work (choose another console.port)", exc.message)
                self.console_proxy = None
        self.api_deps = make_deps(self.settings, self.db, self.bus)
        await self.api_deps.identity.start()
        await self.api_deps.images.start()
        app = build_app(self.api_deps)
        config = uvicorn.Config(
            app, host=self.settings.api.host, port=self.settings.api.port,
            log_config=None, access_log=False, lifespan="off", server_header=False,
            timeout_keep_alive=self.settings.api.keep_alive_timeout,
        )
        self.api = ApiServer(config)
        sockets = [self.api_socket] if self.api_socket is not None else None
        self._api_task = asyncio.create_task(self.api.serve(sockets), name="api")
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
        if self.console_proxy is not None:
            await self.console_proxy.stop()
            self.console_proxy = None
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
        if self.image_client is not None:
            await self.image_client.close()
            self.image_client = None
        if self._metrics_task is not None:
            self._metrics_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._metrics_task
            self._metrics_task = None
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
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
            # A signal also ends a start that is still waiting (for a
            # conductor or a broker to answer, say).
            starting = asyncio.create_task(self.start(), name="start")
            waiting = asyncio.create_task(stop.wait(), name="stop")
            await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
                LOG.info("signal received while starting: stopping")
                return
            waiting.cancel()
            starting.result()
            heap.settle(self.settings.service.gc_threshold)
            if on_ready is not None:
                on_ready(self)
            await stop.wait()
            LOG.info("signal received: stopping")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()
