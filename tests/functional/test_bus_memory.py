"""The RPC contract suite on the in-memory transport."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from loom.bus.memory import MemoryTransport
from loom.bus.rpc import Bus
from tests.bus_contract import BusFactory, RPCContract


class TestMemoryTransport(RPCContract):
    @pytest.fixture
    async def make_bus(self) -> AsyncIterator[BusFactory]:
        url = f"memory://{uuid.uuid4().hex}"
        buses: list[Bus] = []

        async def make() -> Bus:
            bus = Bus(MemoryTransport(url), rpc_timeout=10)
            await bus.start()
            buses.append(bus)
            return bus

        yield make
        for bus in buses:
            await bus.close()
