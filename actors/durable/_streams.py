"""Streams: ``system.streams``, named logs of messages kept in a store.

# Invariants:
# - ``_signals[name]`` is set (and replaced) after every commit in this
#   process that may make a message of stream ``name`` deliverable (a publish,
#   a nak, a release, a requeue): consumers waiting in ``fetch`` wake then,
#   and poll for what other processes commit.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .. import _tracing
from .._codec import dumps
from .._matcher import check_pattern, check_topic, pattern_matches
from .._signal import Signal
from ._errors import StoreNotConfigured, StreamNotFound, SubjectNotTaken

if TYPE_CHECKING:
    from ._consumer import Backoffish, Consumer, Deliver
    from ._dlq import DeadLetters
    from ._store import Store
    from ._transaction import Transaction

#: What a stream keeps: up to its limits, until every consumer acked, or
#: until one consumer acked.
Retention = Literal["limits", "interest", "workqueue"]
RETENTIONS = ("limits", "interest", "workqueue")
#: First tokens of the subjects the stores use themselves (JetStream's dead
#: letters and requeues): no stream may take them, on either store.
RESERVED = ("_DLQ", "_RQ")

#: How many valid subjects a stream remembers (its publish path checks each once).
_VALID_CACHE = 4096

#: Seconds within which a repeated ``msg_id`` is recognised (JetStream's default).
DEFAULT_DEDUP_WINDOW = 120.0


@dataclass(frozen=True)
class StreamInfo:
    """A stream's counters, from ``await stream.info()``.

    Examples:
        >>> StreamInfo("ORDERS", messages=3, bytes=120, last_seq=3).last_seq
        3
    """

    name: str
    messages: int
    bytes: int
    last_seq: int


def patterns_overlap(a: str, b: str) -> bool:
    """Whether some subject matches both patterns.

    Examples:
        >>> patterns_overlap("orders.*", "orders.eu"), patterns_overlap("a.b", "a.c")
        (True, False)
    """
    ta, tb = a.split("."), b.split(".")
    for x, y in zip(ta, tb, strict=False):
        if x == ">" or y == ">":
            return True
        if x != y and x != "*" and y != "*":
            return False
    return len(ta) == len(tb)


def _check_limit(what: str, value: object, kind: type = int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise TypeError(f"{what} must be a {kind.__name__} or None, got {value!r}")
    if not value > 0 or (isinstance(value, float) and math.isinf(value)):
        raise ValueError(f"{what} must be > 0 and finite (None: no limit), got {value!r}")


class Streams:
    """The durable streams of an actor system: ``system.streams``.

    Needs a store: ``ActorSystem(store=durable.SQLiteStore("app.db"))``.

    Examples:
        >>> import actors
        >>> from actors import durable
        >>> async def main(path):
        ...     async with actors.ActorSystem(store=durable.SQLiteStore(path)) as system:
        ...         orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        ...         return await orders.publish("orders.eu.created", {"id": 1})
        >>> import tempfile, os
        >>> actors.run(main, os.path.join(tempfile.mkdtemp(), "doc.db"))
        1
    """

    def __init__(self, store: Store | None) -> None:
        self._store = store
        self._signals: dict[str, Signal] = {}
        self._known: dict[str, Stream] = {}

    def __repr__(self) -> str:
        return f"<Streams store={self._store!r}>"

    @property
    def store(self) -> Store:
        """The store (raises :class:`StoreNotConfigured` if there is none)."""
        if self._store is None:
            raise StoreNotConfigured(
                "this actor system has no store for durable streams: pass one, as in "
                "ActorSystem(store=actors.durable.SQLiteStore('app.db'))"
            )
        return self._store

    def _signal(self, stream: str) -> Signal:
        signal = self._signals.get(stream)
        if signal is None:
            signal = self._signals[stream] = Signal()
        return signal

    def _notify(self, stream: str) -> None:
        signal = self._signals.pop(stream, None)
        if signal is not None:
            signal.set()

    async def create(
        self,
        name: str,
        *,
        subjects: Iterable[str],
        retention: Retention = "limits",
        max_age: float | None = None,
        max_msgs: int | None = None,
        max_bytes: int | None = None,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
    ) -> Stream:
        """Create a stream, or update the config of the one of that name.

        Args:
            name: the stream's name (letters, digits, ``-`` and ``_``).
            subjects: the subjects it takes, NATS wildcards allowed
                (``"orders.>"``); they may not overlap another stream's.
            retention: ``"limits"`` keeps messages until a limit drops the
                oldest, whatever consumers did; ``"interest"`` until every
                consumer whose filter matches has settled them (a message no
                consumer matches is not kept); ``"workqueue"`` until one
                consumer settled them (consumers' filters may not overlap).
            max_age: seconds a message is kept at most.
            max_msgs: messages kept at most (the oldest go first).
            max_bytes: payload bytes kept at most (the oldest go first).
            dedup_window: seconds within which a publish with a ``msg_id``
                seen before is not stored again.

        Returns:
            The :class:`Stream`.

        Raises:
            StoreNotConfigured: the system has no store.
            ValueError: a bad name, subject or limit, or subjects overlapping
                another stream's.
            TypeError: a value of the wrong type.

        Cancellation: the stream may or may not have been created.
        """
        store = self.store
        if (
            not isinstance(name, str)
            or not name
            or not name.replace("-", "").replace("_", "").isalnum()
        ):
            raise ValueError(
                f"a stream name is letters, digits, '-' and '_' (like 'ORDERS'), got {name!r}"
            )
        if not isinstance(subjects, Iterable) or isinstance(subjects, (str, bytes)):
            raise ValueError(
                f"subjects must be a non-empty list of subjects, like ['orders.>'], "
                f"got {subjects!r}"
            )
        subjects = list(subjects)
        if not subjects:
            raise ValueError("subjects must be a non-empty list of subjects, like ['orders.>']")
        for subject in subjects:
            check_pattern(subject)
            if subject.split(".", 1)[0] in RESERVED:
                raise ValueError(
                    f"stream {name!r}: subjects starting with "
                    f"{' or '.join(f'{r}.' for r in RESERVED)} are the stores' own (dead "
                    f"letters, requeues), got {subject!r}: choose another first token"
                )
        if retention not in RETENTIONS:
            raise ValueError(
                f"retention must be one of {', '.join(map(repr, RETENTIONS))}, got {retention!r}"
            )
        _check_limit("max_age", max_age, float)
        _check_limit("max_msgs", max_msgs)
        _check_limit("max_bytes", max_bytes)
        if (
            isinstance(dedup_window, bool)
            or not isinstance(dedup_window, (int, float))
            or not (0 <= dedup_window < math.inf)
        ):
            raise ValueError(f"dedup_window must be seconds >= 0, got {dedup_window!r}")
        for other in await store.list_streams():
            if other["name"] == name:
                await self._check_update(other, retention, subjects)
                continue
            for mine in subjects:
                for theirs in other["subjects"]:
                    if patterns_overlap(mine, theirs):
                        raise ValueError(
                            f"stream {name!r}: subject {mine!r} overlaps {theirs!r} of stream "
                            f"{other['name']!r}; a subject belongs to one stream"
                        )
        config = {
            "name": name,
            "subjects": list(subjects),
            "retention": retention,
            "max_age": max_age,
            "max_msgs": max_msgs,
            "max_bytes": max_bytes,
            "dedup_window": float(dedup_window),
        }
        await store.put_stream(name, config)
        stream = self._known[name] = Stream(self, config)
        return stream

    async def _check_update(self, old: dict[str, Any], retention: str, subjects: list[str]) -> None:
        # An update must not strand what the stream holds: JetStream's rules.
        name = old["name"]
        if retention != old["retention"] and "workqueue" in (retention, old["retention"]):
            raise ValueError(
                f"stream {name!r} has retention {old['retention']!r}, which cannot change "
                f"to or from 'workqueue' (its consumers were made for it; JetStream refuses "
                f"it too): delete the stream and create it again, or use another name"
            )
        for _cid, consumer, flt, _cfg in await self.store.consumers(name):
            if flt != ">" and not any(patterns_overlap(flt, s) for s in subjects):
                raise ValueError(
                    f"stream {name!r}: consumer {consumer!r} filters {flt!r}, which none of "
                    f"the subjects {subjects} takes: keep a subject that takes it, or delete "
                    f"the consumer first ((await stream.open_consumer({consumer!r})).delete())"
                )

    async def get(self, name: str) -> Stream:
        """The stream called ``name`` (created here or by another process).

        Raises:
            StreamNotFound: there is none: create it first.
            StoreNotConfigured: the system has no store.

        Cancellation: nothing to undo.
        """
        config = await self.store.get_stream(name)
        if config is None:
            raise StreamNotFound(
                f"no stream {name!r}: create it with system.streams.create({name!r}, "
                f"subjects=[...])"
            )
        config.pop("_stats", None)
        stream = self._known[name] = Stream(self, config)
        return stream

    async def names(self) -> list[str]:
        """The names of every stream in the store, sorted.

        Cancellation: nothing to undo.
        """
        return [config["name"] for config in await self.store.list_streams()]

    async def delete(self, name: str) -> bool:
        """Delete a stream with its messages, consumers and dead letters.

        Returns:
            Whether there was one.

        Cancellation: the stream may or may not have been deleted.
        """
        self._known.pop(name, None)
        return await self.store.delete_stream(name)

    async def _route(self, subject: str) -> Stream:
        check_topic(subject)
        for stream in self._known.values():
            if stream._takes(subject):
                return stream
        for config in await self.store.list_streams():
            stream = Stream(self, config)
            if stream._takes(subject):
                self._known[stream.name] = stream
                return stream
        raise StreamNotFound(
            f"no stream takes subject {subject!r}: create one with "
            f"system.streams.create(name, subjects=[{subject!r}])"
        )

    async def publish(self, subject: str, message: Any, *, msg_id: str | None = None) -> int:
        """Publish to the stream whose subjects match ``subject``.

        See :meth:`Stream.publish`.

        Raises:
            StreamNotFound: no stream takes ``subject``.
        """
        stream = await self._route(subject)
        try:
            return await stream.publish(subject, message, msg_id=msg_id)
        except SubjectNotTaken:  # its subjects changed (in another process)
            self._known.clear()
            stream = await self._route(subject)
            return await stream.publish(subject, message, msg_id=msg_id)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One store transaction: your SQL, acks and publishes commit together.

        On the SQLite store the block is one SQLite transaction on the
        store's file: ``await tx.execute(sql)`` changes the application's own
        tables, ``await tx.ack(message)`` settles consumed messages and
        ``await tx.publish(subject, message)`` appends; all of it commits
        when the block ends, or none of it if the block raises (or the
        process dies): the effect of a message happens exactly once.

        Other store calls wait until the block ends; in the block, use the
        transaction's methods (a stream's own ``publish`` raises there).

        Raises:
            StoreNotConfigured: the system has no store.

        Cancellation: a cancelled block rolls back.

        Examples:
            >>> async def charge(system, message):  # doctest: +SKIP
            ...     async with system.streams.transaction() as tx:
            ...         sql = "UPDATE accounts SET paid = 1 WHERE id = ?"
            ...         await tx.execute(sql, (message.data,))
            ...         await tx.ack(message)
            ...         await tx.publish("billing.charged", message.data)
        """
        from ._transaction import Transaction

        store = self.store
        configs = await store.list_streams()
        async with store.transaction() as handle:
            tx = Transaction(self, handle, [Stream(self, c) for c in configs])
            try:
                yield tx
            finally:
                tx._closed = True
        tx._committed()

    async def aclose(self) -> None:
        """Close the store (the system does this when it ends).

        Cancellation: shielded by the store.
        """
        if self._store is not None:
            await self._store.aclose()


class Stream:
    """A named, durable log of messages on some subjects (from ``streams.create``).

    Attributes:
        name: the stream's name.
        subjects: the subject patterns it takes.
        retention: ``"limits"``, ``"interest"`` or ``"workqueue"``.

    Examples:
        >>> async def main(system):  # doctest: +SKIP
        ...     orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        ...     seq = await orders.publish("orders.eu.created", {"id": 7}, msg_id="7")
    """

    def __init__(self, streams: Streams, config: dict[str, Any]) -> None:
        self._streams = streams
        self.config = config
        self.name: str = config["name"]
        self.subjects: tuple[str, ...] = tuple(config["subjects"])
        self.retention: Retention = config["retention"]
        self._valid: set[str] = set()

    def __repr__(self) -> str:
        return f"<Stream {self.name!r} subjects={list(self.subjects)} {self.retention}>"

    def _takes(self, subject: str) -> bool:
        return any(pattern_matches(p, subject) for p in self.subjects)

    def _check_subject(self, subject: str) -> None:
        # The publish path: a subject seen before is valid (a bounded cache).
        if subject in self._valid:
            return
        check_topic(subject)
        if not self._takes(subject):
            raise ValueError(
                f"stream {self.name!r} does not take subject {subject!r} (its subjects: "
                f"{list(self.subjects)}): publish to a matching subject, or add the "
                f"subject with streams.create({self.name!r}, subjects=[...])"
            )
        if len(self._valid) >= _VALID_CACHE:
            self._valid.clear()
        self._valid.add(subject)

    def _item(
        self, subject: str, message: Any, msg_id: str | None
    ) -> tuple[str, bytes, str | None]:
        self._check_subject(subject)
        if msg_id is not None and (not isinstance(msg_id, str) or not msg_id):
            raise TypeError(f"msg_id must be a non-empty str or None, got {msg_id!r}")
        return (subject, dumps(message), msg_id)

    async def publish(self, subject: str, message: Any, *, msg_id: str | None = None) -> int:
        """Append a message; return its sequence once it is durable.

        The message is pickled (as for other processes); it is stored until
        the stream's retention lets it go.

        Args:
            subject: a concrete subject matching one of the stream's.
            message: any picklable value.
            msg_id: a unique id: publishing it again within the stream's
                ``dedup_window`` stores nothing and returns the first
                sequence (safe retries).

        Returns:
            The message's sequence number in the stream.

        Raises:
            ValueError: ``subject`` is not one of the stream's.
            StreamNotFound: the stream was deleted.
            actors.UnpicklableMessage: ``message`` cannot be pickled.

        Cancellation: the message may have been stored (publish again with
        the same ``msg_id`` to be sure it is there once).
        """
        if _tracing.tracer is not None:
            (seq,) = await self._traced_publish(subject, [(subject, message, msg_id)])
            return seq
        item = self._item(subject, message, msg_id)
        try:
            (seq,) = await self._streams.store.publish(self.name, [item])
        except SubjectNotTaken:
            await self._reread()
            raise
        self._streams._notify(self.name)
        return seq

    async def _traced_publish(
        self, destination: str, messages: list[Any], atomic: bool = False
    ) -> list[int]:
        # publish() and publish_many() while tracing: one PRODUCER span,
        # whose context is stored with each message, so its consumers
        # handle it in that trace.
        span = _tracing.start_publish(destination)
        if len(messages) > 1:
            span.set_attribute("messaging.batch.message_count", len(messages))
        try:
            headers = _tracing.headers_of(span)
            items = [self._item(m[0], _tracing.Stored(m[1], headers), m[2]) for m in messages]
            seqs = await self._store_publish(items, atomic)
            if len(seqs) == 1:
                span.set_attribute("messaging.message.id", str(seqs[0]))
        except Exception as error:
            _tracing.failed(span, error)
            raise
        finally:
            span.end()
        self._streams._notify(self.name)
        return seqs

    async def _store_publish(
        self, items: list[tuple[str, bytes, str | None]], atomic: bool
    ) -> list[int]:
        store = self._streams.store
        # A store whose publish is not one transaction has publish_atomic
        # (JetStream); the SQLite store's publish is one.
        atomically = getattr(store, "publish_atomic", None) if atomic else None
        if atomically is not None:
            seqs: list[int] = await atomically(self.name, items)
            return seqs
        try:
            return await store.publish(self.name, items)
        except SubjectNotTaken:
            await self._reread()
            raise

    async def _reread(self) -> None:
        # The store says the subjects changed (another process): read them again.
        config = await self._streams.store.get_stream(self.name)
        if config is not None:
            config.pop("_stats", None)
            self.config = config
            self.subjects = tuple(config["subjects"])
            self._valid.clear()

    async def publish_many(
        self,
        messages: Iterable[tuple[str, Any] | tuple[str, Any, str | None]],
        *,
        atomic: bool = False,
    ) -> list[int]:
        """Append many messages in one transaction (one commit: much faster).

        On the SQLite store they are always stored all or none. On the
        JetStream store they are pipelined (each stored or not by itself)
        unless ``atomic``: then they are one atomic batch, stored all or
        none at consecutive sequences (at most 1000 messages; a ``msg_id``
        published before refuses the whole batch).

        Args:
            messages: ``(subject, message)`` or ``(subject, message, msg_id)``.
            atomic: store all of them or none, on every store.

        Returns:
            Their sequences, in order.

        Raises:
            ValueError: a subject is not one of the stream's, or (``atomic``
                on JetStream) more than 1000 messages.
            DurableError: (``atomic`` on JetStream) the server refused the
                batch (nothing of it stored), or is older than 2.12.

        Cancellation: all or none of them may have been stored (without
        ``atomic`` on JetStream: any of them).
        """
        if _tracing.tracer is not None:
            entries = [_entry(m) for m in messages]
            return await self._traced_publish(self.name, entries, atomic) if entries else []
        items = [self._item(*_entry(m)) for m in messages]
        if not items:
            return []
        seqs = await self._store_publish(items, atomic)
        self._streams._notify(self.name)
        return seqs

    async def consumer(
        self,
        name: str,
        *,
        filter: str | None = None,
        deliver: Deliver = "all",
        ack_wait: float = 30.0,
        max_deliver: int = 5,
        backoff: Backoffish | None = None,
        max_in_flight: int = 1000,
    ) -> Consumer:
        """A durable consumer: created on first use, resumed after.

        Its position lives in the store: after a restart (or in another
        process) it resumes exactly after what was acknowledged.

        Args:
            name: the consumer's durable name.
            filter: which of the stream's subjects it gets (wildcards
                allowed; default: all).
            deliver: where a new consumer starts: ``"all"`` (the oldest
                message kept), ``"new"`` (only messages published from now),
                ``("seq", n)`` (from sequence ``n``) or ``("time", t)`` (from
                the first message published at or after ``t``, seconds since
                the epoch). Ignored when the consumer exists.
            ack_wait: seconds a delivery may stay unsettled before it is
                delivered again.
            max_deliver: deliveries before the message moves to the
                consumer's dead letters (finite; at least 1).
            backoff: extra delay before each redelivery, after a nak without
                a delay and after an ack wait ran out: a
                ``supervision.Backoff`` (any object with ``delay(attempt)``)
                or a list of seconds (the last repeats). Stored with the
                consumer (a ``Backoff`` as the delays it gives now) for
                handles opened without one.
            max_in_flight: deliveries this handle holds unsettled at most.

        Returns:
            The :class:`Consumer`.

        Raises:
            ValueError: a bad value, an unknown ``deliver``, a ``filter``
                outside the stream's subjects, a different ``filter`` than the
                existing consumer's, or (workqueue) one overlapping another
                consumer's.
            StreamNotFound: the stream was deleted.

        Cancellation: the consumer may or may not have been created.
        """
        from ._consumer import Consumer, check_consumer, delays

        flt, start, backoff = check_consumer(
            self, name, filter, deliver, ack_wait, max_deliver, backoff, max_in_flight
        )
        store = self._streams.store
        current = await store.get_stream(self.name)
        if current is None:
            raise StreamNotFound(
                f"stream {self.name!r} does not exist (deleted?): create it with "
                f"system.streams.create({self.name!r}, subjects=[...])"
            )
        retention = current["retention"]  # as it is now, not as this handle saw it
        for _cid, other, other_filter, _cfg in await store.consumers(self.name):
            if other == name:
                if other_filter != flt:
                    raise ValueError(
                        f"consumer {name!r} of stream {self.name!r} has filter "
                        f"{other_filter!r}, not {flt!r}: delete it first "
                        f"(await consumer.delete()) or use another name"
                    )
            elif retention == "workqueue" and patterns_overlap(flt, other_filter):
                raise ValueError(
                    f"work-queue stream {self.name!r}: filter {flt!r} overlaps consumer "
                    f"{other!r}'s {other_filter!r}; each message goes to one consumer here"
                )
        config: dict[str, Any] = {"ack_wait": ack_wait, "max_deliver": max_deliver}
        if backoff is not None:
            # Stored for handles opened without one (a Push): a Backoff as
            # the delays it gives now.
            config["backoff"] = delays(backoff, max_deliver)
        cid, flt, _created = await store.put_consumer(self.name, name, flt, config, start)
        return Consumer(self, cid, name, flt, ack_wait, max_deliver, backoff, max_in_flight)

    async def open_consumer(
        self,
        name: str,
        *,
        backoff: Backoffish | None = None,
        max_in_flight: int = 1000,
    ) -> Consumer:
        """A handle on a consumer created before (here or by another process),
        with the ``filter``, ``ack_wait`` and ``max_deliver`` it was created with.

        Args:
            name: the consumer's durable name.
            backoff: as for :meth:`consumer`; None: the one stored with the
                consumer, if any.
            max_in_flight: as for :meth:`consumer`.

        Raises:
            ConsumerNotFound: there is no such consumer: create it with
                :meth:`consumer`.

        Cancellation: nothing to undo.
        """
        from ._consumer import Consumer, check_consumer
        from ._errors import ConsumerNotFound

        for cid, other, flt, config in await self._streams.store.consumers(self.name):
            if other == name:
                if backoff is None:
                    backoff = config.get("backoff")
                check_consumer(
                    self,
                    name,
                    flt,
                    "new",
                    config["ack_wait"],
                    config["max_deliver"],
                    backoff,
                    max_in_flight,
                )
                return Consumer(
                    self,
                    cid,
                    name,
                    flt,
                    config["ack_wait"],
                    config["max_deliver"],
                    backoff,
                    max_in_flight,
                )
        raise ConsumerNotFound(
            f"stream {self.name!r} has no consumer {name!r}: create it first with "
            f"stream.consumer({name!r}, ...)"
        )

    def dead_letters(self, consumer: str) -> DeadLetters:
        """The dead-letter queue of one consumer of this stream.

        Examples:
            >>> async def main(orders):  # doctest: +SKIP
            ...     dlq = orders.dead_letters("billing")
            ...     for entry in await dlq.browse():
            ...         print(entry.seq, entry.deliveries, entry.last_error)
        """
        from ._dlq import DeadLetters

        return DeadLetters(self, consumer)

    async def info(self) -> StreamInfo:
        """Message and byte counts, and the last sequence given out.

        Raises:
            StreamNotFound: the stream was deleted.

        Cancellation: nothing to undo.
        """
        config = await self._streams.store.get_stream(self.name)
        if config is None:
            raise StreamNotFound(f"stream {self.name!r} does not exist (deleted?)")
        last_seq, msgs, nbytes = config["_stats"]
        return StreamInfo(self.name, msgs, nbytes, last_seq)


def _entry(m: object) -> tuple[str, Any, str | None]:
    # One of publish_many's messages: (subject, message[, msg_id]).
    if not isinstance(m, (tuple, list)) or len(m) not in (2, 3):
        raise TypeError(
            f"publish_many takes (subject, message) or (subject, message, msg_id) tuples, got {m!r}"
        )
    return (m[0], m[1], m[2] if len(m) == 3 else None)
