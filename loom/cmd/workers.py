"""``loom api`` with several worker processes (``api.workers``).

The parent binds the listening socket and forks the workers, each a whole
API: its own event loop, database pool and bus connection, accepting on
the shared socket (the kernel spreads connections among them). The parent
only supervises: it passes SIGTERM and SIGINT on, waits for the workers to
finish their requests, and starts again a worker that died.

``GET /metrics`` on the API shows the totals of every worker
(loom.metrics.workers: they read each other's over Unix sockets in a
directory made fresh at each start). With ``service.metrics_port`` set,
worker ``i`` also serves its own metrics alone on that port plus ``i``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from types import FrameType

from loom import eventloop
from loom.config import Settings
from loom.metrics.workers import socket_path

LOG = logging.getLogger(__name__)

RESTART_PAUSE = 1.0  # seconds before a dead worker is started again


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def _run_worker(settings: Settings, index: int, sock: socket.socket, metrics_dir: Path) -> None:
    from loom.cmd.runner import Runner
    from loom.metrics import workers as worker_metrics

    await worker_metrics.start(metrics_dir, index)
    try:
        await Runner(settings, roles=("api",), api_socket=sock).run_until_signalled()
    finally:
        await worker_metrics.stop()


def _worker(settings: Settings, index: int, sock: socket.socket, metrics_dir: Path) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if settings.service.metrics_port:
        settings = settings.replace(**{"service.metrics_port": settings.service.metrics_port + index})
    try:
        eventloop.run(_run_worker(settings, index, sock, metrics_dir))
    except BaseException:
        LOG.exception("API worker %d failed", index)
        return 1
    return 0


def serve(settings: Settings) -> int:
    """Run ``settings.api.workers`` API workers until signalled; the exit
    status is 0 when every worker stopped cleanly."""
    sock = listen(settings.api.host, settings.api.port)
    metrics_dir = Path(tempfile.mkdtemp(prefix="loom-api-metrics-"))
    children: dict[int, int] = {}  # pid: worker index
    stopping = False
    status = 0

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _worker(settings, index, sock, metrics_dir)
            finally:
                os._exit(code)
        children[pid] = index

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(settings.api.workers):
        start(index)
    LOG.info("API on %s:%d with %d workers", settings.api.host, settings.api.port, settings.api.workers)
    while children:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        index_or_none = children.pop(pid, None)
        if index_or_none is None:
            continue
        code = os.waitstatus_to_exitcode(wait_status)
        socket_path(metrics_dir, index_or_none).unlink(missing_ok=True)  # it died: nothing answers there
        if stopping:
            status = status or (1 if code else 0)
            continue
        LOG.warning("API worker %d (pid %d) exited with %d; starting it again", index_or_none, pid, code)
        time.sleep(RESTART_PAUSE)
        if not stopping:
            start(index_or_none)
    sock.close()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return status
