"""The RPC contract suite. Every transport runs all of it: memory in the
functional tier, RabbitMQ in the integration tier."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from loom import errors
from loom.bus.rpc import Bus, RPCServer, expose
from loom.context import RequestContext

BusFactory = Callable[[], Awaitable[Bus]]


class PeculiarError(errors.Conflict):
    """A declared error defined outside loom.errors."""


class Endpoint:
    def __init__(self, name: str) -> None:
        self.name = name
        self.casts: list[Any] = []
        self.contexts: list[RequestContext] = []
        self.got = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    @expose
    async def echo(self, ctx: RequestContext, value: Any) -> Any:
        return value

    @expose
    async def whoami(self, ctx: RequestContext) -> str:
        return self.name

    @expose
    async def record(self, ctx: RequestContext, value: Any) -> None:
        self.contexts.append(ctx)
        await self.release.wait()
        self.casts.append(value)
        self.got.set()

    @expose
    async def slow(self, ctx: RequestContext, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    @expose
    async def fail_declared(self, ctx: RequestContext) -> None:
        raise errors.NotFound("instance abc could not be found", instance="abc")

    @expose
    async def fail_peculiar(self, ctx: RequestContext) -> None:
        raise PeculiarError("it is peculiar")

    @expose
    async def fail_undeclared(self, ctx: RequestContext) -> None:
        raise ValueError("bad value 42")

    @expose
    def sync_add(self, ctx: RequestContext, a: int, b: int) -> int:
        return a + b

    async def not_exposed(self, ctx: RequestContext) -> str:
        return "should not be reachable"

    @expose
    async def _private(self, ctx: RequestContext) -> str:
        return "should not be reachable"


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class RPCContract:
    """Subclasses provide a ``make_bus`` fixture for their transport."""

    @pytest.fixture
    def topic(self) -> str:
        return f"test-{uuid.uuid4().hex[:12]}"

    @pytest.fixture
    async def pair(self, make_bus: BusFactory, topic: str) -> Any:
        """A server bus with one server on host 'a', and a client bus."""
        server_bus = await make_bus()
        client_bus = await make_bus()
        endpoint = Endpoint("a")
        server = server_bus.server(topic, "a", endpoint)
        await server.start()
        return server_bus, client_bus, endpoint, server

    async def _server(self, bus: Bus, topic: str, host: str) -> tuple[Endpoint, RPCServer]:
        endpoint = Endpoint(host)
        server = bus.server(topic, host, endpoint)
        await server.start()
        return endpoint, server

    async def test_call_returns_the_result(self, pair: Any, topic: str) -> None:
        _, client_bus, _, _ = pair
        client = client_bus.client(topic)
        assert await client.call(None, "echo", value={"a": [1, 2, None], "b": "x"}) == {
            "a": [1, 2, None], "b": "x"}
        assert await client.call(None, "sync_add", a=2, b=3) == 5

    async def test_cast_is_delivered(self, pair: Any, topic: str) -> None:
        _, client_bus, endpoint, _ = pair
        await client_bus.client(topic).cast(None, "record", value=7)
        await asyncio.wait_for(endpoint.got.wait(), 10)
        assert endpoint.casts == [7]

    async def test_call_timeout_raises_a_clear_error(self, pair: Any, topic: str) -> None:
        _, client_bus, _, _ = pair
        client = client_bus.client(topic, timeout=0.2)
        with pytest.raises(errors.MessagingTimeout) as exc:
            await client.call(None, "slow", seconds=2)
        assert "timed out after 0.2s" in str(exc.value)
        assert "slow" in str(exc.value)

    async def test_fanout_reaches_every_server(self, make_bus: BusFactory, topic: str) -> None:
        bus = await make_bus()
        endpoints = [(await self._server(bus, topic, h))[0] for h in ("a", "b", "c")]
        client = (await make_bus()).client(topic).prepare(fanout=True)
        await client.cast(None, "record", value="all")
        await wait_for(lambda: all(e.casts == ["all"] for e in endpoints))

    async def test_fanout_refuses_call(self, pair: Any, topic: str) -> None:
        _, client_bus, _, _ = pair
        with pytest.raises(errors.Invalid):
            await client_bus.client(topic).prepare(fanout=True).call(None, "whoami")

    async def test_host_targeted_topic(self, make_bus: BusFactory, topic: str) -> None:
        bus = await make_bus()
        for host in ("a", "b", "c"):
            await self._server(bus, topic, host)
        client = (await make_bus()).client(topic)
        for _ in range(5):
            assert await client.prepare(server="b").call(None, "whoami") == "b"
        answered = {await client.call(None, "whoami") for _ in range(30)}
        assert answered <= {"a", "b", "c"} and len(answered) > 1

    async def test_competing_servers_each_message_once(self, make_bus: BusFactory, topic: str) -> None:
        bus = await make_bus()
        ends = [(await self._server(bus, topic, h))[0] for h in ("a", "b")]
        client = (await make_bus()).client(topic)
        for i in range(40):
            await client.cast(None, "record", value=i)
        await wait_for(lambda: sum(len(e.casts) for e in ends) == 40)
        await asyncio.sleep(0.1)
        assert sorted(ends[0].casts + ends[1].casts) == list(range(40))

    async def test_declared_error_keeps_its_class(self, pair: Any, topic: str) -> None:
        _, client_bus, _, _ = pair
        client = client_bus.client(topic)
        with pytest.raises(errors.NotFound) as exc:
            await client.call(None, "fail_declared")
        assert exc.value.message == "instance abc could not be found"
        assert exc.value.details == {"instance": "abc"}
        with pytest.raises(PeculiarError, match="it is peculiar"):
            await client.call(None, "fail_peculiar")

    async def test_undeclared_error_becomes_remote_error(self, pair: Any, topic: str) -> None:
        _, client_bus, _, _ = pair
        with pytest.raises(errors.RemoteError) as exc:
            await client_bus.client(topic).call(None, "fail_undeclared")
        assert exc.value.exc_type == "ValueError"
        assert "bad value 42" in str(exc.value)

    @pytest.mark.parametrize("method", ["_private", "not_exposed", "no_such_method", "__init__"])
    async def test_private_and_unknown_methods_refused(self, pair: Any, topic: str, method: str) -> None:
        _, client_bus, _, _ = pair
        with pytest.raises(errors.UnknownMethod):
            await client_bus.client(topic).call(None, method)

    async def test_bad_arguments_refused(self, pair: Any, topic: str) -> None:
        _, client_bus, _, _ = pair
        with pytest.raises(errors.Invalid, match="bad arguments for echo"):
            await client_bus.client(topic).call(None, "echo", wrong=1)

    async def test_unserialisable_argument_refused_at_sender(self, pair: Any, topic: str) -> None:
        _, client_bus, endpoint, _ = pair
        with pytest.raises(errors.SerializationError, match="object"):
            await client_bus.client(topic).cast(None, "record", value=object())
        await asyncio.sleep(0.05)
        assert endpoint.casts == []

    async def test_one_megabyte_payload(self, pair: Any, topic: str) -> None:
        _, client_bus, _, _ = pair
        payload = "x" * (1024 * 1024)
        assert await client_bus.client(topic).call(None, "echo", value=payload) == payload

    async def test_thousand_concurrent_calls(self, pair: Any, topic: str) -> None:
        _, client_bus, _, _ = pair
        client = client_bus.client(topic, timeout=60)
        results = await asyncio.gather(*(client.call(None, "echo", value=i) for i in range(1000)))
        assert results == list(range(1000))

    async def test_send_to_topic_nobody_listens_on(self, make_bus: BusFactory, topic: str) -> None:
        client = (await make_bus()).client(topic + "-nobody")
        with pytest.raises(errors.NoListener):
            await client.cast(None, "record", value=1)
        with pytest.raises(errors.NoListener):
            await client.call(None, "whoami")

    async def test_request_context_travels(self, pair: Any, topic: str) -> None:
        _, client_bus, endpoint, _ = pair
        ctx = RequestContext(user_id="u1", project_id="p1", roles=("member",))
        await client_bus.client(topic).cast(ctx, "record", value=1)
        await asyncio.wait_for(endpoint.got.wait(), 10)
        assert endpoint.contexts[0].request_id == ctx.request_id
        assert endpoint.contexts[0].roles == ("member",)
        assert endpoint.contexts[0].project_id == "p1"

    async def test_cast_waits_for_a_consumer(self, make_bus: BusFactory, topic: str) -> None:
        server_bus = await make_bus()
        first, server = await self._server(server_bus, topic, "a")
        await server.stop_consuming()
        client = (await make_bus()).client(topic)
        await client.cast(None, "record", value="queued")
        await asyncio.sleep(0.2)
        assert first.casts == []
        second, _ = await self._server(server_bus, topic, "a")
        await asyncio.wait_for(second.got.wait(), 10)
        assert second.casts == ["queued"]

    async def test_stop_finishes_in_flight_work(self, pair: Any, topic: str) -> None:
        _, client_bus, endpoint, server = pair
        endpoint.release.clear()
        await client_bus.client(topic).cast(None, "record", value="in-flight")
        await wait_for(lambda: server.inflight == 1)
        await server.stop_consuming()
        assert not await server.wait_idle(0.05)
        endpoint.release.set()
        assert await server.wait_idle(5)
        assert endpoint.casts == ["in-flight"]
