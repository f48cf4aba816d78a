"""RabbitMQ transport (AMQP 0-9-1) on aio-pika.

Queues are addressed through the default exchange; fanout topics each get
a fanout exchange. Publishing uses confirms and ``mandatory`` so a message
is either accepted by the broker into a queue or the sender gets an
error. The connection is robust: it comes back by itself after a broker
restart, re-declaring queues and consumers, and a send during the outage
waits for it (up to ``send_timeout``) instead of failing at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import PublishError

from loom.bus.transport import Handler, Subscription, Transport
from loom.errors import BusUnavailable, NoListener

LOG = logging.getLogger(__name__)

FANOUT_PREFIX = "loom.fanout."
_RETRY_PAUSE = 0.2
# Errors that mean "the connection is gone for now", worth a retry.
_CONNECTION_ERRORS = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    asyncio.TimeoutError,
    RuntimeError,
)


class _AmqpSubscription(Subscription):
    def __init__(self, transport: AmqpTransport, queue: AbstractQueue, tag: str) -> None:
        self.transport = transport
        self.queue = queue
        self.tag = tag
        self.active = True

    async def cancel(self) -> None:
        if not self.active:
            return
        self.active = False
        self.transport._subscriptions.discard(self)
        try:
            await self.queue.cancel(self.tag)
        except _CONNECTION_ERRORS:
            # A lost channel cancels its consumers with it.
            pass


class AmqpTransport(Transport):
    def __init__(self, url: str, *, send_timeout: float = 30.0, prefetch: int = 64) -> None:
        self.url = url
        self.send_timeout = send_timeout
        self.prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._publish: AbstractRobustChannel | None = None
        self._consume: AbstractRobustChannel | None = None
        self._reply: AbstractRobustChannel | None = None
        # Opened on first use: a passive declaration that fails closes its
        # channel, which must not be one that consumes or publishes.
        self._stats: aio_pika.abc.AbstractChannel | None = None
        self._subscriptions: set[_AmqpSubscription] = set()
        self._fanout_exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}

    async def connect(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(
                self.url, timeout=self.send_timeout, reconnect_interval=0.5
            )
            self._publish = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )  # type: ignore[assignment]
            self._consume = await self._connection.channel()  # type: ignore[assignment]
            # Replies go unconfirmed: the caller's timeout covers their loss.
            self._reply = await self._connection.channel(publisher_confirms=False)  # type: ignore[assignment]
            await self._consume.set_qos(prefetch_count=self.prefetch)  # type: ignore[union-attr]
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
            await self.close()
            raise BusUnavailable(f"cannot connect to the message bus at {_safe(self.url)}: {exc}") from None

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            await sub.cancel()
        if self._connection is not None:
            try:
                await self._connection.close()
            except _CONNECTION_ERRORS:
                pass
        self._connection = self._publish = self._consume = self._reply = self._stats = None
        self._fanout_exchanges.clear()

    def _channel(self, which: AbstractRobustChannel | None) -> AbstractRobustChannel:
        if which is None:
            raise BusUnavailable("the AMQP transport is not connected")
        return which

    async def send(self, queue: str, body: bytes, *, persistent: bool = True) -> None:
        channel = self._channel(self._publish)
        message = aio_pika.Message(
            body,
            delivery_mode=(
                aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
        )

        async def publish() -> None:
            try:
                await channel.default_exchange.publish(
                    message, routing_key=queue, mandatory=True, timeout=self.send_timeout
                )
            except PublishError:
                raise NoListener(f"no queue {queue!r}: nothing listens on it", queue=queue) from None

        await self._with_retry(publish, f"send to {queue!r}")

    async def send_reply(self, queue: str, body: bytes) -> None:
        try:
            channel = self._channel(self._reply)
            await channel.default_exchange.publish(
                aio_pika.Message(body), routing_key=queue, mandatory=False, timeout=self.send_timeout
            )
        except (*_CONNECTION_ERRORS, BusUnavailable) as exc:
            LOG.warning("reply to %s lost: %s", queue, exc)

    async def fanout(self, topic: str, body: bytes) -> None:
        channel = self._channel(self._publish)

        async def publish() -> None:
            exchange = await self._fanout_exchange(channel, topic)
            await exchange.publish(
                aio_pika.Message(body), routing_key="", mandatory=False, timeout=self.send_timeout
            )

        await self._with_retry(publish, f"fanout to {topic!r}")

    async def _fanout_exchange(
        self, channel: AbstractRobustChannel, topic: str
    ) -> aio_pika.abc.AbstractExchange:
        exchange = self._fanout_exchanges.get(topic)
        if exchange is None:
            exchange = await channel.declare_exchange(
                FANOUT_PREFIX + topic, aio_pika.ExchangeType.FANOUT, durable=True
            )
            self._fanout_exchanges[topic] = exchange
        return exchange

    async def _with_retry(self, action, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + self.send_timeout
        while True:
            try:
                await action()
                return
            except _CONNECTION_ERRORS as exc:
                if self._connection is None or time.monotonic() >= deadline:
                    raise BusUnavailable(
                        f"message bus unavailable, could not {what}: {exc or type(exc).__name__}"
                    ) from None
                LOG.warning("bus connection lost during %s, retrying: %s", what, exc)
                await asyncio.sleep(_RETRY_PAUSE)

    async def queue_depth(self, queue: str) -> int | None:
        if self._connection is None:
            return None
        try:
            if self._stats is None or self._stats.is_closed:
                self._stats = await self._connection.channel(publisher_confirms=False)
            declared = await self._stats.declare_queue(queue, passive=True, timeout=self.send_timeout)
            count = declared.declaration_result.message_count
            return None if count is None else int(count)
        except Exception as exc:
            LOG.debug("could not read the depth of %s: %s", queue, exc)
            return None

    async def subscribe(
        self, queue: str, handler: Handler, *, durable: bool = True, exclusive: bool = False
    ) -> Subscription:
        channel = self._channel(self._consume)
        q = await channel.declare_queue(
            queue, durable=durable and not exclusive, exclusive=exclusive, auto_delete=exclusive
        )
        return await self._consume_from(q, handler)

    async def subscribe_fanout(self, topic: str, handler: Handler) -> Subscription:
        channel = self._channel(self._consume)
        exchange = await channel.declare_exchange(
            FANOUT_PREFIX + topic, aio_pika.ExchangeType.FANOUT, durable=True
        )
        q = await channel.declare_queue(exclusive=True, auto_delete=True)
        await q.bind(exchange)
        return await self._consume_from(q, handler)

    async def _consume_from(self, q: AbstractQueue, handler: Handler) -> Subscription:
        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                await handler(message.body)
            except Exception:
                LOG.exception("message handler failed")
            finally:
                try:
                    await message.ack()
                except _CONNECTION_ERRORS:
                    # The channel died: the broker redelivers the message.
                    LOG.warning("could not acknowledge a message; it will be redelivered")

        tag = await q.consume(on_message)
        sub = _AmqpSubscription(self, q, tag)
        self._subscriptions.add(sub)
        return sub


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
