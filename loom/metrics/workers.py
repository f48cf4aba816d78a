"""The API's metrics summed over its worker processes (``api.workers``).

Each worker keeps its own counters (prometheus_client's default registry
is per process) and answers its siblings on a Unix socket in a directory
the parent makes fresh at start (``worker-<i>.sock``); the parent removes
a dead worker's socket. ``GET /metrics`` on the API reads every live
worker's exposition and adds the series up, so any worker answers with the
service's totals. A dead worker's counts go with it: the totals then drop,
which Prometheus takes for a counter reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from loom import metrics

LOG = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 5.0
# Gauges every worker reads from one shared source: the service's value is
# any worker's, not their sum.
SHARED = frozenset({"loom_instances", "loom_bus_queue_depth", "loom_service_info", "python_info",
                    "process_max_fds"})


def socket_path(directory: Path, index: int) -> Path:
    return directory / f"worker-{index}.sock"


class Siblings:
    """This worker's end: serve its own metrics, gather everyone's."""

    def __init__(self, directory: Path, index: int) -> None:
        self.directory = directory
        self.path = socket_path(directory, index)
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.server = await asyncio.start_unix_server(self._answer, path=str(self.path))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            body, _ = metrics.render()
            writer.write(body)
            await writer.drain()
        finally:
            writer.close()

    async def gather(self) -> bytes:
        """The exposition of every live worker, summed."""
        own, _ = metrics.render()
        others = [p for p in sorted(self.directory.glob("worker-*.sock")) if p != self.path]
        texts = [own.decode(), *[t for t in await asyncio.gather(*map(_read, others)) if t is not None]]
        return merge(texts)


async def _read(path: Path) -> str | None:
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            reader, writer = await asyncio.open_unix_connection(str(path))
            try:
                return (await reader.read()).decode()
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:  # gone (dead, restarting) or stuck: its share is missing
        LOG.warning("no metrics from API worker socket %s: %s", path.name, exc)
        return None


def merge(texts: Iterable[str]) -> bytes:
    """Text expositions added up series by series (a shared gauge's
    largest value, a creation time's earliest)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            kept = families.setdefault(family.name, family)
            series = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in series:
                    series[key] = sample.value
                elif family.name in SHARED:
                    series[key] = max(series[key], sample.value)
                elif sample.name.endswith("_created") or sample.name == "process_start_time_seconds":
                    series[key] = min(series[key], sample.value)
                else:
                    series[key] += sample.value
            if kept is not family and kept.type != family.type:
                LOG.warning("metric %s has types %s and %s across workers", family.name, kept.type, family.type)
    for name, family in families.items():
        family.samples = [Sample(sample, dict(labels), value) for (sample, labels), value in values[name].items()]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))
    return generate_latest(registry)


class _Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


_siblings: Siblings | None = None


async def start(directory: Path, index: int) -> Siblings:
    """Make this process worker ``index`` of the API's workers."""
    global _siblings
    _siblings = Siblings(directory, index)
    await _siblings.start()
    return _siblings


async def stop() -> None:
    global _siblings
    if _siblings is not None:
        await _siblings.close()
        _siblings = None


async def render() -> tuple[bytes, str]:
    """What ``GET /metrics`` on the API shows: the service's totals with
    several workers, this process's metrics otherwise."""
    if _siblings is None:
        return metrics.render()
    return await _siblings.gather(), CONTENT_TYPE_LATEST
