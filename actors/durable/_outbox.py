"""The transactional outbox: write your database and publish, exactly once.

A transaction on the SQLite store commits your own SQL and a publish to an
outbox stream together (``streams.transaction()``); :func:`relay` forwards
the outbox to the streams of another store (JetStream) under message ids
derived from the outbox's sequences, and acks the outbox after the target
acknowledged. A crash between the two delivers the outbox message again, and
its second publish carries the same id: the target stream keeps one copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ._consumer import Consumer
    from ._streams import Stream, Streams


async def relay(
    outbox: Consumer, to: Streams, *, batch: int = 100, expires: float = 5.0
) -> NoReturn:
    """Forward every message of ``outbox`` to the stream of ``to`` that takes
    its subject, exactly once; runs until cancelled.

    Each message is published with the message id ``<outbox stream>.<its
    instance>:<seq>`` (the instance tells this outbox from one of the same
    name in another file, or deleted and created again) and acked on the
    outbox once the target acknowledged it (in batches of
    up to ``batch``, in order). A crash (or a failed publish) before the ack
    delivers it again after the outbox consumer's ack wait, and publishing
    it again stores nothing new, as long as that happens within the target
    stream's ``dedup_window``: keep the outbox consumer's ``ack_wait`` (and
    your restart time) well below it.

    Args:
        outbox: a consumer of the outbox stream (in the SQLite store).
        to: the streams of the target store (``durable.Streams(store)``).
        batch: messages forwarded per round.
        expires: seconds one fetch waits for the outbox.

    Raises:
        StreamNotFound: no stream of ``to`` takes a message's subject (the
            message stays in the outbox).

    Cancellation: what was published and not yet acked is published again
    (under the same ids) by the next relay.

    Examples:
        >>> async def main(system, jetstream):  # doctest: +SKIP
        ...     outbox = await system.streams.create("OUTBOX", subjects=["orders.>"])
        ...     remote = durable.Streams(jetstream)
        ...     await remote.create("ORDERS", subjects=["orders.>"], dedup_window=600)
        ...     async with system.streams.transaction() as tx:
        ...         await tx.execute("INSERT INTO orders VALUES (?)", (7,))
        ...         await tx.publish("orders.created", 7)
        ...     await relay(await outbox.consumer("relay", ack_wait=30), remote)
    """
    name = outbox.stream.name
    instance = await outbox.stream._streams.store.stream_instance(name)
    # Two outboxes of one name (two services' files) sent the same ids: the
    # target kept the first one's messages and dropped the other's.
    prefix = name if instance is None else f"{name}.{instance}"
    while True:
        messages = await outbox.fetch(batch, expires=expires)
        if not messages:
            continue
        # Consecutive runs of one target stream, so the order holds.
        runs: list[tuple[Stream, list[tuple[str, object, str]]]] = []
        for m in messages:
            target = await to._route(m.subject)
            if not runs or runs[-1][0] is not target:
                runs.append((target, []))
            runs[-1][1].append((m.subject, m.data, f"{prefix}:{m.seq}"))
        for target, items in runs:
            await target.publish_many(items)
        await outbox.ack(messages)
