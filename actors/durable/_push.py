"""Push: a durable consumer feeding a (supervised) actor's mailbox.

# Invariants:
# - ``_held`` holds every delivery claimed for this incarnation and not yet
#   settled: in its mailbox, or being handled. ``receive`` settles one (ack
#   when the inner actor returns, nak when it raises); the end of
#   ``_ack_loop`` (and ``on_stop``) gives the rest back, so a crash or a
#   stop loses nothing, nor does a kill at the shutdown timeout, which
#   skips ``on_stop`` but ends the goroutines.
# - At most ``max_in_flight`` deliveries are held (the consumer's credit), and
#   the pull loop waits for mailbox room before claiming more: backpressure,
#   never a drop.
# - A delivery ``receive`` handled waits in ``_to_ack`` until ``_ack_loop``
#   takes it, then in ``_acking`` until its ack is written; it is still in
#   flight (credit) until then. ``on_stop`` writes the acks of both before
#   it gives back what ``_held`` holds, so a crash does not make what was
#   handled come again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio

from .. import _tracing
from .._actor import Actor
from .._signal import Signal
from ._consumer import Backoffish, Consumer, Message
from ._errors import StoreNotConfigured

logger = logging.getLogger("actors.durable")

#: Seconds a pull waits before it looks again (a loop, so any value works).
_PULL_EXPIRES = 60.0
#: Seconds the acks and give-backs of an ending actor may take (shielded).
_SETTLE_LIMIT = 10.0


class _Delivery:
    __slots__ = ("consumer", "message")

    def __init__(self, consumer: Consumer, message: Message) -> None:
        self.consumer = consumer
        self.message = message


def _traced(delivery: _Delivery) -> Any:
    # Handled in a CONSUMER span, a child of the span it was published in.
    message = delivery.message
    try:
        _ = message.data  # loads it, and the context stored with it
    except Exception:
        return delivery  # receive says why
    headers = message._headers
    if not headers:
        return delivery
    return _tracing.Traced(delivery, _tracing.extract(headers))


class Push(Actor):
    """Runs an actor as a durable consumer: messages are pushed to its ``receive``.

    ``Push(factory, *args, durable=(stream, consumer), max_in_flight=10,
    **kwargs)`` builds the inner actor with ``factory(*args, **kwargs)`` and
    feeds it every message of the durable consumer ``consumer`` of stream
    ``stream`` (create both first), as :class:`Message` objects (``.data``,
    ``.deliveries``...). When ``receive`` returns, the message is acked; when
    it raises, the message is nak'ed with the consumer's backoff (its last
    error: the exception's repr) and the actor fails as usual, so its
    supervisor restarts it; the deliveries it held and had not handled are
    given back at once, uncounted. Acks are written in the background, in
    batches (one commit for those handled while the previous batch was
    written); a message is in flight until its ack is written, and a stop
    or crash writes the pending acks before the actor ends. After
    ``max_deliver`` deliveries a message goes to the consumer's dead
    letters. Other messages sent to the actor reach the inner actor's
    ``receive`` as usual.

    The pull loop claims at most ``max_in_flight`` deliveries and waits for
    mailbox room: backpressure, never a drop.

    Args:
        factory: the inner actor's class or factory.
        *args: its positional arguments.
        durable: ``(stream name, consumer name)``.
        max_in_flight: deliveries held at once (1: strict order).
        backoff: redelivery delays after a failure (default: the consumer's).
        **kwargs: the inner actor's keyword arguments.

    Raises:
        TypeError: ``durable`` is not a pair of names or ``factory`` is not
            callable (at spawn).
        ValueError: ``max_in_flight`` < 1 (at spawn).

    Examples:
        >>> import actors, supervision
        >>> class Billing(actors.Actor):
        ...     async def receive(self, message):
        ...         return None  # returning acks; raising naks
        >>> spec = supervision.ChildSpec(
        ...     actors.durable.Push, Billing, durable=("ORDERS", "billing"),
        ...     max_in_flight=10, name="billing",
        ... )
        >>> spec.kwargs["durable"]
        ('ORDERS', 'billing')
    """

    def __init__(
        self,
        factory: Callable[..., Actor],
        *args: Any,
        durable: tuple[str, str],
        max_in_flight: int = 10,
        backoff: Backoffish | None = None,
        **kwargs: Any,
    ) -> None:
        self._factory = factory
        self._args = args
        self._kwargs = kwargs
        self._durable = durable
        self._max_in_flight = max_in_flight
        self._backoff = backoff
        self._inner: Actor | None = None
        self._consumer: Consumer | None = None
        self._held: dict[int, Message] = {}
        self._to_ack: list[Message] = []  # handled, for _ack_loop's next batch
        self._acking: list[Message] = []  # the batch whose ack is being written
        self._ack_wanted = Signal()
        self._failing = False  # receive raised: this incarnation takes no more
        self._pulling: anyio.CancelScope | None = None

    @classmethod
    def check_args(cls, *args: Any, **kwargs: Any) -> None:
        """Refuse a bad ``durable`` or ``max_in_flight`` where spawn is called."""
        if not args or not callable(args[0]):
            raise TypeError("Push needs the inner actor's class or factory first")
        durable = kwargs.get("durable")
        if (
            not isinstance(durable, tuple)
            or len(durable) != 2
            or not all(isinstance(name, str) and name for name in durable)
        ):
            raise TypeError(
                f"Push needs durable=(stream name, consumer name), like "
                f"('ORDERS', 'billing'), got {durable!r}"
            )
        limit = kwargs.get("max_in_flight", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"max_in_flight must be a whole number >= 1, got {limit!r}")

    def __repr__(self) -> str:
        name = getattr(self._factory, "__qualname__", repr(self._factory))
        return f"<Push {name} durable={self._durable}>"

    async def on_start(self) -> None:
        overflow = self._actors_cell.mailbox.overflow
        if overflow != "block":
            raise ValueError(
                f"{self.ref.path}: a Push consumer's mailbox must block when full (its "
                f"backpressure), not {overflow!r}, which would drop deliveries: spawn it "
                f"with Mailbox(capacity) or Mailbox(capacity, 'block')"
            )
        streams = self.context.system.streams
        if streams._store is None:
            raise StoreNotConfigured(
                f"{self.ref.path} consumes {self._durable} but the actor system has no "
                f"store: ActorSystem(store=actors.durable.SQLiteStore('app.db'))"
            )
        stream_name, consumer_name = self._durable
        stream = await streams.get(stream_name)
        self._consumer = await stream.open_consumer(
            consumer_name, backoff=self._backoff, max_in_flight=self._max_in_flight
        )
        inner = self._factory(*self._args, **self._kwargs)
        if not isinstance(inner, Actor):
            raise TypeError(f"Push's factory returned {type(inner).__name__}, not an Actor")
        inner._actors_cell = self._actors_cell
        self._inner = inner
        await inner.on_start()
        self.context.go(self._ack_loop)
        self.context.go(self._pull)

    async def _pull(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        tell = self.ref.tell
        with anyio.CancelScope() as self._pulling:
            await self._pull_loop(consumer, tell)

    async def _pull_loop(self, consumer: Consumer, tell: Any) -> None:
        while True:
            got = await consumer._fetch(self._max_in_flight, _PULL_EXPIRES)
            if self._failing:  # the nak freed credit, but this incarnation is ending
                await consumer.release(got)
                return
            for message in got:  # all held first: on_stop gives back any not told
                self._held[message.seq] = message
            for message in got:
                if _tracing.tracer is not None:
                    await tell(_traced(_Delivery(consumer, message)))
                else:
                    await tell(_Delivery(consumer, message))  # waits for room

    async def _ack_loop(self) -> None:
        # The acks of what receive handled, each batch in one call (one
        # commit): those handled while one is written go in the next.
        consumer = self._consumer
        assert consumer is not None
        try:
            while True:
                if not self._to_ack:
                    self._ack_wanted = Signal()
                    await self._ack_wanted.wait()
                    continue
                self._acking, self._to_ack = self._to_ack, []
                await consumer._ack(self._acking)
                self._acking = []
        finally:
            # Here too, not only in on_stop: a stop past the shutdown
            # timeout kills the actor, and on_stop does not run then.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_SETTLE_LIMIT):
                await self._settle_rest()

    async def receive(self, message: Any) -> Any:
        inner = self._inner
        assert inner is not None
        if type(message) is not _Delivery:
            return await inner.receive(message)
        if message.consumer is not self._consumer:
            return None  # an earlier incarnation's: it gave it back
        delivery = message.message
        try:
            await inner.receive(delivery)
        except Exception as error:
            self._failing = True
            if self._pulling is not None:
                # Before the nak frees credit: a claim now would only be
                # given back (and on JetStream that counts as a delivery).
                self._pulling.cancel()
            self._held.pop(delivery.seq, None)
            with anyio.CancelScope(shield=True):
                await delivery.nak(error=repr(error))
            raise
        self._held.pop(delivery.seq, None)
        self._to_ack.append(delivery)
        self._ack_wanted.set()
        return None

    async def on_stop(self) -> None:
        await self._settle_rest()  # done already when the goroutines ended
        if self._inner is not None:
            await self._inner.on_stop()

    async def _settle_rest(self) -> None:
        # The acks of what was handled, then what is held given back.
        handled, self._acking, self._to_ack = [*self._acking, *self._to_ack], [], []
        if handled and self._consumer is not None:
            try:
                with anyio.CancelScope(shield=True):
                    await self._consumer._ack(handled)  # stale ones (acked already) are dropped
            except Exception as error:
                logger.warning(
                    "%s: the acks of %d handled messages were not written (%r): "
                    "they will be delivered again",
                    self.ref.path,
                    len(handled),
                    error,
                )
        held, self._held = list(self._held.values()), {}
        if held and self._consumer is not None:
            try:
                await self._consumer.release(held)
            except Exception as error:
                logger.warning(
                    "%s: %d deliveries were not given back (%r): they come back after "
                    "their ack wait, counted",
                    self.ref.path,
                    len(held),
                    error,
                )
