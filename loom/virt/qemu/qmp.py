"""A QMP session per operation, over the ``qemu.qmp`` package.

One short connection per operation rather than one held open: a QMP socket
serves a single client, and a compute service that restarts (or a second
driver object looking at the same guests) must be able to reach every QEMU
at any time. Connecting costs a millisecond or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from qemu.qmp import EventListener, QMPClient, QMPError
from qemu.qmp import ExecuteError as _QmpExecuteError

from loom.virt.driver import DriverError

# qemu.qmp logs every message at DEBUG and a refused connection at ERROR;
# a QEMU that has just exited is routine here, and every failure reaches
# the caller as a DriverError anyway.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)

CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0


class MonitorUnavailable(DriverError):
    """Nothing answers on the QMP socket: the QEMU process is gone (or hung)."""


class CommandFailed(DriverError):
    """QEMU refused a QMP command."""


class Monitor:
    """A connected QMP session; make one with :func:`connect`."""

    def __init__(self, client: QMPClient, path: Path, timeout: float) -> None:
        self._client = client
        self.path = path
        self.timeout = timeout

    async def execute(self, command: str, arguments: dict[str, Any] | None = None,
                      timeout: float | None = None) -> Any:
        """Run ``command``; its ``return`` value. CommandFailed if QEMU
        refuses it, MonitorUnavailable if the connection is lost."""
        try:
            return await asyncio.wait_for(self._client.execute(command, arguments),
                                          self.timeout if timeout is None else timeout)
        except _QmpExecuteError as exc:
            raise CommandFailed(f"QMP {command} failed: {exc}", command=command,
                                error_class=exc.error_class) from None
        except (QMPError, OSError, EOFError, TimeoutError) as exc:
            raise MonitorUnavailable(f"QMP {command} on {self.path} got no answer: {exc or type(exc).__name__}",
                                     command=command) from None

    async def status(self) -> str:
        """The VM's run state, as ``query-status`` names it (running, paused...)."""
        return str((await self.execute("query-status"))["status"])

    @contextlib.contextmanager
    def events(self, *names: str) -> Iterator[EventListener]:
        """Collect the named events from now on: ``with m.events("RESET") as e:``
        then ``await wait_event(e, timeout)``."""
        listener = EventListener(names=list(names))
        with self._client.listen(listener):
            yield listener


async def wait_event(listener: EventListener, timeout: float) -> dict[str, Any] | None:
    """The next event the listener collected, or None after ``timeout`` s."""
    try:
        return dict(await asyncio.wait_for(listener.get(), timeout))
    except TimeoutError:
        return None


@contextlib.asynccontextmanager
async def connect(path: Path, *, timeout: float = COMMAND_TIMEOUT,
                  connect_timeout: float = CONNECT_TIMEOUT) -> AsyncIterator[Monitor]:
    """A negotiated QMP session on the unix socket ``path``; MonitorUnavailable
    if nothing answers there in ``connect_timeout`` seconds."""
    client = QMPClient(path.name)
    try:
        await asyncio.wait_for(client.connect(str(path)), connect_timeout)
    except (QMPError, OSError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await client.disconnect()
        raise MonitorUnavailable(f"cannot reach the QMP socket {path}: {exc or type(exc).__name__}") from None
    try:
        yield Monitor(client, path, timeout)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), connect_timeout)


async def execute(path: Path, command: str, arguments: dict[str, Any] | None = None, *,
                  timeout: float = COMMAND_TIMEOUT) -> Any:
    """Connect, run one command, disconnect."""
    async with connect(path, timeout=timeout) as monitor:
        return await monitor.execute(command, arguments)


def key_sequence(*keys: str) -> dict[str, Any]:
    """``send-key`` arguments pressing ``keys`` together (QKeyCode names)."""
    return {"keys": [{"type": "qcode", "data": key} for key in keys]}

