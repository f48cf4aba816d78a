"""The RPC contract suite on RabbitMQ."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from loom.bus.amqp import AmqpTransport
from loom.bus.rpc import Bus
from tests.bus_contract import BusFactory, RPCContract


class TestAmqpTransport(RPCContract):
    @pytest.fixture
    async def make_bus(self, amqp_url: str, topic: str) -> AsyncIterator[BusFactory]:
        buses: list[Bus] = []

        async def make() -> Bus:
            bus = Bus(AmqpTransport(amqp_url, send_timeout=5), rpc_timeout=20)
            await bus.start()
            buses.append(bus)
            return bus

        yield make
        # Durable test queues would outlive the run; remove them.
        channel = await buses[0].transport._connection.channel()  # type: ignore[attr-defined]
        for name in (topic, *(f"{topic}.{h}" for h in "abc")):
            await channel.queue_delete(name)
        await channel.close()
        for bus in buses:
            await bus.close()
