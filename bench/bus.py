"""Benchmark of Loom's RPC layer (``loom.bus.rpc``) over each transport.

What is measured, per transport (``memory`` and ``amqp``):

* **call latency**: ``RPCClient.call`` of a trivial ``echo`` method, one
  call at a time, timed from the call until its reply is back in the
  caller. Reported as p50, p99 and mean, in microseconds.
* **cast throughput**: ``RPCClient.cast`` of a trivial ``note`` method,
  sent 100 at a time (``asyncio.gather`` over batches, so the sender never
  has more than 100 in flight), timed from the first cast sent until the
  server has handled the last one, so delivery and dispatch are included.
  Reported in messages per second. Casts are persistent, as in Loom, so on
  RabbitMQ they go to a durable queue and are written to disk.

The server and the client each get their own ``Bus`` and transport, as two
services would, but both run in this one process and event loop: the
figures include the CPU time of both sides (and, for ``amqp``, a RabbitMQ
broker on the same machine unless ``--amqp-url`` points elsewhere). Each
transport is warmed up first, then measured ``--repeat`` times; the figures
printed are the median over the repeats, and ``--json`` adds every repeat's
own figures.

Run it from the project's root::

    .venv/bin/python bench/bus.py                        # both transports
    .venv/bin/python bench/bus.py --transport memory
    .venv/bin/python bench/bus.py --transport amqp --amqp-url amqp://guest:guest@127.0.0.1:5672/
    .venv/bin/python bench/bus.py --calls 10000 --casts 50000 --repeat 7 --json

The AMQP URL defaults to ``$LOOM_TEST_AMQP_URL``, else the local broker.
When the broker cannot be reached the ``amqp`` transport is skipped with a
message. Each run uses its own topic and deletes the durable queues (and the
fanout exchange) it declared. Progress goes to stderr; the table (or the
JSON document) to stdout, ready to paste into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Runnable as ``python bench/bus.py`` without installing the project.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import command_line, machine, percentile, progress

from loom import eventloop
from loom.bus.amqp import FANOUT_PREFIX, AmqpTransport
from loom.bus.memory import MemoryTransport
from loom.bus.rpc import Bus, RPCServer, expose
from loom.bus.transport import Transport
from loom.context import RequestContext
from loom.errors import BusUnavailable

TRANSPORTS = ("memory", "amqp")
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_CALLS = {"memory": 5000, "amqp": 2000}
DEFAULT_CASTS = {"memory": 20000, "amqp": 10000}
CAST_BATCH = 100
SERVER_HOST = "bench-host"
# How long the server may take to handle the casts of one repeat after the
# last one was sent, and to answer one call.
DRAIN_TIMEOUT = 120.0
RPC_TIMEOUT = 30.0
RETRY_PAUSE = 10.0


class Unreachable(Exception):
    """The transport's broker cannot be reached: skip it, do not fail."""


class Disrupted(Exception):
    """The broker connection dropped during a measurement."""


class BenchEndpoint:
    """The server side: an ``echo`` to call and a ``note`` to cast."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.done = asyncio.Event()

    def expect(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.done.clear()

    @expose
    def echo(self, ctx: RequestContext, value: int) -> int:
        return value

    @expose
    def note(self, ctx: RequestContext, seq: int) -> None:
        self.count += 1
        if self.count >= self.target:
            self.done.set()


@dataclass
class Repeat:
    call_p50_us: float
    call_p99_us: float
    call_mean_us: float
    casts_per_s: float
    cast_seconds: float


@dataclass
class Result:
    transport: str
    url: str
    calls: int
    casts: int
    skipped: str | None = None
    failed: str | None = None
    broker: str | None = None
    repeats: list[Repeat] = field(default_factory=list)

    def median(self, name: str) -> float:
        return float(statistics.median(getattr(r, name) for r in self.repeats))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "transport": self.transport,
            "url": _safe_url(self.url),
            "calls": self.calls,
            "casts": self.casts,
            "cast_batch": CAST_BATCH,
        }
        if self.skipped is not None:
            data["skipped"] = self.skipped
        if self.failed is not None:
            data["failed"] = self.failed
        if self.broker is not None:
            data["broker"] = self.broker
        if self.repeats and self.failed is None:
            data["median"] = {
                name: round(self.median(name), 3)
                for name in ("call_p50_us", "call_p99_us", "call_mean_us", "casts_per_s", "cast_seconds")
            }
        if self.repeats:
            data["repeats"] = [
                {k: round(v, 3) for k, v in vars(r).items()} for r in self.repeats
            ]
        return data





def _safe_url(url: str) -> str:
    """The URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"




def make_transport(kind: str, url: str) -> Transport:
    if kind == "memory":
        return MemoryTransport(url)
    return AmqpTransport(url, send_timeout=10.0)


async def measure_calls(call: Callable[[int], Awaitable[Any]], n: int) -> tuple[float, float, float]:
    """Sequential calls: (p50, p99, mean) latency in microseconds."""
    samples: list[float] = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        result = await call(i)
        samples.append((clock() - start) / 1000)
        if result != i:
            raise RuntimeError(f"echo returned {result!r} for {i}")
    samples.sort()
    return percentile(samples, 50), percentile(samples, 99), statistics.fmean(samples)


async def measure_casts(
    cast: Callable[[int], Awaitable[None]], endpoint: BenchEndpoint, n: int
) -> tuple[float, float]:
    """Casts in batches: (messages per second, seconds) until all are handled."""
    endpoint.expect(n)
    start = time.perf_counter()
    for first in range(0, n, CAST_BATCH):
        await asyncio.gather(*(cast(i) for i in range(first, min(first + CAST_BATCH, n))))
    try:
        await asyncio.wait_for(endpoint.done.wait(), DRAIN_TIMEOUT)
    except TimeoutError:
        raise RuntimeError(
            f"the server handled only {endpoint.count} of {n} casts in {DRAIN_TIMEOUT:g}s"
        ) from None
    elapsed = time.perf_counter() - start
    return n / elapsed, elapsed


def _watch_connection(transport: Transport, on_drop: Callable[[], None]) -> None:
    """Call ``on_drop`` when a robust AMQP connection closes or reconnects."""
    connection = getattr(transport, "_connection", None)
    if connection is None:
        return
    connection.close_callbacks.add(lambda *_: on_drop())
    connection.reconnect_callbacks.add(lambda *_: on_drop())


def _broker_version(transport: Transport) -> str | None:
    try:
        props = transport._connection.transport.connection.server_properties  # type: ignore[attr-defined]
        product, version = props.get("product"), props.get("version")
    except AttributeError:
        return None
    if isinstance(product, bytes):
        product = product.decode()
    if isinstance(version, bytes):
        version = version.decode()
    return f"{product} {version}" if product and version else None


async def _delete_amqp_entities(transport: Transport, topic: str) -> None:
    """Remove the durable queues and the fanout exchange the server declared."""
    connection = getattr(transport, "_connection", None)
    names = [topic, f"{topic}.{SERVER_HOST}"]
    if connection is None:
        progress(f"amqp: not connected, could not delete queues {names} and exchange "
                  f"{FANOUT_PREFIX + topic}")
        return
    try:
        channel = await asyncio.wait_for(connection.channel(), 10)
        try:
            for name in names:
                await channel.queue_delete(name, timeout=10)
            await channel.exchange_delete(FANOUT_PREFIX + topic, timeout=10)
        finally:
            await channel.close()
    except Exception as exc:
        progress(f"amqp: could not delete queues {names} and exchange {FANOUT_PREFIX + topic}: "
                  f"{type(exc).__name__}: {exc}")


async def run_transport(kind: str, url: str, calls: int, casts: int, repeat: int, result: Result) -> None:
    """Measure one transport into ``result``; raises Unreachable if it cannot connect."""
    topic = f"loom-bench-{uuid.uuid4().hex[:12]}"
    server_bus = Bus(make_transport(kind, url), rpc_timeout=RPC_TIMEOUT)
    client_bus = Bus(make_transport(kind, url), rpc_timeout=RPC_TIMEOUT)
    endpoint = BenchEndpoint()
    server: RPCServer | None = None
    started: list[Bus] = []
    dropped = False

    def on_drop() -> None:
        nonlocal dropped
        dropped = True

    try:
        for bus in (server_bus, client_bus):
            try:
                await bus.start()
            except BusUnavailable as exc:
                raise Unreachable(str(exc)) from None
            started.append(bus)
            _watch_connection(bus.transport, on_drop)
        if kind == "amqp":
            result.broker = _broker_version(server_bus.transport)
        server = server_bus.server(topic, SERVER_HOST, endpoint)
        await server.start()

        client = client_bus.client(topic)
        ctx = RequestContext(service="bench")

        async def call(i: int) -> Any:
            return await client.call(ctx, "echo", value=i)

        async def cast(i: int) -> None:
            await client.cast(ctx, "note", seq=i)

        progress(f"{kind}: warming up")
        await measure_calls(call, max(100, calls // 10))
        await measure_casts(cast, endpoint, max(CAST_BATCH, casts // 10))

        for r in range(1, repeat + 1):
            dropped = False
            p50, p99, mean = await measure_calls(call, calls)
            rate, seconds = await measure_casts(cast, endpoint, casts)
            if dropped:
                raise Disrupted(f"the connection to the broker dropped during repeat {r}")
            result.repeats.append(Repeat(p50, p99, mean, rate, seconds))
            progress(
                f"{kind}: repeat {r}/{repeat}: call p50 {p50:.1f} µs, p99 {p99:.1f} µs, "
                f"mean {mean:.1f} µs; {rate:,.0f} casts/s ({seconds:.2f} s)"
            )
    finally:
        if server is not None:
            await server.wait_idle(10)
            await server.stop_consuming()
        if kind == "amqp" and server_bus in started:
            await _delete_amqp_entities(server_bus.transport, topic)
        for bus in (client_bus, server_bus):
            await bus.close()


async def bench(kind: str, url: str, calls: int, casts: int, repeat: int) -> Result:
    """One transport, retried once after a pause if the run fails midway."""
    for attempt in (1, 2):
        result = Result(kind, url, calls, casts)
        try:
            await run_transport(kind, url, calls, casts, repeat, result)
            return result
        except Unreachable as exc:
            result.skipped = str(exc)
            progress(f"{kind}: skipped, {result.skipped}")
            return result
        except Exception as exc:
            result.failed = f"{type(exc).__name__}: {exc}"
            if attempt == 1:
                progress(f"{kind}: run failed ({result.failed}); retrying once in {RETRY_PAUSE:g} s")
                await asyncio.sleep(RETRY_PAUSE)
            else:
                progress(f"{kind}: run failed again ({result.failed}); giving up")
    return result








def render_table(results: list[Result], info: dict[str, Any], command: str, repeat: int) -> str:
    lines = [
        f"Loom RPC bus benchmark: median of {repeat} repeats",
        f"machine: nproc {info['nproc']}, {info['cpu']}, {info['python']}, {info['os']}",
        f"command: {command}",
        "",
        "| transport | call p50 µs | call p99 µs | casts/s |",
        "|-----------|------------:|------------:|--------:|",
    ]
    notes = []
    for r in results:
        if r.repeats and r.failed is None:
            lines.append(
                f"| {r.transport:<9} | {r.median('call_p50_us'):>11.1f} | "
                f"{r.median('call_p99_us'):>11.1f} | {r.median('casts_per_s'):>7,.0f} |"
            )
            note = f"{r.transport}: {r.calls} calls, {r.casts} casts (batches of {CAST_BATCH}) per repeat"
            if r.broker:
                note += f"; {r.broker} at {_safe_url(r.url)}"
            notes.append(note)
        else:
            lines.append(f"| {r.transport:<9} | {'-':>11} | {'-':>11} | {'-':>7} |")
            notes.append(f"{r.transport}: {'skipped' if r.skipped else 'failed'}: {r.skipped or r.failed}")
    return "\n".join([*lines, "", *notes])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark Loom's RPC bus: call latency and cast throughput per transport."
    )
    parser.add_argument("--transport", choices=[*TRANSPORTS, "all"], default="all",
                        help="which transport to measure (default: all)")
    parser.add_argument("--amqp-url", default=os.environ.get("LOOM_TEST_AMQP_URL", DEFAULT_AMQP_URL),
                        help="RabbitMQ URL (default: $LOOM_TEST_AMQP_URL or %(default)s)")
    parser.add_argument("--calls", type=int, default=None,
                        help="sequential calls per repeat (default: 5000 memory, 2000 amqp)")
    parser.add_argument("--casts", type=int, default=None,
                        help="casts per repeat (default: 20000 memory, 10000 amqp)")
    parser.add_argument("--repeat", type=int, default=5, help="repeats; the median is reported (default: 5)")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of the table")
    args = parser.parse_args(argv)
    for name in ("calls", "casts", "repeat"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1")
    return args


async def main_async(args: argparse.Namespace) -> list[Result]:
    kinds = TRANSPORTS if args.transport == "all" else (args.transport,)
    results = []
    for kind in kinds:
        url = f"memory://bench-{uuid.uuid4().hex[:12]}" if kind == "memory" else args.amqp_url
        calls = args.calls if args.calls is not None else DEFAULT_CALLS[kind]
        casts = args.casts if args.casts is not None else DEFAULT_CASTS[kind]
        results.append(await bench(kind, url, calls, casts, args.repeat))
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    command = command_line()
    info = machine()
    results = eventloop.run(main_async(args))
    if args.json:
        doc = {
            "benchmark": "loom.bus.rpc",
            "command": command,
            "machine": info,
            "repeat": args.repeat,
            "units": {"call_*_us": "microseconds", "casts_per_s": "messages/s", "cast_seconds": "s"},
            "results": [r.to_dict() for r in results],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(render_table(results, info, command, args.repeat))
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
