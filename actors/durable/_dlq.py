"""Dead-letter queues: what a consumer gave up on, kept to browse, requeue, replay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._codec import loads
from .._tracing import stored
from ._errors import ConsumerNotFound, DurableError

if TYPE_CHECKING:
    from ._streams import Stream

_MAX_SEQ = (1 << 63) - 1


@dataclass(frozen=True)
class Unreadable:
    """Stands for a dead letter's message that cannot be unpickled in this
    process (its class is not importable here, or fails to rebuild); the
    entry can still be requeued or removed.

    Examples:
        >>> Unreadable("ModuleNotFoundError: No module named 'shop'").error
        "ModuleNotFoundError: No module named 'shop'"
    """

    error: str  # what unpickling raised


@dataclass(frozen=True)
class DeadLetterEntry:
    """A message a consumer gave up on, with why and when.

    Attributes:
        seq: its sequence in the stream.
        subject: the subject it was published to.
        data: the message (unpickled), or :class:`Unreadable` if it cannot
            be unpickled here.
        time: when it was published.
        deliveries: how many times it was delivered.
        last_error: the last nak's error, the ``term`` reason, or
            ``"no ack within ack_wait"``.
        first_delivered: when it was first delivered.
        last_delivered: when it was last delivered.
        dead_at: when it moved here.

    Examples:
        >>> DeadLetterEntry(3, "orders.eu", {"id": 3}, 0.0, 5, "boom", 1.0, 9.0, 9.5).deliveries
        5
    """

    seq: int
    subject: str
    data: Any
    time: float
    deliveries: int
    last_error: str | None
    first_delivered: float | None
    last_delivered: float | None
    dead_at: float


class DeadLetters:
    """The dead-letter queue of one durable consumer (``stream.dead_letters(name)``).

    A message lands here after ``max_deliver`` deliveries (or a ``term``),
    moved in the same transaction that settles it: never lost, never twice.
    These are not the actor system's ``DeadLetter`` messages (undeliverable
    tells).

    Examples:
        >>> async def after_the_fix(orders):  # doctest: +SKIP
        ...     dlq = orders.dead_letters("billing")
        ...     for entry in await dlq.browse():
        ...         await dlq.requeue(entry.seq)
    """

    def __init__(self, stream: Stream, consumer: str) -> None:
        self.stream = stream
        self.consumer = consumer

    def __repr__(self) -> str:
        return f"<DeadLetters {self.stream.name}/{self.consumer}>"

    async def _id(self) -> int:
        # Looked up on each call: the consumer may have been deleted (and one
        # of its name created again) since the last.
        store = self.stream._streams.store
        for cid, name, _flt, _cfg in await store.consumers(self.stream.name):
            if name == self.consumer:
                return cid  # type: ignore[no-any-return]
        raise ConsumerNotFound(
            f"stream {self.stream.name!r} has no consumer {self.consumer!r}: create it "
            f"with stream.consumer({self.consumer!r}, ...)"
        )

    async def browse(self, since: int = 1, until: int | None = None) -> list[DeadLetterEntry]:
        """The entries with ``since <= seq <= until``, in sequence order.

        Raises:
            ConsumerNotFound: the stream has no such consumer.
            ValueError: ``since`` or ``until`` is not a sequence number.

        Cancellation: nothing to undo.
        """
        _check_seq("since", since)
        if until is not None:
            _check_seq("until", until)
        return [
            DeadLetterEntry(seq, subject, _load(data), time, d, error, first, last, dead)
            for seq, subject, data, time, d, error, first, last, dead in await self._rows(
                since, until
            )
        ]

    async def _rows(self, since: int, until: int | None) -> list[tuple[Any, ...]]:
        store = self.stream._streams.store
        return await store.dead_letters(
            await self._id(), since, _MAX_SEQ if until is None else until
        )

    async def count(self) -> int:
        """How many entries there are (their messages are not unpickled).

        Cancellation: nothing to undo.
        """
        return len(await self._rows(1, None))

    async def requeue(self, seq: int) -> bool:
        """Deliver the entry's message to the consumer again, its count reset
        to 0; the entry leaves the queue (in one transaction).

        Returns:
            False if there is no entry ``seq``.

        Cancellation: the requeue may or may not have happened.
        """
        _check_seq("seq", seq)
        streams = self.stream._streams
        done = await streams.store.requeue(self.stream.name, await self._id(), seq)
        streams._notify(self.stream.name)
        return done

    async def remove(self, seq: int) -> bool:
        """Delete an entry (after it was handled some other way).

        Cancellation: it may or may not have been removed.
        """
        _check_seq("seq", seq)
        return await self.stream._streams.store.remove_dead(await self._id(), seq)

    async def replay(
        self, to: str | None = None, *, since: int = 1, until: int | None = None
    ) -> list[int]:
        """Publish copies of the entries ``since <= seq <= until`` in order,
        to subject ``to`` (default: each to its own subject). The entries
        stay in the queue.

        Returns:
            The new messages' sequences.

        Raises:
            StreamNotFound: no stream takes ``to``.

        Cancellation: all or none of a stream's copies may have been published.
        """
        entries = await self.browse(since, until)
        if not entries:
            return []
        unreadable = [e for e in entries if type(e.data) is Unreadable]
        if unreadable:
            raise DurableError(
                f"{self!r}: the messages of entries {[e.seq for e in unreadable]} cannot be "
                f"unpickled here ({unreadable[0].data.error}); nothing was replayed: run "
                f"where their classes import, or remove them"
            )
        streams = self.stream._streams
        if to is None:
            return await self.stream.publish_many([(e.subject, e.data) for e in entries])
        target = await streams._route(to)
        return await target.publish_many([(to, e.data) for e in entries])


def _load(data: bytes) -> Any:
    # One entry that cannot be unpickled must not hide the others.
    try:
        return stored(loads(data))[0]
    except Exception as error:
        return Unreadable(f"{type(error).__name__}: {error}")


def _check_seq(what: str, seq: object) -> None:
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= _MAX_SEQ:
        raise ValueError(f"{what} must be a sequence number (a whole number >= 0), got {seq!r}")
