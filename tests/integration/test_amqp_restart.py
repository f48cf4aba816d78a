"""A broker restart mid-stream: the service reconnects by itself and no
cast is silently lost (each either arrives or its sender got an error)."""

from __future__ import annotations

import asyncio
import uuid

from loom import errors
from loom.bus.amqp import AmqpTransport
from loom.bus.rpc import Bus, expose
from loom.context import RequestContext
from tests.integration.conftest import rabbitmq


class Counter:
    def __init__(self) -> None:
        self.seen: set[int] = set()

    @expose
    async def record(self, ctx: RequestContext, value: int) -> None:
        self.seen.add(value)

    @expose
    async def ping(self, ctx: RequestContext) -> str:
        return "pong"


async def test_broker_restart_loses_no_cast(amqp_url: str) -> None:
    topic = f"test-restart-{uuid.uuid4().hex[:8]}"
    server_bus = Bus(AmqpTransport(amqp_url, send_timeout=60), rpc_timeout=30)
    client_bus = Bus(AmqpTransport(amqp_url, send_timeout=60), rpc_timeout=30)
    await server_bus.start()
    await client_bus.start()
    counter = Counter()
    server = server_bus.server(topic, "host1", counter)
    await server.start()
    client = client_bus.client(topic)
    accepted: list[int] = []
    refused: list[int] = []

    async def produce() -> None:
        for i in range(400):
            try:
                await client.cast(None, "record", value=i)
                accepted.append(i)
            except errors.MessagingError:
                refused.append(i)
            await asyncio.sleep(0.01)

    try:
        producer = asyncio.create_task(produce())
        while len(accepted) < 100:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(rabbitmq, "restart")
        await asyncio.wait_for(producer, 120)
        # Everything accepted must arrive, after the reconnect.
        deadline = asyncio.get_running_loop().time() + 60
        while not set(accepted) <= counter.seen:
            assert asyncio.get_running_loop().time() < deadline, (
                f"lost {sorted(set(accepted) - counter.seen)[:20]}")
            await asyncio.sleep(0.05)
        # The outage was shorter than the send timeout: nothing was refused.
        assert refused == []
        assert len(accepted) == 400
        # Calls work again over the re-established connection.
        assert await client.call(None, "ping") == "pong"
        assert await client.prepare(server="host1").call(None, "ping") == "pong"
    finally:
        channel = await client_bus.transport._connection.channel()  # type: ignore[attr-defined]
        await channel.queue_delete(topic)
        await channel.queue_delete(f"{topic}.host1")
        await channel.close()
        await server_bus.close()
        await client_bus.close()


async def test_send_fails_loudly_when_broker_stays_down(amqp_url: str) -> None:
    """Down for longer than the send timeout: the caller gets an error, and
    once the broker is back the same bus works again."""
    topic = f"test-down-{uuid.uuid4().hex[:8]}"
    bus = Bus(AmqpTransport(amqp_url, send_timeout=2), rpc_timeout=10)
    await bus.start()
    counter = Counter()
    await bus.server(topic, "h", counter).start()
    client = bus.client(topic)
    try:
        await asyncio.to_thread(rabbitmq, "pause")
        try:
            started = asyncio.get_running_loop().time()
            try:
                await client.cast(None, "record", value=1)
            except errors.BusUnavailable as exc:
                assert "could not send" in str(exc)
            else:
                raise AssertionError("a cast with the broker down did not fail")
            assert asyncio.get_running_loop().time() - started < 10
        finally:
            await asyncio.to_thread(rabbitmq, "resume")
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                assert await client.call(None, "ping") == "pong"
                break
            except errors.MessagingError:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.5)
        await client.cast(None, "record", value=2)
        while 2 not in counter.seen:
            await asyncio.sleep(0.02)
    finally:
        channel = await bus.transport._connection.channel()  # type: ignore[attr-defined]
        await channel.queue_delete(topic)
        await channel.queue_delete(f"{topic}.h")
        await channel.close()
        await bus.close()


async def test_unreachable_broker_is_a_clear_error() -> None:
    bus = Bus(AmqpTransport("amqp://guest:guest@127.0.0.1:1/", send_timeout=1))
    try:
        await bus.start()
    except errors.BusUnavailable as exc:
        assert "cannot connect to the message bus at amqp://guest:***@127.0.0.1:1/" in str(exc)
    else:  # pragma: no cover - nothing listens on port 1
        raise AssertionError("connected to a broker that is not there")
