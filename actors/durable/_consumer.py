"""Durable consumers: claim messages, settle them, redeliver what is not settled.

A delivery's deadline lives in the store (the row's ``vt``), not in a timer:
ten thousand unsettled deliveries cost no task and no timer here. A waiting
``fetch`` sleeps once, until the earliest of: a commit in this process that
may have made something deliverable, the next ``vt``, its own expiry, and a
poll interval (for commits of other processes).

# Invariants:
# - ``_in_flight`` maps each delivery this handle gave out and has not
#   settled to the loop time its ack wait ends; expired entries no longer
#   count against ``max_in_flight`` (the store will deliver them again).
# - A claim's rows reach the caller or are given back by the store: a fetch
#   cancelled while the store claims gets nothing (see ``Store.claim``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
import anyio.lowlevel

from .. import _tracing
from .._codec import loads
from .._deadlines import now
from .._matcher import check_pattern, pattern_matches
from .._signal import Signal
from ._errors import ConsumerNotFound

if TYPE_CHECKING:
    from ._streams import Stream

#: Where a new consumer starts.
Deliver = Literal["all", "new"] | tuple[Literal["seq"], int] | tuple[Literal["time"], float]

#: Seconds between looks for messages other processes committed.
POLL_INTERVAL = 1.0


class _HasDelay(Protocol):
    def delay(self, attempt: int) -> float: ...


Backoffish = _HasDelay | Sequence[float]


def check_consumer(
    stream: Stream,
    name: object,
    flt: object,
    deliver: object,
    ack_wait: object,
    max_deliver: object,
    backoff: object,
    max_in_flight: object,
) -> tuple[str, tuple[str, float] | None, Any]:
    """Validate a consumer's options; return its filter, start and backoff."""
    if not isinstance(name, str) or not name or not name.isprintable() or " " in name:
        raise ValueError(f"a consumer name is a non-empty str without spaces, got {name!r}")
    if flt is None:
        flt = ">"
    check_pattern(flt)
    assert isinstance(flt, str)
    if flt != ">" and not any(_patterns_overlap(flt, subject) for subject in stream.subjects):
        raise ValueError(
            f"filter {flt!r} matches none of stream {stream.name!r}'s subjects "
            f"{list(stream.subjects)}"
        )
    start: tuple[str, float] | None
    if deliver == "all":
        start = ("seq", 1)
    elif deliver == "new":
        start = None
    elif (
        isinstance(deliver, tuple)
        and len(deliver) == 2
        and deliver[0] in ("seq", "time")
        and isinstance(deliver[1], (int, float))
        and not isinstance(deliver[1], bool)
    ):
        if not math.isfinite(deliver[1]):
            raise ValueError(f"deliver's {deliver[0]} must be finite, got {deliver!r}")
        if deliver[0] == "seq":
            if not isinstance(deliver[1], int) or deliver[1] < 1:
                raise ValueError(
                    f"deliver=('seq', n) starts at sequence n, a whole number >= 1 (the "
                    f"first message is 1; 'all' starts at the oldest kept), got {deliver!r}"
                )
            start = ("seq", min(deliver[1], _MAX_SEQ))
        else:
            start = ("time", float(deliver[1]))
    else:
        raise ValueError(
            f"deliver must be 'all', 'new', ('seq', n) or ('time', seconds since the "
            f"epoch), got {deliver!r}"
        )
    if (
        isinstance(ack_wait, bool)
        or not isinstance(ack_wait, (int, float))
        or not (0 < ack_wait < math.inf)
    ):
        raise ValueError(f"ack_wait must be seconds > 0, got {ack_wait!r}")
    if isinstance(max_deliver, bool) or not isinstance(max_deliver, int) or max_deliver < 1:
        raise ValueError(
            f"max_deliver must be a whole number >= 1 (deliveries before the message "
            f"moves to the dead letters), got {max_deliver!r}"
        )
    if (
        backoff is not None
        and not callable(getattr(backoff, "delay", None))
        and (
            isinstance(backoff, (str, bytes))
            or not isinstance(backoff, Sequence)
            or not all(
                isinstance(d, (int, float)) and not isinstance(d, bool) and 0 <= d < math.inf
                for d in backoff
            )
            or not backoff
        )
    ):
        raise ValueError(
            f"backoff must be a supervision.Backoff (anything with delay(attempt)) or "
            f"a non-empty list of seconds >= 0, got {backoff!r}"
        )
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be a whole number >= 1, got {max_in_flight!r}")
    delays(backoff, max_deliver)  # type: ignore[arg-type]  # a Backoff's delays, checked here
    return flt, start, backoff


def _patterns_overlap(a: str, b: str) -> bool:
    from ._streams import patterns_overlap

    return patterns_overlap(a, b)


#: A Backoff's delays are read for this many deliveries at most; later
#: redeliveries repeat the last (a claim sends them to the store each time).
DELAYS_MOST = 64
#: The highest sequence a start may name (a 64-bit signed integer, as SQLite
#: takes it; the SQLite store's own last sequence is lower, and it clamps).
_MAX_SEQ = (1 << 63) - 1


def backoff_delay(backoff: Backoffish | None, attempt: int) -> float:
    """The backoff's delay before redelivery number ``attempt + 1`` (0: none).

    Raises:
        ValueError: a Backoff's ``delay(attempt)`` gave no finite seconds >= 0.
    """
    if backoff is None:
        return 0.0
    if isinstance(backoff, Sequence):
        return float(backoff[min(attempt, len(backoff) - 1)])
    value = backoff.delay(min(attempt, DELAYS_MOST - 1))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ValueError(
            f"backoff {backoff!r} gave {value!r} for attempt {attempt}: its "
            f"delay(attempt) must return finite seconds >= 0"
        )
    return float(value)


def delays(backoff: Backoffish | None, max_deliver: int) -> list[float]:
    """The delays before each redelivery, as the stores take them: at most
    ``max_deliver`` and DELAYS_MOST of them, the last one repeating."""
    if backoff is None:
        return []
    if isinstance(backoff, Sequence):
        return [float(d) for d in backoff[:max_deliver]]
    return [backoff_delay(backoff, attempt) for attempt in range(min(max_deliver, DELAYS_MOST))]


@dataclass(frozen=True)
class ConsumerInfo:
    """A consumer's position, from ``await consumer.info()``.

    Attributes:
        pending: messages not yet settled (waiting or in flight).
        in_flight: deliveries out and not settled, within their ack wait.
        ack_floor: every message up to this sequence is settled (0: none).
        dead_letters: entries in its dead-letter queue.

    Examples:
        >>> ConsumerInfo("billing", pending=2, in_flight=1, ack_floor=10, dead_letters=0).pending
        2
    """

    name: str
    pending: int
    in_flight: int
    ack_floor: int
    dead_letters: int


class Message:
    """One delivery of a stream message to a durable consumer.

    Settle it once: :meth:`ack` (done), :meth:`nak` (deliver again),
    :meth:`in_progress` (more time), :meth:`term` (give up: to the dead
    letters). A settle after the message was delivered again (its ack wait
    ran out) is stale and dropped: the newer delivery decides.

    Attributes:
        subject: the subject it was published to.
        seq: its sequence in the stream.
        deliveries: how many times it has been delivered, this one included.
        time: when it was published (seconds since the epoch).

    Examples:
        >>> async def handle(m):  # doctest: +SKIP
        ...     try:
        ...         await charge(m.data)
        ...     except PaymentDown as error:
        ...         await m.nak(error=repr(error))  # again after the backoff
        ...     else:
        ...         await m.ack()
    """

    __slots__ = (
        "_consumer",
        "_data",
        "_headers",
        "_loaded",
        "_span",
        "_value",
        "deliveries",
        "seq",
        "subject",
        "time",
    )

    def __init__(
        self, consumer: Consumer, seq: int, subject: str, data: bytes, time: float, deliveries: int
    ) -> None:
        self._consumer = consumer
        self.seq = seq
        self.subject = subject
        self._data = data
        self._loaded = False
        self._value: Any = None
        self.time = time
        self.deliveries = deliveries
        #: The trace context it was published in (``actors.tracing``), once loaded.
        self._headers: dict[str, str] | None = None
        #: While tracing, a fetched message's CONSUMER span, until it is settled.
        self._span: Any = None

    def __repr__(self) -> str:
        return (
            f"<Message {self._consumer.stream.name}#{self.seq} {self.subject!r} "
            f"deliveries={self.deliveries}>"
        )

    @property
    def data(self) -> Any:
        """The message as published (unpickled on first access)."""
        if not self._loaded:
            self._value, self._headers = _tracing.stored(loads(self._data))
            self._loaded = True
        return self._value

    @property
    def token(self) -> tuple[int, int]:
        """``(seq, deliveries)``: names this delivery in the store."""
        return (self.seq, self.deliveries)

    async def ack(self) -> bool:
        """Settle: the consumer is done with it (durable when this returns).

        Returns:
            False if the ack was stale (the message was delivered again, or
            already settled), True otherwise.

        Raises:
            ConsumerNotFound: the consumer was deleted (here or elsewhere).

        Cancellation: the ack may or may not have been recorded.
        """
        (done,) = await self._consumer._ack([self])
        return done

    async def nak(self, delay: float | None = None, *, error: str | None = None) -> str:
        """Deliver it again: after ``delay`` seconds, or after the consumer's
        backoff for this delivery (at once without a backoff). On the last
        allowed delivery it moves to the dead letters instead.

        Args:
            delay: seconds before it is delivered again (None: the backoff).
            error: why, kept as the message's last error.

        Returns:
            ``"nak"``, ``"dead"`` (moved to the dead letters) or ``"stale"``.

        Raises:
            ValueError: ``delay`` is not finite seconds >= 0.
            TypeError: ``error`` is not a str.
            ConsumerNotFound: the consumer was deleted (here or elsewhere).

        Cancellation: the nak may or may not have been recorded; if not, the
        message comes back after its ack wait.
        """
        return await self._consumer._nak(self, delay, error)

    async def in_progress(self) -> bool:
        """Still working: its ack wait starts again now.

        Returns:
            False if stale.

        Cancellation: the extension may or may not have been recorded.
        """
        consumer = self._consumer
        try:
            ok = await consumer._store.progress(consumer._cid, self.token, consumer.ack_wait)
        except ConsumerNotFound:
            raise consumer._deleted() from None
        if ok:
            consumer._in_flight[self.seq] = now() + consumer.ack_wait
        return ok

    async def term(self, why: str = "terminated") -> bool:
        """Give up on it: it moves to the dead letters with ``why``, not redelivered.

        Returns:
            False if stale.

        Cancellation: the move may or may not have been recorded.
        """
        if not isinstance(why, str):
            raise TypeError(f"why must be a str, got {why!r}")
        consumer = self._consumer
        try:
            ok = await consumer._store.term(consumer.stream.name, consumer._cid, self.token, why)
        except ConsumerNotFound:
            raise consumer._deleted() from None
        consumer._settled(self, "term", why)
        return ok


class Consumer:
    """A durable consumer of a stream (from ``await stream.consumer(name)``).

    Pull messages with :meth:`fetch` or :meth:`pull`, settle each. Its
    position is in the store; another handle of the same name (after a
    restart, in another process) continues from it.

    Attributes:
        stream: the :class:`Stream`.
        name: the durable name.
        filter: the subjects it gets.
        ack_wait: seconds before an unsettled delivery is redelivered.
        max_deliver: deliveries before a message moves to the dead letters.
        max_in_flight: unsettled deliveries this handle holds at most.

    Examples:
        >>> async def main(orders):  # doctest: +SKIP
        ...     billing = await orders.consumer("billing", ack_wait=30, max_deliver=5)
        ...     for m in await billing.fetch(10, expires=5):
        ...         await m.ack()
    """

    def __init__(
        self,
        stream: Stream,
        cid: int,
        name: str,
        flt: str,
        ack_wait: float,
        max_deliver: int,
        backoff: Backoffish | None,
        max_in_flight: int,
    ) -> None:
        self.stream = stream
        self._streams = stream._streams
        self._store = self._streams.store
        self._cid = cid
        self.name = name
        self.filter = flt
        self.ack_wait = float(ack_wait)
        self.max_deliver = max_deliver
        self.backoff = backoff
        self.max_in_flight = max_in_flight
        self._in_flight: dict[int, float] = {}
        #: Deliveries the claims under way may bring (counted as in flight).
        self._claiming = 0
        self._settle_signal = Signal()

    def __repr__(self) -> str:
        return f"<Consumer {self.stream.name}/{self.name} filter={self.filter!r}>"

    def _deleted(self) -> ConsumerNotFound:
        return ConsumerNotFound(
            f"consumer {self.name!r} of stream {self.stream.name!r} no longer exists (it "
            f"was deleted, or its stream was, here or by another process): create it "
            f"again with stream.consumer({self.name!r}, ...) and use the new handle"
        )

    def _delays(self) -> list[float]:
        # Each claim's: a jittered Backoff gives fresh jitter.
        return delays(self.backoff, self.max_deliver)

    def _credit(self) -> int:
        in_flight = self._in_flight
        if len(in_flight) + self._claiming >= self.max_in_flight:
            t = now()
            for seq in [s for s, deadline in in_flight.items() if deadline <= t]:
                del in_flight[seq]
        return self.max_in_flight - len(in_flight) - self._claiming

    def _settled(self, message: Message, error: str | None = None, why: str = "") -> None:
        if self._forget(message, error, why):
            self._wake_settle_waiters()

    def _settled_all(self, messages: Sequence[Message]) -> None:
        # _settled for each, waking the waiters once.
        forgot = False
        for m in messages:
            forgot = self._forget(m, None, "") or forgot
        if forgot:
            self._wake_settle_waiters()

    def _forget(self, message: Message, error: str | None, why: str) -> bool:
        # No longer in flight; whether it was.
        span = message._span
        if span is not None:  # while tracing: its handling ends here
            message._span = None
            if error is not None:
                _tracing.failed(span, error, why)
            span.end()
        return self._in_flight.pop(message.seq, None) is not None

    def _wake_settle_waiters(self) -> None:
        signal, self._settle_signal = self._settle_signal, Signal()
        signal.set()

    async def _claim(self, n: int, wait: float) -> tuple[list[Message], float | None]:
        stream = self.stream
        try:
            rows, next_vt = await self._store.claim(
                stream.name,
                self._cid,
                n,
                self.ack_wait,
                self._delays(),
                self.max_deliver,
                wait,
            )
        except ConsumerNotFound:
            raise self._deleted() from None
        except BaseException:
            # Cancelled (or failed): the store gave back what it had claimed.
            self._streams._notify(stream.name)
            raise
        messages = [Message(self, seq, subj, data, t, d) for seq, subj, data, t, d, _ in rows]
        deadline = now() + self.ack_wait
        for m in messages:
            self._in_flight[m.seq] = deadline
        return messages, next_vt

    async def fetch(self, batch: int = 1, *, expires: float | None = None) -> list[Message]:
        """Claim up to ``batch`` messages, in sequence order.

        Waits up to ``expires`` seconds for at least one (None: do not wait),
        and while this handle holds ``max_in_flight`` unsettled deliveries.

        Args:
            batch: the most messages to return.
            expires: seconds to wait for the first message.

        Returns:
            The messages (empty if none came in time).

        Raises:
            ValueError: ``batch`` < 1 or a negative ``expires``.
            ConsumerNotFound: the consumer was deleted (here or elsewhere).

        Cancellation: safe: messages claimed when the cancellation came are
        given back at once (their delivery not counted).
        """
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")
        if expires is not None and (
            isinstance(expires, bool) or not isinstance(expires, (int, float)) or not expires >= 0
        ):
            raise ValueError(f"expires must be seconds >= 0 or None, got {expires!r}")
        messages = await self._fetch(batch, expires)
        if _tracing.tracer is not None:
            _trace(self, messages)
        return messages

    async def _fetch(self, batch: int, expires: float | None) -> list[Message]:
        # fetch() without its checks and spans (a Push actor's: its cell
        # loop handles each message in a span).
        deadline = now() + (expires or 0.0)
        while True:
            credit = self._credit()
            if credit > 0:
                signal = self._streams._signal(self.stream.name)
                take = min(batch, credit)
                self._claiming += take  # other fetches of this handle see it taken
                try:
                    messages, next_vt = await self._claim(take, deadline - now())
                finally:
                    self._claiming -= take
                    if self._settle_signal._waiters:  # credit it did not use
                        self._wake_settle_waiters()
                if messages:
                    return messages
                wake = deadline
                if next_vt is not None:
                    wake = min(wake, now() + max(0.0, next_vt - self._store.clock()))
            else:
                # Wait for a settle, or for the first unsettled delivery to time out.
                signal = self._settle_signal
                wake = min([deadline, *self._in_flight.values()])
            t = now()
            if t >= deadline:
                return []
            wake = min(wake, t + POLL_INTERVAL)
            await signal.wait(max(0.0, wake - t))

    @asynccontextmanager
    async def pull(
        self, batch: int = 100, *, expires: float = 5.0
    ) -> AsyncIterator[AsyncIterator[Message]]:
        """Iterate over messages, fetched ``batch`` at a time.

        The iteration ends when no message came for ``expires`` seconds.
        Messages fetched but not yet yielded when the block ends are given
        back at once (not counted as deliveries).

        Examples:
            >>> async def main(consumer):  # doctest: +SKIP
            ...     async with consumer.pull(batch=100, expires=5) as messages:
            ...         async for m in messages:
            ...             await m.ack()

        Cancellation: as :meth:`fetch`; unyielded messages are given back.
        """
        pull = _Pull(self, batch, expires)
        try:
            yield pull
        finally:
            if pull.held:
                with anyio.CancelScope(shield=True):
                    await self.release(pull.held)
                pull.held.clear()

    async def release(self, messages: Sequence[Message]) -> None:
        """Give back deliveries that were never worked on (not counted).

        Raises:
            ValueError: a message was delivered to another consumer.

        Cancellation: shielded.
        """
        self._check_own(messages)
        with anyio.CancelScope(shield=True):
            await self._store.release(self._cid, [m.token for m in messages])
        self._settled_all(messages)
        self._streams._notify(self.stream.name)

    async def ack(self, messages: Sequence[Message]) -> list[bool]:
        """Ack many messages in one transaction (one commit).

        Returns:
            For each, whether it was settled (False: stale).

        Cancellation: the acks may or may not have been recorded.
        """
        return await self._ack(messages)

    def _check_own(self, messages: Sequence[Message]) -> None:
        for m in messages:
            if not isinstance(m, Message):
                raise TypeError(f"expected messages fetched from {self!r}, got {m!r}")
            if m._consumer is not self and m._consumer._cid != self._cid:
                raise ValueError(f"{m!r} was delivered to another consumer, not {self!r}")

    async def _ack(self, messages: Sequence[Message]) -> list[bool]:
        self._check_own(messages)
        try:
            done = await self._store.ack(self.stream.name, self._cid, [m.token for m in messages])
        except ConsumerNotFound:
            raise self._deleted() from None
        self._settled_all(messages)
        return done

    async def _nak(self, message: Message, delay: float | None, error: str | None) -> str:
        if delay is None:
            delay = backoff_delay(self.backoff, message.deliveries - 1)
        elif (
            isinstance(delay, bool)
            or not isinstance(delay, (int, float))
            or not 0 <= delay < math.inf
        ):
            raise ValueError(f"delay must be finite seconds >= 0 or None, got {delay!r}")
        if error is not None and not isinstance(error, str):
            raise TypeError(f"error must be a str (why it failed) or None, got {error!r}")
        stream = self.stream
        try:
            result = await self._store.nak(
                stream.name, self._cid, message.token, float(delay), error, self.max_deliver
            )
        except ConsumerNotFound:
            raise self._deleted() from None
        self._settled(message, "nak", error or "")
        self._streams._notify(stream.name)
        return result

    async def reset(self, to_seq: int = 1) -> None:
        """Move the consumer: every matching message from ``to_seq`` on is
        pending again (Kafka's seek); deliveries in flight become stale.

        Cancellation: the move may or may not have happened.
        """
        if isinstance(to_seq, bool) or not isinstance(to_seq, int) or to_seq < 1:
            raise ValueError(f"to_seq must be a sequence number >= 1, got {to_seq!r}")
        stream = self.stream
        try:
            await self._store.reset(stream.name, self._cid, self.filter, to_seq)
        except ConsumerNotFound:
            raise self._deleted() from None
        self._in_flight.clear()
        self._streams._notify(stream.name)

    async def info(self) -> ConsumerInfo:
        """Its pending, in-flight and dead-letter counts and its ack floor.

        Cancellation: nothing to undo.
        """
        try:
            pending, in_flight, first, dead = await self._store.consumer_info(self._cid)
        except ConsumerNotFound:
            raise self._deleted() from None
        floor = first - 1 if first else (await self.stream.info()).last_seq
        return ConsumerInfo(self.name, pending, in_flight, floor, dead)

    async def delete(self) -> None:
        """Delete the consumer, its position and its dead letters.

        Cancellation: it may or may not have been deleted.
        """
        await self._store.delete_consumer(self.stream.name, self._cid)

    def matches(self, subject: str) -> bool:
        """Whether this consumer's filter takes ``subject``.

        Examples:
            >>> async def main(orders):  # doctest: +SKIP
            ...     c = await orders.consumer("eu", filter="orders.eu.*")
            ...     c.matches("orders.eu.created")
        """
        return pattern_matches(self.filter, subject)


def _trace(consumer: Consumer, messages: list[Message]) -> None:
    # While tracing, a fetched message is handled in a CONSUMER span, a
    # child of the span it was published in (stored with it), from now
    # until this handle settles it.
    for message in messages:
        try:
            _ = message.data  # loads it, and the context stored with it
        except Exception:
            continue  # .data says why
        if message._headers:
            context = _tracing.extract(message._headers)
            message._span = _tracing.start_process(
                message.subject, context, consumer.name, message.seq
            )


class _Pull:
    """The iterator of ``consumer.pull()``: a class, not an async generator,
    so leaving the loop early leaves nothing to finalize."""

    def __init__(self, consumer: Consumer, batch: int, expires: float) -> None:
        self.consumer = consumer
        self.batch = batch
        self.expires = expires
        self.held: list[Message] = []
        self.done = False

    def __aiter__(self) -> _Pull:
        return self

    async def __anext__(self) -> Message:
        if not self.held:
            if not self.done:
                self.held = (await self.consumer.fetch(self.batch, expires=self.expires))[::-1]
            if not self.held:
                self.done = True
                raise StopAsyncIteration
        return self.held.pop()
