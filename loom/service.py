"""The service runtime: a manager bound to a topic and host.

A service registers itself and sends heartbeats (so "is it up" can be
answered), consumes its RPC topics, runs its manager's periodic tasks with
jitter (a task that raises is logged and runs again next time), and on
stop finishes in-flight work before it exits.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from loom import context as ctxmod
from loom import metrics
from loom.bus.rpc import Bus, RPCServer
from loom.config import ServiceSettings
from loom.context import RequestContext
from loom.errors import Temporary
from loom.manager import Manager, PeriodicSpec

LOG = logging.getLogger(__name__)


class ServiceRegistry(Protocol):
    """Where heartbeats go: the database directly, or the conductor for
    hosts that must not open the database."""

    async def report(self, ctx: RequestContext, host: str, binary: str, topic: str) -> None: ...


class Service:
    def __init__(
        self, manager: Manager, *, bus: Bus, settings: ServiceSettings, registry: ServiceRegistry,
    ) -> None:
        self.manager = manager
        self.bus = bus
        self.settings = settings
        self.registry = registry
        self.host = manager.host
        self.rpc: RPCServer = bus.server(manager.topic, manager.host, manager)
        self._tasks: list[asyncio.Task[None]] = []
        self._ctx = RequestContext.for_service(manager.binary)

    @property
    def name(self) -> str:
        return f"{self.manager.binary}@{self.host}"

    async def start(self) -> None:
        await self._first_report()
        await self.manager.start()
        await self.rpc.start()
        await self.manager.started(self._drained)
        self._tasks.append(self._loop("heartbeat", self.settings.report_interval, self._heartbeat))
        for spec, fn in self.manager.periodic_tasks():
            if self.manager.spacing(spec) > 0:  # a spacing of 0 turns the task off
                self._tasks.append(self._periodic(spec, fn))
        metrics.SERVICE_INFO.labels(self.manager.binary, self.host, self.manager.topic).set(1)
        LOG.info("%s started on topic %s", self.name, self.manager.topic)

    async def stop(self) -> None:
        """Stop consuming, let in-flight work finish, then stop the tasks."""
        await self.rpc.stop_consuming()
        if not await self.rpc.wait_idle(self.settings.shutdown_timeout):
            LOG.warning("%s stopped with %d messages still in flight", self.name, self.rpc.inflight)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.manager.stop()
        metrics.SERVICE_INFO.labels(self.manager.binary, self.host, self.manager.topic).set(0)
        LOG.info("%s stopped", self.name)

    async def _first_report(self) -> None:
        # In a distributed start the registry (database or conductor) may
        # come up after this service: wait for it rather than die.
        pause = 0.5
        while True:
            try:
                await self.report_state()
                return
            except Temporary as exc:
                LOG.warning("%s cannot register yet (%s); retrying in %.1fs", self.name, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)

    async def report_state(self) -> None:
        await self.registry.report(self._ctx, self.host, self.manager.binary, self.manager.topic)

    async def _heartbeat(self) -> None:
        await self.report_state()
        # The queue depths ride on the heartbeat: a look at the broker every
        # report_interval, never on a message's path.
        for queue in self.rpc.queues:
            depth = await self.bus.transport.queue_depth(queue)
            if depth is not None:
                metrics.QUEUE_DEPTH.labels(queue).set(depth)

    async def _drained(self) -> bool:
        """Whether no message waits in this service's own queue (a transport
        that cannot say counts as drained: nothing outlives its process)."""
        return not await self.bus.transport.queue_depth(self.rpc.queues[1])

    def _periodic(self, spec: PeriodicSpec, fn: Callable[[], Awaitable[Any]]) -> asyncio.Task[None]:
        spacing = self.manager.spacing(spec)
        return self._loop(spec.name, spacing, fn, spec.run_immediately)

    def _loop(
        self, name: str, spacing: float, fn: Callable[[], Awaitable[Any]], run_immediately: bool = False
    ) -> asyncio.Task[None]:
        jitter = self.settings.periodic_jitter

        async def run() -> None:
            delay = 0.0 if run_immediately else spacing * random.uniform(1 - jitter, 1)
            while True:
                await asyncio.sleep(delay)
                token = ctxmod.bind(RequestContext.for_service(self.manager.binary))
                try:
                    await fn()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    LOG.exception("periodic task %s of %s failed", name, self.name)
                finally:
                    ctxmod.unbind(token)
                # Jitter keeps many hosts from waking in step.
                delay = spacing * random.uniform(1 - jitter, 1 + jitter)

        return asyncio.create_task(run(), name=f"{self.name}:{name}")
