"""The base of every service's manager: the server side of its RPC
interface, plus the periodic tasks it declares."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from loom.bus.rpc import expose
from loom.context import RequestContext

F = TypeVar("F", bound=Callable[..., Any])
Spacing = float | Callable[[Any], float]


@dataclass(frozen=True)
class PeriodicSpec:
    name: str
    spacing: Spacing
    run_immediately: bool


def periodic(spacing: Spacing, *, run_immediately: bool = False) -> Callable[[F], F]:
    """Run the decorated ``async def task(self)`` every ``spacing`` seconds.

    ``spacing`` may be a function of the manager, to read its settings; a
    spacing of 0 turns the task off.
    """

    def mark(fn: F) -> F:
        fn.__loom_periodic__ = PeriodicSpec(fn.__name__, spacing, run_immediately)  # type: ignore[attr-defined]
        return fn

    return mark


class Manager:
    binary: ClassVar[str] = "loom-service"
    topic: ClassVar[str] = ""

    def __init__(self, host: str) -> None:
        self.host = host
        self.started_at = time.time()

    async def start(self) -> None:
        """Prepare before messages are consumed (e.g. reconcile the host)."""

    async def started(self, drained: Callable[[], Awaitable[bool]]) -> None:
        """Called once messages are being consumed; ``drained()`` tells
        whether none waits for this service any more."""

    async def stop(self) -> None:
        """Release resources after the last in-flight message finished."""

    def periodic_tasks(self) -> list[tuple[PeriodicSpec, Callable[[], Any]]]:
        tasks = []
        for name in dir(type(self)):
            spec = getattr(getattr(type(self), name, None), "__loom_periodic__", None)
            if isinstance(spec, PeriodicSpec):
                tasks.append((spec, getattr(self, name)))
        return tasks

    def spacing(self, spec: PeriodicSpec) -> float:
        return spec.spacing(self) if callable(spec.spacing) else spec.spacing

    @expose
    async def ping(self, ctx: RequestContext) -> dict[str, Any]:
        """Who answers, and for how long it has been up."""
        return {
            "binary": self.binary,
            "host": self.host,
            "topic": self.topic,
            "uptime": round(time.time() - self.started_at, 3),
        }
