"""RPC over a transport: ``cast`` (one-way), ``call`` (waits for the
reply) and fanout casts, as the seeds describe.

A server listens on topic ``T`` (shared with its peers), ``T.<host>``
(its own) and the fanout of ``T``. It dispatches only to methods its
endpoint marks with ``@expose``. The caller passes a RequestContext; its
request id travels with the message and is bound on the server side so
the log lines of one request join up across services.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from loom import context as ctxmod
from loom import metrics
from loom.bus import serialize
from loom.bus.transport import Subscription, Transport, transport_from_url
from loom.config import BusSettings
from loom.context import RequestContext
from loom.errors import Invalid, LoomError, MessagingTimeout, UnknownMethod

LOG = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
_EXPOSED = "__loom_rpc__"


def expose(fn: F) -> F:
    """Mark a manager method as callable over the bus."""
    setattr(fn, _EXPOSED, True)
    return fn


def exposed_methods(endpoint: object) -> dict[str, Callable[..., Any]]:
    methods = {}
    for name in dir(type(endpoint)):
        if name.startswith("_"):
            continue
        attr = getattr(type(endpoint), name, None)
        if callable(attr) and getattr(attr, _EXPOSED, False):
            methods[name] = getattr(endpoint, name)
    return methods


class Bus:
    """A transport plus the private reply queue that ``call`` needs."""

    def __init__(self, transport: Transport, *, rpc_timeout: float = 60.0) -> None:
        self.transport = transport
        self.rpc_timeout = rpc_timeout
        self._reply_queue = f"reply.{uuid.uuid4().hex}"
        # Message ids only need to be unique among this bus's pending calls.
        self._ids = itertools.count()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._reply_sub: Subscription | None = None
        self._reply_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: BusSettings) -> Bus:
        transport = transport_from_url(
            settings.url, send_timeout=settings.send_timeout, prefetch=settings.prefetch
        )
        return cls(transport, rpc_timeout=settings.rpc_timeout)

    async def start(self) -> None:
        await self.transport.connect()

    async def close(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        self._pending.clear()
        await self.transport.close()
        self._reply_sub = None

    def client(self, topic: str, *, timeout: float | None = None) -> RPCClient:
        return RPCClient(self, topic, timeout=timeout)

    def server(self, topic: str, host: str, endpoint: object) -> RPCServer:
        return RPCServer(self, topic, host, endpoint)

    async def _reply_to(self) -> str:
        if self._reply_sub is None:
            async with self._reply_lock:
                if self._reply_sub is None:
                    self._reply_sub = await self.transport.subscribe(
                        self._reply_queue, self._on_reply, durable=False, exclusive=True
                    )
        return self._reply_queue

    async def _on_reply(self, body: bytes) -> None:
        reply = serialize.loads(body)
        fut = self._pending.pop(reply.get("msg_id", ""), None)
        if fut is None or fut.done():
            LOG.debug("dropping a reply nobody waits for: %s", reply.get("msg_id"))
            return
        if "error" in reply:
            fut.set_exception(serialize.error_from_dict(reply["error"]))
        else:
            fut.set_result(reply.get("result"))


class RPCClient:
    """Typed ``rpcapi`` modules wrap one of these per service topic."""

    def __init__(
        self, bus: Bus, topic: str, *, server: str | None = None, fanout: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.bus = bus
        self.topic = topic
        self.server = server
        self.fanout = fanout
        self.timeout = timeout if timeout is not None else bus.rpc_timeout

    def prepare(
        self, *, server: str | None = None, fanout: bool | None = None, timeout: float | None = None
    ) -> RPCClient:
        """A client aimed at one server, at every server, or with another timeout."""
        return RPCClient(
            self.bus, self.topic,
            server=server if server is not None else self.server,
            fanout=self.fanout if fanout is None else fanout,
            timeout=timeout if timeout is not None else self.timeout,
        )

    @property
    def queue(self) -> str:
        return f"{self.topic}.{self.server}" if self.server else self.topic

    def _message(self, ctx: RequestContext | None, method: str, args: dict[str, Any]) -> dict[str, Any]:
        ctx = ctx or ctxmod.current() or RequestContext()
        return {"method": method, "args": args, "ctx": ctx.to_dict()}

    async def cast(self, ctx: RequestContext | None, method: str, **args: Any) -> None:
        """Send and return once the bus has the message; no reply."""
        body = serialize.dumps(self._message(ctx, method, args))
        started = time.perf_counter()
        try:
            if self.fanout:
                await self.bus.transport.fanout(self.topic, body)
            else:
                await self.bus.transport.send(self.queue, body)
        except BaseException as exc:
            self._observe(method, "cast", exc, started)
            raise
        self._observe(method, "cast", None, started)

    def _observe(self, method: str, kind: str, exc: BaseException | None, started: float) -> None:
        metrics.RPC_CLIENT.labels(self.topic, method, kind, metrics.outcome(exc)).observe(
            time.perf_counter() - started)

    async def call(self, ctx: RequestContext | None, method: str, **args: Any) -> Any:
        """Send and wait for the reply; a remote error is raised here."""
        if self.fanout:
            raise Invalid("a fanout message has many receivers and no single reply: use cast")
        msg = self._message(ctx, method, args)
        msg_id = f"{next(self.bus._ids):x}"
        msg["msg_id"] = msg_id
        msg["reply_to"] = await self.bus._reply_to()
        body = serialize.dumps(msg)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.bus._pending[msg_id] = fut
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            # A call is worth nothing once its caller has timed out, so it
            # need not be written to disk by the broker.
            await self.bus.transport.send(self.queue, body, persistent=False)
            return await asyncio.wait_for(fut, self.timeout)
        except TimeoutError:
            error = MessagingTimeout(
                f"timed out after {self.timeout:g}s waiting for a reply to "
                f"{method} on {self.queue}",
                topic=self.queue, method=method, timeout=self.timeout,
            )
            raise error from None
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.bus._pending.pop(msg_id, None)
            self._observe(method, "call", error, started)


class _Params:
    """What keyword arguments a method takes; cheaper to check than
    ``Signature.bind`` on every message."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        params = list(inspect.signature(fn).parameters.values())[1:]  # after ctx
        self.open = any(p.kind is p.VAR_KEYWORD for p in params)
        named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        self.names = frozenset(p.name for p in named)
        self.required = frozenset(p.name for p in named if p.default is p.empty)

    def check(self, args: dict[str, Any]) -> str | None:
        missing = self.required.difference(args)
        if missing:
            return f"missing {', '.join(sorted(missing))}"
        if not self.open:
            unknown = set(args).difference(self.names)
            if unknown:
                return f"unexpected {', '.join(sorted(unknown))}"
        return None


class RPCServer:
    """Dispatches messages for one topic and host to an endpoint's exposed methods."""

    def __init__(self, bus: Bus, topic: str, host: str, endpoint: object) -> None:
        self.bus = bus
        self.topic = topic
        self.host = host
        self.endpoint = endpoint
        self._methods = exposed_methods(endpoint)
        self._params = {n: _Params(m) for n, m in self._methods.items()}
        self._subs: list[Subscription] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.handled = 0
        metrics.watch_rpc_server(self)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def queues(self) -> tuple[str, str]:
        """The queues this server consumes from (the fanout's are private)."""
        return self.topic, f"{self.topic}.{self.host}"

    async def start(self) -> None:
        t = self.bus.transport
        self._subs = [
            await t.subscribe(self.topic, self._on_message),
            await t.subscribe(f"{self.topic}.{self.host}", self._on_message),
            await t.subscribe_fanout(self.topic, self._on_message),
        ]

    async def stop_consuming(self) -> None:
        for sub in self._subs:
            await sub.cancel()
        self._subs = []

    async def wait_idle(self, timeout: float) -> bool:
        """Wait for in-flight messages to finish; False if they did not in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def _on_message(self, body: bytes) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        self._idle.clear()
        try:
            await self._dispatch(serialize.loads(body))
        finally:
            self._inflight.discard(task)
            self.handled += 1
            if not self._inflight:
                self._idle.set()

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        ctx = RequestContext.from_dict(msg.get("ctx") or {})
        token = ctxmod.bind(ctx)
        method = msg.get("method", "")
        reply_to = msg.get("reply_to")
        started = time.perf_counter()
        error: Exception | None = None
        try:
            result = await self._invoke(ctx, method, msg.get("args") or {})
            reply: dict[str, Any] = {"result": result}
        except Exception as exc:
            error = exc
            if isinstance(exc, LoomError):
                LOG.info("%s on %s raised %s: %s", method, self.topic, type(exc).__name__, exc)
            else:
                LOG.exception("%s on %s failed", method, self.topic)
            reply = {"error": serialize.error_to_dict(exc)}
        finally:
            ctxmod.unbind(token)
        elapsed = time.perf_counter() - started
        # Unknown methods are not labels: whoever sends them chooses their names.
        label = method if method in self._methods else "<unknown>"
        metrics.RPC_SERVER.labels(self.topic, label, metrics.outcome(error)).observe(elapsed)
        LOG.debug("%s handled in %.1f ms", method, elapsed * 1000)
        if reply_to:
            reply["msg_id"] = msg.get("msg_id")
            try:
                body = serialize.dumps(reply)
            except LoomError as exc:
                body = serialize.dumps({"msg_id": msg.get("msg_id"), "error": serialize.error_to_dict(exc)})
            await self.bus.transport.send_reply(reply_to, body)

    async def _invoke(self, ctx: RequestContext, method: str, args: dict[str, Any]) -> Any:
        if method.startswith("_"):
            raise UnknownMethod(f"{method} is private and cannot be called over the bus", method=method)
        fn = self._methods.get(method)
        if fn is None:
            raise UnknownMethod(f"{self.topic} has no method {method}", method=method)
        problem = self._params[method].check(args)
        if problem:
            raise Invalid(f"bad arguments for {method}: {problem}", method=method)
        result = fn(ctx, **args)
        if inspect.isawaitable(result):
            result = await result
        return result
