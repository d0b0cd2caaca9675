"""``streams.transaction()``: your SQL, acks and publishes in one commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import _tracing
from .._matcher import check_topic
from ._errors import ConsumerNotFound, DurableError, StreamNotFound

if TYPE_CHECKING:
    from ._consumer import Message
    from ._store import StoreTransaction
    from ._streams import Stream, Streams


class Transaction:
    """The block of ``async with system.streams.transaction() as tx``.

    Everything done through it commits together when the block ends, or not
    at all. Consumers and waiting fetches hear of it after the commit.

    Examples:
        >>> async def pay(system, m):  # doctest: +SKIP
        ...     async with system.streams.transaction() as tx:
        ...         await tx.execute("INSERT INTO payments VALUES (?)", (m.data,))
        ...         await tx.ack(m)
        ...         await tx.publish("payments.done", m.data)
    """

    def __init__(self, streams: Streams, handle: StoreTransaction, known: list[Stream]) -> None:
        self._streams = streams
        self._handle = handle
        self._known = known
        self._closed = False
        self._touched: set[str] = set()
        self._acked: list[Message] = []

    def _open(self) -> None:
        if self._closed:
            raise DurableError("this transaction has ended: open a new streams.transaction()")

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one SQL statement of your own on the store's file.

        Returns:
            The rows it produced (empty for most writes).

        Raises:
            sqlite3.Error: the statement failed (the transaction is still
                open; leave the block with the error to roll it all back).

        Cancellation: the block rolls back.
        """
        self._open()
        return await self._handle.execute(sql, parameters)

    async def publish(self, subject: str, message: Any, *, msg_id: str | None = None) -> int:
        """Publish, as part of the transaction (to the stream taking ``subject``).

        Returns:
            The sequence it will have once committed.

        Raises:
            StreamNotFound: no stream takes ``subject``.

        Cancellation: the block rolls back.
        """
        self._open()
        check_topic(subject)
        for stream in self._known:
            if stream._takes(subject):
                break
        else:
            raise StreamNotFound(
                f"no stream takes subject {subject!r}: create one before the transaction"
            )
        if _tracing.tracer is not None:
            return await self._traced_publish(stream, subject, message, msg_id)
        (seq,) = await self._handle.publish(stream.name, [stream._item(subject, message, msg_id)])
        self._touched.add(stream.name)
        return seq

    async def _traced_publish(
        self, stream: Stream, subject: str, message: Any, msg_id: str | None
    ) -> int:
        # As above, in a PRODUCER span whose context is stored with the
        # message, as by Stream.publish.
        span = _tracing.start_publish(subject)
        try:
            stored = _tracing.Stored(message, _tracing.headers_of(span))
            item = stream._item(subject, stored, msg_id)
            (seq,) = await self._handle.publish(stream.name, [item])
            span.set_attribute("messaging.message.id", str(seq))
        except Exception as error:
            _tracing.failed(span, error)
            raise
        finally:
            span.end()
        self._touched.add(stream.name)
        return seq

    async def ack(self, message: Message) -> None:
        """Ack a consumed message, as part of the transaction.

        Raises:
            DurableError: the delivery is stale (the message was delivered
                again after its ack wait): the block must not commit, since
                the newer delivery will have its effect too; leave it with
                this error and it rolls back.

        Cancellation: the block rolls back.
        """
        self._open()
        from ._consumer import Message

        if not isinstance(message, Message):
            raise TypeError(f"tx.ack takes a message fetched from a consumer, got {message!r}")
        consumer = message._consumer
        try:
            (done,) = await self._handle.ack(consumer.stream.name, consumer._cid, [message.token])
        except ConsumerNotFound:
            raise consumer._deleted() from None
        if not done:
            raise DurableError(
                f"{message!r} was delivered again (its ack wait ran out) or already "
                f"settled: this transaction must roll back; raise out of the block"
            )
        self._acked.append(message)

    def _committed(self) -> None:
        for message in self._acked:
            message._consumer._settled(message)
        for name in self._touched:
            self._streams._notify(name)
