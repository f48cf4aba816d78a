"""Prometheus metrics: what every Loom process measures about itself.

The metrics are process-wide (Prometheus' default registry), as a
process's metrics are: a service labels what it records with its topic,
so ``loom up``'s one process keeps its services apart. Recording is a
counter or histogram observation, cheap enough for the boot path; what
costs a query (instances by state, queue depths) is gathered off the hot
path, periodically (``refresh_instances``, the service heartbeat) or at
scrape time (database pools).

Where they are read: ``GET /metrics`` on the API, and for any process a
small HTTP listener on ``service.metrics_port`` (``serve``).
"""

from __future__ import annotations

import bisect
import functools
import logging
import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LOG = logging.getLogger(__name__)

# Seconds: an RPC hop on loopback takes a few hundred microseconds, a
# boot's select_destinations tens of milliseconds, a stuck call a minute.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0)
HOST_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)



class _Series:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class FastHistogram(Collector):
    """A histogram for every RPC message's path: an observation is a
    bisect and two additions, with no lock (prometheus_client's Histogram
    takes one per observation and scans its buckets, several times the
    cost). Each process records from its one event loop; a scrape from the
    listener's thread reads the counts as they are at that moment."""

    def __init__(self, name: str, documentation: str, labelnames: list[str], buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.bounds = tuple(sorted(buckets))
        self.series: dict[tuple[str, ...], _Series] = {}
        REGISTRY.register(self)

    def labels(self, *values: str) -> _Series:
        series = self.series.get(values)
        if series is None:
            series = self.series.setdefault(values, _Series(self.bounds))
        return series

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, series in list(self.series.items()):
            counts = list(series.counts)
            cumulative, buckets = 0, []
            for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else floatToGoString(bound), cumulative))
            family.add_metric(list(values), buckets, series.sum)
        yield family


RPC_CLIENT = FastHistogram(
    "loom_rpc_client_seconds", "RPC messages sent: cast (until the bus has it) or call (until the reply), "
    "by topic, method and outcome", ["topic", "method", "kind", "outcome"], buckets=LATENCY_BUCKETS)
RPC_SERVER = FastHistogram(
    "loom_rpc_server_seconds", "RPC messages handled, by topic, method and outcome",
    ["topic", "method", "outcome"], buckets=LATENCY_BUCKETS)
API_REQUEST = FastHistogram(
    "loom_api_request_seconds", "HTTP requests the API answered, by API, method and status",
    ["api", "method", "status"], buckets=LATENCY_BUCKETS)
QUEUE_DEPTH = Gauge("loom_bus_queue_depth", "Messages waiting in a service's queues (at its last heartbeat)",
                    ["queue"])
SCHEDULER_SELECT = Histogram(
    "loom_scheduler_select_seconds", "select_destinations requests and their time, by outcome",
    ["outcome"], buckets=LATENCY_BUCKETS)
SCHEDULER_HOSTS = Histogram(
    "loom_scheduler_hosts_considered", "Hosts with room (placement candidates with a compute service) per "
    "select_destinations", buckets=HOST_BUCKETS)
SCHEDULER_NO_VALID_HOST = Counter(
    "loom_scheduler_no_valid_host_total", "Requests the scheduler could not place, by reason", ["reason"])
SERVICE_INFO = Gauge("loom_service_info", "The services this process runs (1 each)", ["binary", "host", "topic"])
INSTANCES = Gauge("loom_instances", "Instances (not deleted) by vm_state, from the database", ["vm_state"])


def outcome(exc: BaseException | None) -> str:
    """``ok``, or the error's class name (Loom's errors are a short list)."""
    return "ok" if exc is None else type(exc).__name__


class _PoolCollector(Collector):
    """The connection pools of the databases this process opened, read at
    scrape time (reading them costs nothing)."""

    def __init__(self) -> None:
        self.pools: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        checked_out = GaugeMetricFamily("loom_db_pool_checked_out", "Database connections in use", labels=["db"])
        size = GaugeMetricFamily("loom_db_pool_size", "Database connections the pool keeps", labels=["db"])
        overflow = GaugeMetricFamily("loom_db_pool_overflow", "Connections open beyond the pool's size",
                                     labels=["db"])
        totals: dict[str, list[float]] = {}
        for engine in list(self.pools.values()):
            pool = engine.pool
            name = engine.url.render_as_string(hide_password=True)
            t = totals.setdefault(name, [0.0, 0.0, 0.0])
            for i, attr in enumerate(("checkedout", "size", "overflow")):
                fn = getattr(pool, attr, None)
                if fn is not None:
                    t[i] += max(float(fn()), 0.0)
        for name, (out, sz, over) in totals.items():
            checked_out.add_metric([name], out)
            size.add_metric([name], sz)
            overflow.add_metric([name], over)
        yield checked_out
        yield size
        yield overflow


class _InflightCollector(Collector):
    """Messages the RPC servers of this process are handling, read at
    scrape time from the servers themselves: nothing on the message path."""

    def __init__(self) -> None:
        self.servers: weakref.WeakSet[Any] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("loom_rpc_inflight", "RPC messages being handled now", labels=["topic"])
        per_topic: dict[str, int] = {}
        for server in list(self.servers):
            per_topic[server.topic] = per_topic.get(server.topic, 0) + server.inflight
        for topic, count in sorted(per_topic.items()):
            family.add_metric([topic], count)
        yield family


_POOLS = _PoolCollector()
REGISTRY.register(_POOLS)
_INFLIGHT = _InflightCollector()
REGISTRY.register(_INFLIGHT)


def watch_rpc_server(server: Any) -> None:
    """Report this RPC server's in-flight messages at scrape time."""
    _INFLIGHT.servers.add(server)


def watch_pool(engine: Any) -> None:
    """Report this (synchronous) SQLAlchemy engine's pool at scrape time."""
    _POOLS.pools[id(engine)] = engine


def render() -> tuple[bytes, str]:
    """The text exposition of every metric, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class MetricsServer:
    """The listener of a process without HTTP of its own (a thread: the
    scrape never waits on the event loop)."""

    def __init__(self, host: str, port: int) -> None:
        from prometheus_client.exposition import start_http_server

        self.server, self._thread = start_http_server(port, addr=host)
        self.port: int = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def serve(host: str, port: int) -> MetricsServer:
    """Listen on ``host:port`` (0: any free port) for scrapes."""
    server = MetricsServer(host, port)
    LOG.info("metrics on http://%s:%d/metrics", host, server.port)
    return server


@functools.lru_cache(maxsize=8192)
def child(metric: Any, labels: tuple[str, ...]) -> Any:
    """``metric.labels(*labels)``, remembered: the hot path's lookup is
    one cached call instead of a locked one per observation."""
    return metric.labels(*labels)
