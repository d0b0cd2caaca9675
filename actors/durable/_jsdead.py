"""Dead letters on JetStream: entries in the stream ``DLQ_<stream>``.

The consumer writes an entry (the message, with its count, last error and
times in headers) under the id ``<stream>:<seq>:<consumer>`` before it
terminates the original, so a retry after a crash in between stores nothing
new. Requeue publishes the entry's message to the consumer's own subject
``_RQ.<stream>.<consumer>`` and removes the entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._nats import JetStreamError
from .._nats._jetstream import MSG_ID
from ._errors import DurableError

if TYPE_CHECKING:
    from ._jetstream import JetStreamStore, _Delivery

#: The last error of a delivery whose ack wait ran out (as the SQLite store's).
TIMEOUT_ERROR = "no ack within ack_wait"
#: Headers of dead-letter entries and requeued copies.
H_SEQ, H_SUBJECT, H_TIME = "Actors-Seq", "Actors-Subject", "Actors-Time"
H_DELIVERIES, H_ERROR = "Actors-Deliveries", "Actors-Error"
H_FIRST, H_LAST, H_DEAD = "Actors-First", "Actors-Last", "Actors-Dead"


def dlq_stream(stream: str) -> str:
    """The name of the stream that keeps ``stream``'s dead letters."""
    return f"DLQ_{stream}"


def dlq_subject(stream: str, consumer: str) -> str:
    """The subject of ``consumer``'s dead-letter entries."""
    return f"_DLQ.{stream}.{consumer}"


def requeue_subject(stream: str, consumer: str) -> str:
    """The subject requeued messages of ``consumer`` are published to."""
    return f"_RQ.{stream}.{consumer}"


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


async def bury(
    store: JetStreamStore,
    cid: tuple[str, str],
    seq: int,
    delivery: _Delivery,
    deliveries: int,
    error: str | None,
    first: float,
) -> None:
    # The dead-letter entry first (deduplicated by its id), then the term:
    # a crash between them leaves the message to come back and be buried
    # again, under the same id.
    stream, consumer = cid
    msg_id = f"{stream}:{seq}:{consumer}"
    if delivery.msg_subject != delivery.subject:  # a requeued copy
        msg_id += f":{delivery.copy_seq}"
    now = store.clock()
    headers = {
        MSG_ID: msg_id,
        H_SEQ: str(seq),
        H_SUBJECT: delivery.subject,
        H_TIME: repr(delivery.time),
        H_DELIVERIES: str(deliveries),
        H_FIRST: repr(first),
        H_LAST: repr(now),
        H_DEAD: repr(now),
    }
    if error is not None:
        headers[H_ERROR] = _one_line(error)
    ack = await store._retry(
        "writing a dead letter",
        store.js.publish,
        dlq_subject(stream, consumer),
        delivery.data,
        headers=headers,
    )
    if ack.stream != dlq_stream(stream):
        raise DurableError(f"dead letters of {stream!r} went to stream {ack.stream!r}")
    body = b"+TERM " + _one_line(error or "dead").encode()
    await store._settle("a term", [delivery.reply], body)
    store._state(cid).released.pop(seq, None)


async def count(store: JetStreamStore, cid: tuple[str, str]) -> int:
    try:
        subjects = await store._retry(
            "counting dead letters",
            store.js.stream_subjects,
            dlq_stream(cid[0]),
            dlq_subject(*cid),
        )
    except JetStreamError as error:
        if error.err_code == 10059:
            return 0
        raise
    return sum(subjects.values())


async def _entries(store: JetStreamStore, cid: tuple[str, str]) -> dict[int, tuple[int, Any]]:
    # The dead-letter entries of a consumer: original seq -> (entry seq, message).
    js = store.js
    subject = dlq_subject(*cid)
    found: dict[int, tuple[int, Any]] = {}
    at = 1
    while True:
        stored = await store._retry(
            "reading dead letters", js.get_msg, dlq_stream(cid[0]), at, next_by_subject=subject
        )
        if stored is None:
            return found
        found[int(stored.headers[H_SEQ])] = (stored.seq, stored)
        at = stored.seq + 1


async def browse(
    store: JetStreamStore, cid: tuple[str, str], since: int, until: int
) -> list[tuple[Any, ...]]:
    rows = []
    for seq, (_at, stored) in sorted((await _entries(store, cid)).items()):
        if not since <= seq <= until:
            continue
        h = stored.headers
        rows.append(
            (
                seq,
                h[H_SUBJECT],
                stored.data,
                float(h[H_TIME]),
                int(h[H_DELIVERIES]),
                h.get(H_ERROR),
                float(h[H_FIRST]),
                float(h[H_LAST]),
                float(h[H_DEAD]),
            )
        )
    return rows


async def requeue(store: JetStreamStore, stream: str, cid: tuple[str, str], seq: int) -> bool:
    entry = (await _entries(store, cid)).get(seq)
    if entry is None:
        return False
    at, stored = entry
    h = stored.headers
    headers = {
        MSG_ID: f"requeue:{stream}:{seq}:{cid[1]}:{at}",
        H_SEQ: h[H_SEQ],
        H_SUBJECT: h[H_SUBJECT],
        H_TIME: h[H_TIME],
    }
    await store._retry(
        "requeueing a dead letter",
        store.js.publish,
        requeue_subject(stream, cid[1]),
        stored.data,
        headers=headers,
    )
    await remove(store, cid, seq)
    return True


async def remove(store: JetStreamStore, cid: tuple[str, str], seq: int) -> bool:
    removed = False
    subject = dlq_subject(*cid)
    at = 1
    js = store.js
    while True:
        stored = await store._retry(
            "reading dead letters", js.get_msg, dlq_stream(cid[0]), at, next_by_subject=subject
        )
        if stored is None:
            return removed
        if int(stored.headers[H_SEQ]) == seq:
            removed = await js.delete_msg(dlq_stream(cid[0]), stored.seq) or removed
        at = stored.seq + 1


# -- transactions ------------------------------------------------------------------
