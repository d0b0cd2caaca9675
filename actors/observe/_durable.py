"""The durable consumers of a system's store, for the live page and ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._snapshot import text

if TYPE_CHECKING:
    from .._system import ActorSystem

#: Streams and consumers read at most per call (the rest are counted).
MAX_STREAMS = 20
MAX_CONSUMERS = 100


async def durable_snapshot(system: ActorSystem) -> dict[str, Any] | None:
    """The durable consumers of ``system``'s store, with lag, in-flight and
    dead-letter-queue counts, or ``None`` when it has no store.

    Reads through the store (its worker thread), a few queries for each
    stream and consumer, at most :data:`MAX_STREAMS` streams and
    :data:`MAX_CONSUMERS` consumers. A store that fails to answer (closing)
    gives ``{"error": ...}`` rather than raising.

    The dict holds ``consumers``: for each, ``stream``, ``consumer``,
    ``pending`` (its lag: messages it has not settled, waiting or in
    flight), ``in_flight``, ``ack_floor``, ``last_seq`` (the stream's) and
    ``dead_letters`` (its dead-letter queue's size); ``hidden`` counts the
    streams and consumers not read.

    Cancellation: nothing to undo (a query already sent runs to its end on
    the store's thread).

    Examples:
        >>> import actors
        >>> from actors.observe import durable_snapshot
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         return await durable_snapshot(system)
        >>> print(actors.run(main))
        None
    """
    store = system._store
    if store is None:
        return None
    consumers: list[dict[str, Any]] = []
    hidden = 0
    try:
        configs = await store.list_streams()
        hidden += max(0, len(configs) - MAX_STREAMS)
        for config in configs[:MAX_STREAMS]:
            name = config["name"]
            stream = await store.get_stream(name)
            if stream is None:
                continue  # deleted meanwhile
            last_seq = stream["_stats"][0]
            for cid, consumer, _flt, _config in await store.consumers(name):
                if len(consumers) >= MAX_CONSUMERS:
                    hidden += 1
                    continue
                pending, in_flight, first, dead = await store.consumer_info(cid)
                consumers.append(
                    {
                        "stream": name,
                        "consumer": consumer,
                        "pending": pending,
                        "in_flight": in_flight,
                        "ack_floor": first - 1 if first else last_seq,
                        "last_seq": last_seq,
                        "dead_letters": dead,
                    }
                )
    except Exception as error:
        return {"consumers": consumers, "hidden": hidden, "error": text(error)}
    return {"consumers": consumers, "hidden": hidden, "error": None}
