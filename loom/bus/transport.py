"""The transport contract: how bytes move between Loom's services.

A transport knows nothing of RPC. It moves opaque message bodies to named
queues (one consumer of many gets each message) and to fanout topics
(every subscriber gets a copy). The RPC layer in ``rpc.py`` builds cast,
call and fanout on top. Every transport passes the same contract suite.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

Handler = Callable[[bytes], Awaitable[None]]


class Subscription(abc.ABC):
    @abc.abstractmethod
    async def cancel(self) -> None:
        """Stop delivering messages to this subscription's handler.

        MUST return only once no new message will start being handled.
        Handlers already running are left to finish; messages not yet
        handled MUST stay on the queue for other or later consumers.
        """


class Transport(abc.ABC):
    url: str

    @abc.abstractmethod
    async def connect(self) -> None:
        """Connect to the broker. MUST raise BusUnavailable if it cannot."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Cancel every subscription and disconnect. Idempotent."""

    @abc.abstractmethod
    async def send(self, queue: str, body: bytes, *, persistent: bool = True) -> None:
        """Deliver ``body`` to exactly one consumer of ``queue``.

        The queue MUST already exist (declared by a subscriber, now or
        earlier): otherwise raise NoListener. A message to an existing queue
        with no consumer MUST wait there for one. MUST NOT return before the
        broker has accepted the message, and MUST raise (BusUnavailable)
        rather than drop it when that cannot happen in time. ``persistent``
        messages to durable queues MUST survive a broker restart.
        """

    @abc.abstractmethod
    async def send_reply(self, queue: str, body: bytes) -> None:
        """Deliver a reply to a caller's private queue, best effort.

        MAY drop the reply when the caller is gone or the broker fails: the
        caller's own timeout reports that. MUST NOT raise for a missing
        queue. Exists so replies skip the confirmation round trip.
        """

    @abc.abstractmethod
    async def fanout(self, topic: str, body: bytes) -> None:
        """Deliver a copy of ``body`` to every current fanout subscriber of
        ``topic``. No subscriber is not an error."""

    @abc.abstractmethod
    async def subscribe(
        self, queue: str, handler: Handler, *, durable: bool = True, exclusive: bool = False
    ) -> Subscription:
        """Declare ``queue`` (idempotently) and consume from it.

        Consumers of one queue compete: each message goes to one of them.
        ``handler`` MAY run concurrently for several messages. A message is
        acknowledged once its handler returns or raises, never before
        (at-least-once delivery). ``exclusive`` queues belong to this
        transport and disappear with it; durable queues outlive consumers
        and broker restarts.
        """

    @abc.abstractmethod
    async def subscribe_fanout(self, topic: str, handler: Handler) -> Subscription:
        """Receive a copy of every message fanned out to ``topic`` from now on."""

    async def queue_depth(self, queue: str) -> int | None:
        """Messages waiting in ``queue`` for a consumer, for the metrics;
        None where the transport cannot say. MUST NOT raise."""
        return None


def transport_from_url(url: str, *, send_timeout: float = 30.0, prefetch: int = 64) -> Transport:
    """Choose the transport by the URL's scheme."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from loom.bus.memory import MemoryTransport

        return MemoryTransport(url)
    if scheme in ("amqp", "amqps"):
        from loom.bus.amqp import AmqpTransport

        return AmqpTransport(url, send_timeout=send_timeout, prefetch=prefetch)
    from loom.errors import Invalid

    raise Invalid(f"unsupported message bus URL {url!r}: use memory:// or amqp://")
