"""What a durable store does for streams: the protocol, and the SQLite store.

The streams layer (``system.streams``, :class:`Stream`, :class:`Consumer`)
speaks only :class:`Store`; :class:`SQLiteStore` implements it on one SQLite
file. A store for a server (JetStream) implements the same methods.

# Invariants:
# - The connection is used only from the store's one worker thread
#   (``_thread``), one call at a time. ``_lock`` is held by a task in
#   ``transaction()`` (and while opening and closing); a call queues only
#   while it is free, so it runs in a transaction of its own, or inside the
#   transaction the task that holds ``_lock`` opened.
# - Calls queued next to each other run as one batch (group commit): one
#   ``BEGIN IMMEDIATE`` ... ``COMMIT`` for the batch, each call returning only
#   after that commit, with the file's ``synchronous`` setting. If anything
#   in a batch fails, the batch is rolled back and each call runs again
#   alone, in its own transaction, so a call's outcome (its result or its
#   error) is the one it would have had alone, and a failure reaches only
#   the call it belongs to.
# - At ``NORMAL`` a commit writes to the OS, not the disk, so while the
#   worker is idle and no transaction holds ``_lock``, small calls (``_small``:
#   publishes, claims and settles of up to ``_INLINE_MOST`` messages) run on
#   the event loop's thread through a second connection (``_inline``): the
#   calls made during one loop turn (``_forming``, up to ``MAX_BATCH``) are
#   one batch, run by the first of them after that turn. ``_inline`` never
#   waits for a lock: what finds the file locked (another process) was
#   rolled back and goes to the worker. The connections are used one at a
#   time (the worker is idle while ``_inline`` runs); ``_inline`` never
#   checkpoints: the worker does, in the background, every
#   ``CHECKPOINT_EVERY`` inline batches (or ``CHECKPOINT_ROWS`` rows). An
#   inline batch holds ``_writing`` while it runs, and so does the
#   checkpoint's last pass: the calls made meanwhile go to the worker,
#   behind it, so it completes and the next write starts the log over.
# - At ``FULL`` only claims run there (``_inline`` is at ``NORMAL`` then):
#   a claim changes only a delivery's count and deadline (and may move a
#   message that ran out of deliveries to the dead letters, or bring back
#   deliveries parked until due, _sql.UNPARK), and losing it to a power
#   loss only means that delivery is made (or brought back) again. The log is one
#   file written in order: the worker's next synced commit (a publish, an
#   ack) makes every claim before it durable too.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import anyio
import anyio.lowlevel

from .._backend import asyncio_loop
from .._deadlines import now as _loop_now
from .._trio import trio
from . import _sql
from ._errors import DurableError, StreamNotFound
from ._thread import MAX_BATCH, Job, StoreThread, outcome, run_group, settle

T = TypeVar("T")

#: The calls that run on the loop's thread (at NORMAL), as long as they are
#: small: what they touch grows with the messages they name, not with the
#: stream (creating a consumer, a reset or a stream's deletion may go over
#: every message, and go to the worker).
_INLINE = frozenset(
    {_sql.publish, _sql.claim, _sql.ack, _sql.nak, _sql.release, _sql.progress, _sql.term}
)
#: At FULL only claims do: their commit does not wait for the disk (see the
#: module's notes); publishes and settles are synced by the worker.
_INLINE_AT_FULL = frozenset({_sql.claim})
#: The most messages an inline call names.
_INLINE_MOST = 256


def _small(fn: Callable[..., Any], args: tuple[Any, ...], inline: frozenset[Any]) -> bool:
    # publish (items), claim (n) and ack (tokens) name their messages in
    # args[2], release in args[1]; the others name one.
    if fn not in inline:
        return False
    if fn is _sql.publish or fn is _sql.ack:
        return len(args[2]) <= _INLINE_MOST
    if fn is _sql.claim:
        return bool(args[2] <= _INLINE_MOST)
    if fn is _sql.release:
        return len(args[1]) <= _INLINE_MOST
    return True


#: The worker checkpoints after this many inline batches (a few pages each)
#: or rows written, whichever comes first (SQLite by itself: 1,000 pages).
CHECKPOINT_EVERY = 256
CHECKPOINT_ROWS = 20_000
#: Pages of log (SQLite's own checkpoint size) past which the worker's
#: checkpoint waits for other processes' readers and writers, at most
#: RESTART_WAIT seconds, so that the log starts over (see _checkpoint).
LOG_LIMIT = 1000
RESTART_WAIT = 0.5

Synchronous = Literal["FULL", "NORMAL"]

#: A claimed delivery: (seq, subject, data, time, deliveries, first delivered at).
Row = tuple[int, str, bytes, float, int, float]

#: What a store calls a consumer: opaque to the streams layer (the SQLite
#: store's row id, the JetStream store's ``(stream, name)``).
ConsumerId = Any


class StoreTransaction(Protocol):
    """The operations a store runs inside one of its transactions."""

    async def publish(
        self, stream: str, items: Sequence[tuple[str, bytes, str | None]]
    ) -> list[int]:
        """Append messages; return their sequences (see :meth:`Store.publish`)."""
        ...

    async def ack(
        self, stream: str, cid: ConsumerId, tokens: Sequence[tuple[int, int]]
    ) -> list[bool]:
        """Settle deliveries (see :meth:`Store.ack`)."""
        ...

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run the application's own statement in the same transaction."""
        ...


@runtime_checkable
class Store(Protocol):
    """What :class:`Streams` needs from a store (:class:`SQLiteStore` and
    :class:`JetStreamStore` implement it).

    Every method that changes state returns only once the change is durable.
    A consumer is named by the id the store gave it (``put_consumer``).
    ``tokens`` name deliveries as ``(seq, deliveries)``: a settle for an older
    delivery of the same message is dropped.

    Examples:
        >>> isinstance(SQLiteStore("app.db"), Store)
        True
    """

    def clock(self) -> float:
        """The store's time in seconds (comparable across processes)."""
        ...

    async def aclose(self) -> None:
        """Release the store's resources (it reopens on next use)."""
        ...

    async def get_stream(self, name: str) -> dict[str, Any] | None:
        """A stream's config, or None."""
        ...

    async def list_streams(self) -> list[dict[str, Any]]:
        """Every stream's config, by name."""
        ...

    async def stream_instance(self, name: str) -> str | None:
        """What tells this stream from others of its name (in other stores,
        or deleted and created again), or None if it does not exist."""
        ...

    async def put_stream(self, name: str, config: dict[str, Any]) -> None:
        """Create a stream or replace its config."""
        ...

    async def delete_stream(self, name: str) -> bool:
        """Delete a stream with its messages, consumers and dead letters."""
        ...

    async def publish(
        self, stream: str, items: Sequence[tuple[str, bytes, str | None]]
    ) -> list[int]:
        """Append ``(subject, data, msg_id)`` items in one transaction."""
        ...

    async def put_consumer(
        self,
        stream: str,
        name: str,
        flt: str,
        config: dict[str, Any],
        start: tuple[str, float] | None,
    ) -> tuple[ConsumerId, str, bool]:
        """Create or update a durable consumer: (id, filter, created)."""
        ...

    async def consumers(self, stream: str) -> list[tuple[ConsumerId, str, str, dict[str, Any]]]:
        """The consumers of a stream: (id, name, filter, config)."""
        ...

    async def delete_consumer(self, stream: str, cid: ConsumerId) -> None:
        """Delete a consumer with its pending messages and dead letters."""
        ...

    async def claim(
        self,
        stream: str,
        cid: ConsumerId,
        n: int,
        ack_wait: float,
        delays: Sequence[float],
        max_deliver: int,
        wait: float = 0.0,
    ) -> tuple[list[Row], float | None]:
        """Claim up to ``n`` deliverable messages, moving the exhausted ones to
        the dead letters; also when the next one becomes deliverable (None:
        not known, or nothing pending).

        A store whose server can hold a pull open (JetStream) waits up to
        ``wait`` seconds there for the first message; one that cannot
        (SQLite) answers at once and the streams layer waits on its signals.

        Cancellation: claims nothing (what it had claimed is given back).
        """
        ...

    async def ack(
        self, stream: str, cid: ConsumerId, tokens: Sequence[tuple[int, int]]
    ) -> list[bool]:
        """Settle deliveries; False for each stale one."""
        ...

    async def nak(
        self,
        stream: str,
        cid: ConsumerId,
        token: tuple[int, int],
        delay: float,
        error: str | None,
        max_deliver: int,
    ) -> str:
        """Redeliver after ``delay``, or move to the dead letters after the last
        delivery: "nak", "dead" or "stale"."""
        ...

    async def release(self, cid: ConsumerId, tokens: Sequence[tuple[int, int]]) -> None:
        """Give back claimed deliveries that never reached the user (uncounted)."""
        ...

    async def progress(self, cid: ConsumerId, token: tuple[int, int], ack_wait: float) -> bool:
        """Push a delivery's redelivery ``ack_wait`` seconds on."""
        ...

    async def term(self, stream: str, cid: ConsumerId, token: tuple[int, int], why: str) -> bool:
        """Stop redelivering: move to the dead letters with ``why``."""
        ...

    async def reset(self, stream: str, cid: ConsumerId, flt: str, to_seq: int) -> None:
        """Rewind or skip: pending becomes every matching message from ``to_seq``."""
        ...

    async def consumer_info(self, cid: ConsumerId) -> tuple[int, int, int, int]:
        """(pending, in flight, lowest pending seq, dead letters)."""
        ...

    async def dead_letters(self, cid: ConsumerId, since: int, until: int) -> list[tuple[Any, ...]]:
        """Dead-letter rows of a consumer in sequence order."""
        ...

    async def requeue(self, stream: str, cid: ConsumerId, seq: int) -> bool:
        """Move a dead letter back to pending with its count reset."""
        ...

    async def remove_dead(self, cid: ConsumerId, seq: int) -> bool:
        """Delete a dead letter."""
        ...

    def transaction(self) -> Any:
        """An async context manager giving a :class:`StoreTransaction`."""
        ...


async def _one_turn() -> None:
    # Let the tasks ready in this turn of the loop run. Never raises on trio
    # (a cancellation waits for the next checkpoint); on asyncio a
    # cancellation delivered here is raised, which ``_lead`` keeps.
    if asyncio_loop() is not None:
        await asyncio.sleep(0)
    else:
        await trio.lowlevel.cancel_shielded_checkpoint()


#: A consumer's backoff delays as the claim's SQL reads them (JSON), by the
#: delays: the same few schedules come with every claim.
_DELAYS_JSON: dict[tuple[float, ...], str] = {}


def _delays_json(delays: Sequence[float]) -> str:
    key = tuple(delays)
    text = _DELAYS_JSON.get(key)
    if text is None:
        if len(_DELAYS_JSON) >= 256:
            _DELAYS_JSON.clear()
        text = _DELAYS_JSON[key] = json.dumps(key)
    return text


def _checkpoint(conn: sqlite3.Connection, writing: threading.Lock) -> None:
    # On the worker: what the inline connection wrote goes into the file.
    # The log starts over at the first write after a checkpoint that left
    # nothing in it. The first pass copies the bulk while the loop goes on
    # writing; the second holds the loop's writes off (``writing``) and
    # copies what they added meanwhile, so that it finishes (a checkpoint
    # racing the loop never did, and the log grew without end). Another
    # store (process) writing to the file, or reading it in a long
    # transaction, keeps even that from emptying the log: when it is past
    # LOG_LIMIT pages, or another checkpoint was running, a RESTART holds
    # their writes off too (waiting at most RESTART_WAIT for them).
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    with writing:
        busy, log, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if busy or log > LOG_LIMIT:
            (timeout,) = conn.execute("PRAGMA busy_timeout").fetchone()
            conn.execute(f"PRAGMA busy_timeout = {int(RESTART_WAIT * 1000)}")
            try:
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                conn.execute(f"PRAGMA busy_timeout = {timeout}")


def _in_txn(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # some errors (a full disk) end it themselves
            conn.execute("ROLLBACK")
        raise
    return result


def _run_together(conn: sqlite3.Connection, batch: Sequence[Job]) -> None:
    # Inside the batch's transaction. Publishes to one stream next to each
    # other are one publish of all their items (two statements for all, not
    # two each: the worker's time per message is most of what 16 concurrent
    # publishers cost, benchmarks.durable); the same as publishing them in
    # turn (sequences in order, dedup and limits as if one at a time).
    i, end = 0, len(batch)
    while i < end:
        job = batch[i]
        if job.fn is _sql.publish:
            stream = job.args[1]
            j = i + 1
            while j < end and batch[j].fn is _sql.publish and batch[j].args[1] == stream:
                j += 1
            if j - i > 1:
                group = batch[i:j]
                items = [item for each in group for item in each.args[2]]
                now = max(each.args[3] for each in group)
                seqs = _sql.publish(conn, job.args[0], stream, items, now)
                k = 0
                for each in group:
                    n = len(each.args[2])
                    each.result = seqs[k : k + n]
                    k += n
                i = j
                continue
        job.result = job.fn(conn, *job.args)
        i += 1


class _Committer:
    """Runs a batch of the store's calls on the worker thread (group commit)."""

    __slots__ = ("batches", "cache", "calls", "conn", "retries")

    def __init__(self, conn: sqlite3.Connection, cache: _sql.PublishCache) -> None:
        self.conn = conn
        self.cache = cache
        # What it did (``benchmarks.durable`` and the tests read them): batches
        # run, calls in them, and batches rolled back to run each call alone.
        self.batches = self.calls = self.retries = 0

    def __call__(self, batch: Sequence[Job]) -> None:
        conn = self.conn
        self.batches += 1
        self.calls += len(batch)
        if len(batch) == 1:
            job = batch[0]
            try:
                job.result = _in_txn(conn, job.fn, job.args)
            except BaseException as error:
                job.error = error
                self.cache.entries.clear()  # it may hold what was rolled back
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            _run_together(conn, batch)
            conn.execute("COMMIT")
        except BaseException:
            # Each alone, in order: the outcome each would have had.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.cache.entries.clear()
            self.retries += 1
            for job in batch:
                job.result = None
                try:
                    job.result = _in_txn(conn, job.fn, job.args)
                except BaseException as error:
                    job.error = error
                    self.cache.entries.clear()


class SQLiteStore:
    """Durable streams in one SQLite file: embedded, no server.

    The file is opened on first use (created if missing) in WAL mode and
    driven from one worker thread of the store's own, so the event loop never
    waits on the disk and both asyncio and trio work. Other processes may open the same file:
    SQLite's locking (``BEGIN IMMEDIATE``, ``busy_timeout``) orders them, and a
    consumer's state lives in the file, so any of them can continue where
    another stopped (or was killed).

    Messages are stored pickled: the file is trusted like your own code (do
    not open a file others can write to).

    Args:
        path: the database file; an application's own tables may share it
            (the store's tables are prefixed ``durable_``).
        synchronous: ``"FULL"`` (default): a publish or ack that returned
            survives a power loss. ``"NORMAL"``: several times faster per
            commit, survives a crash of the process but may lose the last
            commits on a power loss or OS crash.
        busy_timeout: seconds a statement waits for another process's lock.

    Raises:
        ValueError: ``synchronous`` is not ``"FULL"`` or ``"NORMAL"``.

    Examples:
        >>> store = SQLiteStore("orders.db", synchronous="NORMAL")
        >>> store.synchronous
        'NORMAL'
    """

    def __init__(
        self, path: str | Any, *, synchronous: Synchronous = "FULL", busy_timeout: float = 10.0
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(
                f"synchronous must be 'FULL' (survives power loss) or 'NORMAL' (survives "
                f"a process crash), got {synchronous!r}"
            )
        if (
            isinstance(busy_timeout, bool)
            or not isinstance(busy_timeout, (int, float))
            or not 0 <= busy_timeout < math.inf
        ):
            raise ValueError(
                f"busy_timeout must be finite seconds >= 0 (how long a write waits for "
                f"another process's), got {busy_timeout!r}"
            )
        self.path = str(path)
        self.synchronous: Synchronous = synchronous
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock: anyio.Lock | None = None
        self._thread: StoreThread | None = None
        self._offset = 0.0
        self._cache = _sql.PublishCache()
        self._committer: _Committer | None = None
        self._tx_task: object | None = None
        self._inline: _Committer | None = None  # for the event loop
        self._inline_calls = _INLINE if synchronous == "NORMAL" else _INLINE_AT_FULL
        self._forming: list[Job] | None = None  # this loop turn's inline batch
        self._inline_batches = self._inline_rows = 0  # since the last checkpoint
        #: Held by an inline batch while it runs, and by a checkpoint's last pass.
        self._writing = threading.Lock()
        self._checkpointing = False  # one is queued or running on the worker

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r} synchronous={self.synchronous}>"

    def clock(self) -> float:
        """Seconds since the epoch, advanced by the event loop's clock.

        Wall-clock based so that every process opening the file agrees; it
        moves with the loop's clock, so a virtual clock drives redelivery
        times in tests.
        """
        return _loop_now() + self._offset

    async def _open(self) -> sqlite3.Connection:
        if self._lock is None:
            self._lock = anyio.Lock(fast_acquire=True)
        async with self._lock:
            if self._conn is None:
                self._offset = time.time() - _loop_now()
                if self._thread is None:
                    self._thread = StoreThread(f"actors.durable {self.path}")
                conn = await self._thread.call(
                    _sql.open_connection, self.path, self.synchronous, self.busy_timeout
                )
                self._cache = _sql.PublishCache()
                self._committer = _Committer(conn, self._cache)
                # NORMAL at FULL too: what it runs there (claims) needs no sync.
                inline = await self._thread.call(
                    functools.partial(_sql.open_connection, inline=True),
                    self.path,
                    "NORMAL",
                    self.busy_timeout,
                )
                self._inline = _Committer(inline, self._cache)
                self._conn = conn
        return self._conn

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        # The path of every publish, claim and ack (benchmarks.durable).
        job, cancelled = await self._run(fn, args)
        if cancelled is not None:
            raise cancelled
        return outcome(job)  # type: ignore[no-any-return]

    async def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Job, Any]:
        # Run fn(conn, *args) in a transaction; return its finished job and
        # the cancellation that came meanwhile (for the caller to raise).
        # No lock is taken unless a transaction (or an open or close) holds it.
        if self._conn is None:
            await self._open()
        lock = self._lock
        assert lock is not None
        if lock.locked():
            if self._tx_task is not None and self._tx_task == anyio.get_current_task().id:
                raise DurableError(
                    "this task is inside streams.transaction(): publish and ack through the "
                    "transaction (tx.publish, tx.ack), or leave it first (transaction blocks "
                    "do not nest)"
                )
            # Queued after the transaction (nothing runs between this and the queueing).
            await self._after_transaction()
        thread, committer = self._thread, self._committer
        assert thread is not None and committer is not None
        job = Job(committer, fn, args)
        if self._inline is not None and _small(fn, args, self._inline_calls):
            forming = self._forming
            if forming is not None:
                if len(forming) < MAX_BATCH:  # joins this turn's inline batch
                    forming.append(job)
                    return job, await settle(job)
            elif thread.idle():
                return job, await self._lead(job)
        thread.submit(job)
        return job, await settle(job)

    async def _lead(self, job: Job) -> BaseException | None:
        # The first call of a loop turn: the calls made during that turn join
        # it; then they run as one batch on the loop's thread, or go to the
        # worker if the file or the worker is taken by then.
        batch = self._forming = [job]
        cancelled: BaseException | None = None
        try:
            await _one_turn()
        except BaseException as error:  # kept until the batch has run
            cancelled = error
        self._forming = None
        thread, lock, inline = self._thread, self._lock, self._inline
        if (
            inline is None
            or thread is None
            or not thread.idle()
            or (lock and lock.locked())
            or not self._writing.acquire(blocking=False)  # a checkpoint's last pass
        ):
            await self._hand_over(batch)
        else:
            try:
                busy = self._run_inline(inline, batch)
            finally:
                self._writing.release()
            if busy:  # rolled back: the worker waits for the lock
                await self._hand_over(busy)
        later = await settle(job)  # at once unless handed over
        return cancelled if cancelled is not None else later

    def _run_inline(self, inline: _Committer, batch: list[Job]) -> list[Job]:
        # Run the batch on the loop's thread; wake the calls that ran and
        # return those that found the file locked (nothing of them was kept).
        changes = inline.conn.total_changes
        run_group(inline, batch)
        busy = []
        for each in batch:
            if _sql.is_busy(each.error):
                each.error = None
                busy.append(each)
            else:
                each.done.set()
        self._inline_batches += 1
        self._inline_rows += inline.conn.total_changes - changes
        if (
            self._inline_batches >= CHECKPOINT_EVERY or self._inline_rows >= CHECKPOINT_ROWS
        ) and not self._checkpointing:  # one at a time: a slow worker is not sent more
            self._inline_batches = self._inline_rows = 0
            if self._thread is not None and self._conn is not None:
                self._checkpointing = True
                self._thread.background(functools.partial(self._checkpoint_then_next, self._conn))
        return busy

    def _checkpoint_then_next(self, conn: sqlite3.Connection) -> None:
        # On the worker: _checkpoint, then the loop may ask for the next one.
        try:
            _checkpoint(conn, self._writing)
        finally:
            self._checkpointing = False

    async def _after_transaction(self) -> None:
        # Once no transaction (or open, or close) holds the lock, with the
        # file open.
        lock = self._lock
        if lock is not None and lock.locked():
            async with lock:
                pass
        if self._conn is None:
            await self._open()

    async def _hand_over(self, jobs: list[Job]) -> None:
        # Queue an inline batch on the worker, in order, once no transaction
        # holds the lock (shielded: the other calls of the batch wait on it).
        with anyio.CancelScope(shield=True):
            await self._after_transaction()
        thread, committer = self._thread, self._committer
        assert thread is not None and committer is not None
        for job in jobs:
            job.group = committer
            thread.submit(job)

    async def aclose(self) -> None:
        """Close the file (the store opens it again on next use).

        Cancellation: shielded; the connection is closed either way.
        """
        if self._conn is None or self._lock is None:
            return
        with anyio.CancelScope(shield=True):
            async with self._lock:
                conn, self._conn = self._conn, None
                thread, self._thread = self._thread, None
                inline, self._inline = self._inline, None
                self._committer = None
                if thread is not None:
                    if inline is not None:
                        await thread.call(inline.conn.close)
                    if conn is not None:
                        await thread.call(conn.close)  # the last: it checkpoints
                    thread.stop()
        self._lock = None

    async def __aenter__(self) -> SQLiteStore:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- streams ---------------------------------------------------------------

    async def get_stream(self, name: str) -> dict[str, Any] | None:
        row = await self._call(_sql.stream_row, name)
        return None if row is None else dict(json.loads(row[0]), _stats=row[1:4])

    async def list_streams(self) -> list[dict[str, Any]]:
        return [json.loads(config) for _name, config in await self._call(_sql.streams)]

    async def stream_instance(self, name: str) -> str | None:
        return await self._call(_sql.stream_instance, name)

    async def put_stream(self, name: str, config: dict[str, Any]) -> None:
        await self._call(_sql.put_stream, name, json.dumps(config))

    async def delete_stream(self, name: str) -> bool:
        return await self._call(_sql.delete_stream, name)

    async def publish(
        self, stream: str, items: Sequence[tuple[str, bytes, str | None]]
    ) -> list[int]:
        try:
            return await self._call(_sql.publish, self._cache, stream, items, self.clock())
        except LookupError:
            raise StreamNotFound(
                f"stream {stream!r} is not in {self.path!r} (deleted?): create it with "
                f"system.streams.create({stream!r}, subjects=[...])"
            ) from None

    # -- consumers -------------------------------------------------------------

    async def put_consumer(
        self,
        stream: str,
        name: str,
        flt: str,
        config: dict[str, Any],
        start: tuple[str, float] | None,
    ) -> tuple[int, str, bool]:
        return await self._call(_sql.put_consumer, stream, name, flt, json.dumps(config), start)

    async def consumers(self, stream: str) -> list[tuple[int, str, str, dict[str, Any]]]:
        rows = await self._call(_sql.consumers_of, stream)
        return [(cid, name, flt, json.loads(cfg)) for cid, name, flt, cfg in rows]

    async def delete_consumer(self, stream: str, cid: ConsumerId) -> None:
        await self._call(_sql.delete_consumer, stream, cid)

    async def claim(
        self,
        stream: str,
        cid: ConsumerId,
        n: int,
        ack_wait: float,
        delays: Sequence[float],
        max_deliver: int,
        wait: float = 0.0,
    ) -> tuple[list[Row], float | None]:
        job, cancelled = await self._run(
            _sql.claim,
            (
                stream,
                cid,
                n,
                self.clock(),
                ack_wait,
                _delays_json(delays),
                max(len(delays) - 1, 0),
                max_deliver,
            ),
        )
        rows, next_vt = outcome(job)
        try:
            if cancelled is not None:
                raise cancelled
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            if rows:  # claimed, never seen: given back uncounted
                with anyio.CancelScope(shield=True):
                    await self._call(_sql.release, cid, [(r[0], r[4]) for r in rows])
            raise
        return rows, next_vt

    async def ack(
        self, stream: str, cid: ConsumerId, tokens: Sequence[tuple[int, int]]
    ) -> list[bool]:
        return await self._call(_sql.ack, stream, cid, tokens)

    async def nak(
        self,
        stream: str,
        cid: ConsumerId,
        token: tuple[int, int],
        delay: float,
        error: str | None,
        max_deliver: int,
    ) -> str:
        now = self.clock()
        return await self._call(
            _sql.nak,
            stream,
            cid,
            token[0],
            token[1],
            now + delay,
            error,
            max_deliver,
            now,
        )

    async def release(self, cid: ConsumerId, tokens: Sequence[tuple[int, int]]) -> None:
        await self._call(_sql.release, cid, tokens)

    async def progress(self, cid: ConsumerId, token: tuple[int, int], ack_wait: float) -> bool:
        return await self._call(_sql.progress, cid, token[0], token[1], self.clock() + ack_wait)

    async def term(self, stream: str, cid: ConsumerId, token: tuple[int, int], why: str) -> bool:
        return await self._call(_sql.term, stream, cid, token[0], token[1], why, self.clock())

    async def reset(self, stream: str, cid: ConsumerId, flt: str, to_seq: int) -> None:
        await self._call(_sql.reset, stream, cid, flt, to_seq)

    async def consumer_info(self, cid: ConsumerId) -> tuple[int, int, int, int]:
        return await self._call(_sql.consumer_info, cid, self.clock())

    async def dead_letters(self, cid: ConsumerId, since: int, until: int) -> list[tuple[Any, ...]]:
        return await self._call(_sql.dead_letters, cid, since, until)

    async def requeue(self, stream: str, cid: ConsumerId, seq: int) -> bool:
        return await self._call(_sql.requeue, stream, cid, seq)

    async def remove_dead(self, cid: ConsumerId, seq: int) -> bool:
        return await self._call(_sql.remove_dead, cid, seq)

    # -- transactions ----------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SQLiteTransaction]:
        """One SQLite transaction for the block (see ``streams.transaction()``).

        Cancellation: a cancelled block rolls back (shielded) and nothing of
        it is kept.
        """
        conn = self._conn if self._conn is not None else await self._open()
        assert self._lock is not None
        task = anyio.get_current_task().id
        if self._tx_task == task:
            raise DurableError("streams.transaction() blocks do not nest")
        thread = self._thread
        assert thread is not None
        async with self._lock:
            await thread.call(conn.execute, "BEGIN IMMEDIATE")
            self._tx_task = task
            tx = SQLiteTransaction(self, conn)
            try:
                yield tx
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await thread.call(conn.execute, "ROLLBACK")
                raise
            else:
                with anyio.CancelScope(shield=True):
                    try:
                        await thread.call(conn.execute, "COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            await thread.call(conn.execute, "ROLLBACK")
                        raise
            finally:
                self._tx_task = None
                tx.closed = True


class SQLiteTransaction:
    """The store side of ``streams.transaction()`` (one SQLite transaction)."""

    def __init__(self, store: SQLiteStore, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn
        self.closed = False

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.closed:
            raise DurableError("this transaction has ended: open a new streams.transaction()")
        thread = self._store._thread
        assert thread is not None
        return await thread.call(fn, self._conn, *args)

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._run(_execute, sql, parameters)

    async def publish(
        self, stream: str, items: Sequence[tuple[str, bytes, str | None]]
    ) -> list[int]:
        store = self._store
        try:
            return await self._run(_sql.publish, store._cache, stream, items, store.clock())
        except LookupError:
            raise StreamNotFound(f"stream {stream!r} is not in {store.path!r}") from None

    async def ack(
        self, stream: str, cid: ConsumerId, tokens: Sequence[tuple[int, int]]
    ) -> list[bool]:
        return await self._run(_sql.ack, stream, cid, tokens)


def _execute(
    conn: sqlite3.Connection, sql: str, parameters: Sequence[Any]
) -> list[tuple[Any, ...]]:
    return conn.execute(sql, parameters).fetchall()
