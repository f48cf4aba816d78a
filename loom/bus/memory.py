"""In-process transport for the embedded mode and for tests.

It carries only bytes, so everything sent over it has been serialised the
same way as over RabbitMQ: nothing unserialisable slips through. Every
``memory://NAME`` URL in one process reaches the same broker.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import weakref
from urllib.parse import urlsplit

from loom.bus.transport import Handler, Subscription, Transport
from loom.errors import BusUnavailable, NoListener

LOG = logging.getLogger(__name__)

_BROKERS: weakref.WeakValueDictionary[str, _Broker] = weakref.WeakValueDictionary()


class _Queue:
    def __init__(self, name: str, durable: bool, owner: MemoryTransport | None) -> None:
        self.name = name
        self.durable = durable
        self.owner = owner
        self.consumers: list[_Consumer] = []
        self.backlog: collections.deque[bytes] = collections.deque()
        self._turn = itertools.count()

    def next_consumer(self) -> _Consumer | None:
        if not self.consumers:
            return None
        return self.consumers[next(self._turn) % len(self.consumers)]


class _Broker:
    def __init__(self) -> None:
        self.queues: dict[str, _Queue] = {}
        self.fanouts: dict[str, list[_Consumer]] = collections.defaultdict(list)


class _Consumer(Subscription):
    def __init__(self, transport: MemoryTransport, handler: Handler, queue: _Queue | None,
                 topic: str | None = None) -> None:
        self.transport = transport
        self.handler = handler
        self.queue = queue
        self.topic = topic
        self.active = True

    def deliver(self, body: bytes) -> None:
        self.transport._spawn(self, body)

    async def cancel(self) -> None:
        if not self.active:
            return
        self.active = False
        broker = self.transport._broker
        if self.queue is not None:
            self.queue.consumers.remove(self)
            if not self.queue.durable and not self.queue.consumers:
                broker.queues.pop(self.queue.name, None)
        elif self.topic is not None:
            broker.fanouts[self.topic].remove(self)
        self.transport._subscriptions.discard(self)


class MemoryTransport(Transport):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        parts = urlsplit(url)
        key = (parts.netloc + parts.path) or "default"
        broker = _BROKERS.get(key)
        if broker is None:
            broker = _Broker()
            _BROKERS[key] = broker
        self._broker = broker
        self._connected = False
        self._subscriptions: set[_Consumer] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            await sub.cancel()
        for name, queue in list(self._broker.queues.items()):
            if queue.owner is self:
                del self._broker.queues[name]
        self._connected = False

    def _check(self) -> None:
        if not self._connected:
            raise BusUnavailable("the memory transport is not connected")

    async def send(self, queue: str, body: bytes, *, persistent: bool = True) -> None:
        self._check()
        if not isinstance(body, bytes):
            raise TypeError("message bodies are bytes")
        q = self._broker.queues.get(queue)
        if q is None:
            raise NoListener(f"no queue {queue!r}: nothing listens on it", queue=queue)
        consumer = q.next_consumer()
        if consumer is None:
            q.backlog.append(body)
        else:
            consumer.deliver(body)

    async def send_reply(self, queue: str, body: bytes) -> None:
        try:
            await self.send(queue, body, persistent=False)
        except NoListener:
            LOG.debug("reply to %s dropped: the caller is gone", queue)

    async def fanout(self, topic: str, body: bytes) -> None:
        self._check()
        for consumer in list(self._broker.fanouts.get(topic, ())):
            consumer.deliver(body)

    async def subscribe(
        self, queue: str, handler: Handler, *, durable: bool = True, exclusive: bool = False
    ) -> Subscription:
        self._check()
        q = self._broker.queues.get(queue)
        if q is None:
            q = _Queue(queue, durable, self if exclusive else None)
            self._broker.queues[queue] = q
        consumer = _Consumer(self, handler, q)
        q.consumers.append(consumer)
        self._subscriptions.add(consumer)
        while q.backlog:
            q.next_consumer().deliver(q.backlog.popleft())  # type: ignore[union-attr]
        return consumer

    async def queue_depth(self, queue: str) -> int | None:
        q = self._broker.queues.get(queue)
        return None if q is None else len(q.backlog)

    async def subscribe_fanout(self, topic: str, handler: Handler) -> Subscription:
        self._check()
        consumer = _Consumer(self, handler, None, topic)
        self._broker.fanouts[topic].append(consumer)
        self._subscriptions.add(consumer)
        return consumer

    def _spawn(self, consumer: _Consumer, body: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._run(consumer, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, consumer: _Consumer, body: bytes) -> None:
        if not consumer.active:
            # Cancelled between delivery and start: the message goes back
            # to its queue, as an unacknowledged one would on a broker.
            queue = consumer.queue
            if queue is not None and self._broker.queues.get(queue.name) is queue:
                nxt = queue.next_consumer()
                if nxt is None:
                    queue.backlog.appendleft(body)
                else:
                    nxt.deliver(body)
            return
        try:
            await consumer.handler(body)
        except Exception:
            LOG.exception("message handler failed")
