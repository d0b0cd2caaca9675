"""The SQLite store itself: its settings, the claim's query plan, and group commit."""

from __future__ import annotations

import contextlib
import pickle
import sqlite3
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import pytest
from durable_kit import opened, parked

import actors
from actors import durable
from actors.durable import _sql

pytestmark = pytest.mark.anyio


def _plan(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> str:
    return " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))


def test_the_claim_walks_the_primary_key_in_order_and_never_sorts(tmp_path: Path) -> None:
    conn = _sql.open_connection(str(tmp_path / "s.db"), "NORMAL", 5.0)
    try:
        plan = _plan(conn, _sql.CLAIM_SELECT, (1, 0.0, 10))
        assert "USING PRIMARY KEY (cid=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        plan = _plan(conn, _sql.CLAIM, ("e", 0.0, "[]", 0, 0.0, 5, 0.0, 1, 1, 0.0, 10))
        assert "TEMP B-TREE" not in plan, plan
        assert plan.count("PRIMARY KEY") == 2, plan  # the UPDATE and its subquery
        assert _sql.CLAIM_SELECT in _sql.CLAIM.replace("\n    ", " ").replace("\n", " ")
    finally:
        conn.close()


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_the_file_is_wal_with_the_synchronous_asked_for(
    tmp_path: Path, synchronous: str
) -> None:
    path = tmp_path / "s.db"
    async with opened(path, synchronous) as system:
        await system.streams.create("ORDERS", subjects=["orders.>"])
        async with system.streams.transaction() as tx:
            assert await tx.execute("PRAGMA journal_mode") == [("wal",)]
            level = {"FULL": 2, "NORMAL": 1}[synchronous]
            assert await tx.execute("PRAGMA synchronous") == [(level,)]
            assert (await tx.execute("PRAGMA busy_timeout"))[0][0] >= 1000
    with contextlib.closing(sqlite3.connect(path)) as conn:  # `with conn` would not close it
        assert conn.execute("SELECT name FROM durable_streams").fetchall() == [("ORDERS",)]


async def _orders(system: actors.ActorSystem) -> tuple[durable.Stream, durable.SQLiteStore]:
    # Stream ORDERS with message 0 published (the file is open), and the store.
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    assert await orders.publish("orders.a", 0) == 1
    store = system.streams.store
    assert isinstance(store, durable.SQLiteStore)
    assert store._thread is not None and store._committer is not None
    assert store._lock is not None
    return orders, store


async def _queued(store: durable.SQLiteStore, n: int) -> None:
    # Until n calls wait in the worker's queue (each task queues its call
    # before its first checkpoint).
    assert store._thread is not None
    while store._thread._queue.qsize() < n:
        await anyio.lowlevel.checkpoint()


async def _hold(store: durable.SQLiteStore, tg: anyio.abc.TaskGroup) -> threading.Event:
    # Keeps the worker busy until the returned event is set.
    assert store._thread is not None
    started, gate = threading.Event(), threading.Event()

    def busy() -> None:
        started.set()
        gate.wait()

    tg.start_soon(store._thread.call, busy)
    await anyio.to_thread.run_sync(started.wait)
    return gate


async def test_publishes_queued_together_commit_in_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with opened(path) as system:
        orders, store = await _orders(system)
        assert store._committer is not None
        committer = store._committer
        batches, calls = committer.batches, committer.calls
        seqs: dict[int, int] = {}

        async def publish(i: int) -> None:
            seqs[i] = await orders.publish("orders.a", i)

        async with anyio.create_task_group() as tg:
            gate = await _hold(store, tg)
            for i in range(1, 17):
                tg.start_soon(publish, i)
            await _queued(store, 16)
            gate.set()
        # One BEGIN ... COMMIT for the 16, each with its own sequence.
        assert (committer.batches - batches, committer.calls - calls) == (1, 16)
        assert sorted(seqs.values()) == list(range(2, 18))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT key FROM durable_messages ORDER BY key").fetchall()
    assert [key & _sql.MAX_SEQ for (key,) in rows] == list(range(1, 18))


async def test_a_failing_call_in_a_batch_fails_alone(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders, store = await _orders(system)
        billing = await orders.consumer("billing", deliver="all")
        assert store._committer is not None
        committer = store._committer
        outcomes: dict[int, object] = {}

        async def publish(i: int) -> None:
            outcomes[i] = await orders.publish("orders.a", i, msg_id=f"id-{i}")

        async def publish_lost() -> None:
            with pytest.raises(durable.StreamNotFound, match="GONE"):
                await store.publish("GONE", [("gone.a", b"x", None)])
            outcomes[0] = "failed"

        async with anyio.create_task_group() as tg:
            gate = await _hold(store, tg)
            for i in (1, 2, 3):
                tg.start_soon(publish, i)
            await _queued(store, 3)
            tg.start_soon(publish_lost)
            await _queued(store, 4)
            for i in (4, 5, 6):
                tg.start_soon(publish, i)
            await _queued(store, 7)
            gate.set()
        assert committer.retries == 1  # rolled back, then each alone
        assert outcomes.pop(0) == "failed"
        assert sorted(outcomes.values()) == list(range(2, 8))  # type: ignore[type-var]
        got = await billing.fetch(10)
        assert sorted(m.data for m in got) == [0, 1, 2, 3, 4, 5, 6]
        # Published once each: a retry of the batch did not store them twice.
        assert (await orders.info()).messages == 7
        assert await orders.publish("orders.a", 1, msg_id="id-1") == outcomes[1]


async def test_a_call_made_during_a_transaction_runs_after_it_not_in_it(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders, store = await _orders(system)
        assert store._lock is not None
        published = anyio.Event()
        seqs: list[int] = []

        async def publish() -> None:
            seqs.append(await orders.publish("orders.a", "outside"))
            published.set()

        class Crash(Exception):
            pass

        async with anyio.create_task_group() as tg:
            with pytest.raises(Crash):
                async with system.streams.transaction() as tx:
                    await tx.publish("orders.a", "inside")
                    tg.start_soon(publish)
                    while store._lock.statistics().tasks_waiting < 1:
                        await anyio.lowlevel.checkpoint()
                    assert not published.is_set()
                    raise Crash
        assert seqs == [2]  # the rolled-back "inside" took no sequence
        consumer = await orders.consumer("c")
        assert [m.data for m in await consumer.fetch(10)] == [0, "outside"]


async def test_a_cancelled_call_waits_for_the_worker_then_raises_the_cancellation(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders, store = await _orders(system)
        scope = anyio.CancelScope()
        ended = anyio.Event()
        outcome: list[str] = []

        async def publish() -> None:
            with scope:
                await orders.publish("orders.a", 1)
                outcome.append("returned")
            outcome.append("cancelled" if scope.cancelled_caught else "not cancelled")
            ended.set()

        async with anyio.create_task_group() as tg:
            gate = await _hold(store, tg)
            tg.start_soon(publish)
            await _queued(store, 1)
            scope.cancel()
            for _ in range(20):  # room to end, if it did not wait for the worker
                await anyio.lowlevel.checkpoint()
            assert not ended.is_set()
            gate.set()
            await ended.wait()
        assert outcome == ["cancelled"]
        consumer = await orders.consumer("c")
        assert [m.data for m in await consumer.fetch(10)] == [0, 1]  # it committed


# -- calls on the event loop's thread -----------------------------------------


def _committers(store: durable.SQLiteStore) -> tuple[Any, Any]:
    # What runs calls on the loop's thread, and on the worker.
    assert store._inline is not None and store._committer is not None
    return store._inline, store._committer


async def _where(store: durable.SQLiteStore, call: Awaitable[Any]) -> tuple[int, int]:
    # How many calls ran on the loop's thread, and on the worker, while ``call`` ran.
    inline, worker = _committers(store)
    before = (inline.calls, worker.calls)
    await call
    return (inline.calls - before[0], worker.calls - before[1])


async def test_at_normal_calls_of_one_loop_turn_commit_together_on_the_loop(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path / "s.db", "NORMAL") as system:
        orders, store = await _orders(system)
        inline, worker = _committers(store)
        before = (inline.batches, inline.calls, worker.batches)
        seqs: dict[int, int] = {}

        async def publish(i: int) -> None:
            seqs[i] = await orders.publish("orders.a", i)

        async with anyio.create_task_group() as tg:
            for i in range(1, 17):
                tg.start_soon(publish, i)
        # One transaction on the loop's thread, none on the worker.
        assert (inline.batches, inline.calls, worker.batches) == (
            before[0] + 1,
            before[1] + 16,
            before[2],
        )
        assert sorted(seqs.values()) == list(range(2, 18))
        consumer = await orders.consumer("c")
        assert sorted(m.data for m in await consumer.fetch(20)) == list(range(17))


async def test_at_full_claims_run_on_the_loop_and_the_rest_on_the_worker(
    tmp_path: Path,
) -> None:
    # A claim's commit does not wait for the disk: losing it to a power cut
    # only means that delivery is made again. Publishes and settles wait for
    # the worker's synced commit, which makes the claims before it durable too.
    async with opened(tmp_path / "s.db", "FULL") as system:
        orders, store = await _orders(system)
        inline, worker = _committers(store)
        assert store._thread is not None

        def synchronous(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA synchronous").fetchone()[0])

        assert await store._thread.call(synchronous, inline.conn) == 1  # NORMAL
        assert await store._thread.call(synchronous, worker.conn) == 2  # FULL

        consumer = await orders.consumer("c")
        assert await _where(store, orders.publish("orders.a", 1)) == (0, 1)
        two = [("orders.a", 2), ("orders.a", 3)]
        assert await _where(store, orders.publish_many(two)) == (0, 1)
        zero, one = await consumer.fetch(2)
        assert await _where(store, consumer.fetch(2)) == (1, 0)
        assert await _where(store, zero.ack()) == (0, 1)
        assert await _where(store, one.nak()) == (0, 1)
        (again,) = await consumer.fetch(1)
        assert (again.data, again.deliveries) == (1, 2)
        assert await _where(store, again.term()) == (0, 1)
        assert await _where(store, consumer.fetch(10)) == (1, 0)  # nothing left to claim
        info = await consumer.info()
        assert (info.pending, info.in_flight, info.dead_letters) == (2, 2, 1)


async def test_at_normal_calls_that_may_go_over_many_messages_go_to_the_worker(
    tmp_path: Path,
) -> None:
    # Only publishes, claims and settles of a few messages run on the loop.
    async with opened(tmp_path / "s.db", "NORMAL") as system:
        orders, store = await _orders(system)
        few, many = ([("orders.a", i) for i in range(n)] for n in (10, 300))
        assert await _where(store, orders.publish_many(few)) == (1, 0)
        assert await _where(store, orders.publish_many(many)) == (0, 1)
        on_loop, on_worker = await _where(store, orders.consumer("c", deliver="all"))
        assert on_loop == 0 and on_worker >= 1
        consumer = await orders.consumer("c")
        assert await _where(store, consumer.fetch(100)) == (1, 0)
        assert await _where(store, consumer.fetch(300)) == (0, 1)


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
async def test_a_file_locked_by_another_process_sends_the_call_to_the_worker(
    tmp_path: Path, synchronous: str
) -> None:
    # Another connection holds the write lock: the inline try is rolled back
    # at once and the worker waits for the lock (busy_timeout), while the
    # loop goes on. A publish at NORMAL, a claim at FULL: each runs on the
    # loop's thread there.
    path = tmp_path / "s.db"
    async with opened(path, synchronous) as system:
        orders, store = await _orders(system)
        consumer = await orders.consumer("c")
        assert store._inline is not None and store._committer is not None
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            other.execute("BEGIN IMMEDIATE")
            ticks = 0
            done: list[int] = []
            worker = store._committer.batches

            async def call() -> None:
                if synchronous == "NORMAL":
                    done.append(await orders.publish("orders.a", 1))
                else:
                    done.extend(m.data for m in await consumer.fetch(1))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                while store._committer.batches == worker:  # until the worker has it
                    await anyio.lowlevel.checkpoint()
                for _ in range(50):
                    ticks += 1  # the loop is not blocked by the lock
                    await anyio.lowlevel.checkpoint()
                assert ticks == 50 and done == []
                await anyio.to_thread.run_sync(other.execute, "COMMIT")
            assert done == ([2] if synchronous == "NORMAL" else [0])
            assert store._committer.batches == worker + 1
        finally:
            other.close()
        if synchronous == "NORMAL":
            assert [m.data for m in await consumer.fetch(10)] == [0, 1]


async def test_the_worker_checkpoints_what_the_loop_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actors.durable import _store

    monkeypatch.setattr(_store, "CHECKPOINT_EVERY", 4)
    path = tmp_path / "s.db"

    def in_file() -> int:
        # Rows in the database file itself, not in its write-ahead log.
        uri = f"file:{path}?mode=ro&immutable=1"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            try:
                return int(conn.execute("SELECT count(*) FROM durable_messages").fetchone()[0])
            except sqlite3.OperationalError:  # the table is not in the file yet
                return -1

    async with opened(path, "NORMAL") as system:
        orders, store = await _orders(system)
        assert store._thread is not None
        store._inline_batches = 0
        for i in range(1, 4):
            await orders.publish("orders.a", i)
        await store._thread.call(lambda: None)  # after any background work
        assert in_file() < 4  # the inline connection never checkpoints
        await orders.publish("orders.a", 4)  # the 4th inline batch
        await store._thread.call(lambda: None)
        assert in_file() == 5


async def test_one_checkpoint_at_a_time_is_sent_to_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint the worker is slow to finish (a busy machine) is not
    # joined by more behind it: the loop writes on and asks for the next one
    # after this one ends.
    from actors.durable import _store

    monkeypatch.setattr(_store, "CHECKPOINT_EVERY", 2)
    checkpoint = _store._checkpoint
    started = threading.Event()
    go_on = threading.Event()
    runs: list[int] = []

    def slow(conn: sqlite3.Connection, writing: Any) -> None:
        runs.append(1)
        started.set()
        go_on.wait(10)
        checkpoint(conn, writing)

    monkeypatch.setattr(_store, "_checkpoint", slow)
    async with opened(tmp_path / "s.db", "NORMAL") as system:
        orders, store = await _orders(system)
        assert store._thread is not None and store._inline is not None
        store._inline_batches = 0
        for i in range(2):
            await orders.publish("orders.a", i)
        await anyio.to_thread.run_sync(started.wait, 10)
        inline = store._inline.batches
        for i in range(20):  # ten checkpoints' worth while the first one runs
            await orders.publish("orders.a", i)
        assert store._inline.batches == inline + 20  # the loop wrote on
        go_on.set()
        await store._thread.call(lambda: None)  # after the background work
        assert runs == [1]
        await orders.publish("orders.a", "next")  # asks for the next one
        await store._thread.call(lambda: None)
        assert runs == [1, 1]


async def test_a_checkpoints_last_pass_holds_the_loops_writes_off(tmp_path: Path) -> None:
    # The checkpoint's last pass holds ``_writing`` so that it finishes and
    # the log starts over: a call made meanwhile runs on the worker, behind it
    # (a checkpoint racing the loop's writes never finished, and the log grew
    # by about 13 KB a publish). Then the next write starts the log over.
    from actors.durable import _store

    path = tmp_path / "s.db"

    def restarts() -> int:
        # The log header's checkpoint sequence number: one more at each restart.
        with open(f"{path}-wal", "rb") as log:
            return int.from_bytes(log.read(16)[12:16], "big")

    async with opened(path, "NORMAL") as system:
        orders, store = await _orders(system)
        assert store._inline is not None and store._committer is not None
        assert store._thread is not None and store._conn is not None
        inline, worker = store._inline.batches, store._committer.batches
        await orders.publish("orders.a", 1)
        assert (store._inline.batches, store._committer.batches) == (inline + 1, worker)
        with store._writing:  # as the checkpoint's last pass holds it
            await orders.publish("orders.a", 2)
        assert (store._inline.batches, store._committer.batches) == (inline + 1, worker + 1)
        before = restarts()
        entered: list[bool] = []

        class Writing:  # store._writing, noting that the last pass took it
            def __enter__(self) -> None:
                store._writing.acquire()
                entered.append(True)

            def __exit__(self, *exc: object) -> None:
                store._writing.release()

        await store._thread.call(_store._checkpoint, store._conn, Writing())
        assert entered == [True]
        await orders.publish("orders.a", 3)
        assert restarts() == before + 1
        consumer = await orders.consumer("c")
        assert [m.data for m in await consumer.fetch(10)] == [0, 1, 2, 3]


async def test_a_checkpoint_that_others_keep_from_finishing_waits_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process's reader (or writer) in the log keeps a PASSIVE
    # checkpoint from finishing, and the log then only grows. Past LOG_LIMIT
    # pages the worker's checkpoint waits for them (RESTART, at most
    # RESTART_WAIT), so the next write starts the log over.
    from actors.durable import _store

    monkeypatch.setattr(_store, "CHECKPOINT_EVERY", 10_000)  # only the one below
    monkeypatch.setattr(_store, "LOG_LIMIT", 16)
    monkeypatch.setattr(_store, "RESTART_WAIT", 10.0)  # the reader ends after 0.1 s
    path = tmp_path / "s.db"

    def frames() -> int:
        # The frames in the log, through a connection of its own.
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])

    async with opened(path, "NORMAL") as system:
        orders, store = await _orders(system)
        assert store._thread is not None and store._conn is not None
        for i in range(50):
            await orders.publish("orders.a", i)
        reader = sqlite3.connect(path, check_same_thread=False)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM durable_messages").fetchone()  # its snapshot
            for i in range(50):
                await orders.publish("orders.a", i)
            ended = threading.Timer(0.1, reader.execute, ("COMMIT",))
            ended.start()
            await store._thread.call(_store._checkpoint, store._conn, store._writing)
            ended.join()
        finally:
            reader.close()
        await orders.publish("orders.a", "after")
        assert frames() < 10  # the last publish's few pages, not 100 messages' hundreds


async def test_a_cancelled_first_call_of_a_turn_still_runs_the_others(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db", "NORMAL") as system:
        orders, store = await _orders(system)
        scopes = {"a": anyio.CancelScope(), "b": anyio.CancelScope()}
        seqs: dict[str, int] = {}
        cancelled: dict[str, bool] = {}

        async def publish(name: str) -> None:
            with scopes[name]:
                seqs[name] = await orders.publish("orders.a", name)
                await anyio.lowlevel.checkpoint()
            cancelled[name] = scopes[name].cancelled_caught

        run_inline = store._run_inline
        leaders: list[str] = []

        def cancel_then_run(inline: Any, batch: list[Any]) -> Any:
            # The first of the turn (the one the others wait on) is cancelled
            # before it runs the batch.
            if batch[0].fn is _sql.publish:
                leaders.append(pickle.loads(batch[0].args[2][0][1]))
                scopes[leaders[0]].cancel()
            return run_inline(inline, batch)

        store._run_inline = cancel_then_run  # type: ignore[method-assign]
        async with anyio.create_task_group() as tg:
            tg.start_soon(publish, "a")
            tg.start_soon(publish, "b")
        assert len(leaders) == 1  # one batch of the two
        leader = leaders[0]
        # Its commit is not reported as a failure; the cancellation comes after.
        assert sorted(seqs.values()) == [2, 3]
        assert cancelled == {"a": leader == "a", "b": leader == "b"}
        consumer = await orders.consumer("c")
        got = [m.data for m in await consumer.fetch(10)]
        assert got[0] == 0 and sorted(got[1:]) == ["a", "b"]


class _FailingCommit:
    """The store's connection, but its next ``COMMIT`` fails (a full disk, say)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.fail = True

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.fail:
            self.fail = False
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_a_transaction_whose_commit_fails_keeps_nothing(
    tmp_path: Path, synchronous: str
) -> None:
    async with opened(tmp_path / "s.db", synchronous) as system:
        orders, store = await _orders(system)
        billing = await orders.consumer("billing")
        (zero,) = await billing.fetch(1)
        async with system.streams.transaction() as tx:
            await tx.execute("CREATE TABLE paid (id INTEGER PRIMARY KEY)")
        real = store._conn
        assert real is not None
        store._conn = _FailingCommit(real)  # type: ignore[assignment]
        try:
            with pytest.raises(sqlite3.OperationalError, match="disk is full"):
                async with system.streams.transaction() as tx:
                    await tx.execute("INSERT INTO paid VALUES (1)")
                    await tx.ack(zero)
                    assert await tx.publish("orders.a", "lost") == 2
        finally:
            store._conn = real
        assert not real.in_transaction  # rolled back, not left open
        # Nothing of it was kept, and the store goes on.
        async with system.streams.transaction() as tx:
            assert await tx.execute("SELECT id FROM paid") == []
        assert (await billing.info()).pending == 1  # the ack did not happen
        assert await orders.publish("orders.a", "kept") == 2
        assert await zero.ack() is True
        assert [m.data for m in await billing.fetch(10)] == ["kept"]


async def test_two_stores_on_one_file_publish_at_once_and_lose_nothing(tmp_path: Path) -> None:
    # Two stores (as two processes would have) at NORMAL: their inline
    # connections and workers contend for the file's lock; while one holds a
    # transaction open, the other's calls wait on its worker, not the loop.
    path = tmp_path / "s.db"
    first = durable.SQLiteStore(path, synchronous="NORMAL")
    second = durable.SQLiteStore(path, synchronous="NORMAL")
    async with (
        actors.ActorSystem("one", store=first) as one,
        actors.ActorSystem("two", store=second) as two,
    ):
        orders = await one.streams.create("ORDERS", subjects=["orders.>"])
        theirs = await two.streams.get("ORDERS")
        seqs: list[int] = []

        async def publish(stream: durable.Stream, who: str) -> None:
            for i in range(50):
                seqs.append(await stream.publish("orders.a", f"{who}{i}"))

        async with anyio.create_task_group() as tg:
            async with one.streams.transaction() as tx:  # holds the lock meanwhile
                await tx.publish("orders.a", "tx")
                for n in range(4):
                    tg.start_soon(publish, theirs, f"two-{n}-")
                for _ in range(20):
                    await anyio.lowlevel.checkpoint()
                assert seqs == []  # waiting for the lock, on the worker
            for n in range(4):
                tg.start_soon(publish, orders, f"one-{n}-")
        assert sorted(seqs) == list(range(2, 402))
        consumer = await orders.consumer("all")
        got = [m.data for m in await consumer.fetch(500)]
        assert len(got) == 401 and len(set(got)) == 401 and got[0] == "tx"


# -- the messages' keys --------------------------------------------------------


def test_a_message_is_found_by_its_key_and_a_stream_is_a_range_of_keys(tmp_path: Path) -> None:
    # One b-tree for the messages, keyed by an integer (rowid): a publish
    # writes one page for its row, and no index lookup precedes a read.
    conn = _sql.open_connection(str(tmp_path / "s.db"), "NORMAL", 5.0)
    try:
        indexes = conn.execute("PRAGMA index_list(durable_messages)").fetchall()
        assert indexes == []
        one = _plan(conn, "SELECT data FROM durable_messages WHERE key = ?", (1,))
        assert "USING INTEGER PRIMARY KEY (rowid=?)" in one, one
        every = _plan(
            conn,
            "SELECT key FROM durable_messages WHERE key BETWEEN ? AND ? ORDER BY key",
            (1, 2),
        )
        assert "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in every, every
        assert "TEMP B-TREE" not in every, every
    finally:
        conn.close()


def _to_layout_before_keys(path: Path) -> None:
    # What a file written before the keys looks like: messages by (stream,
    # seq) with an index on them, and streams without ids.
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(
            f"""
            BEGIN;
            CREATE TABLE old_messages (
                stream TEXT NOT NULL, seq INTEGER NOT NULL, subject TEXT NOT NULL,
                data BLOB NOT NULL, time REAL NOT NULL, refs INTEGER NOT NULL DEFAULT 0
            );
            INSERT INTO old_messages
                SELECT s.name, m.key - (s.id << {_sql.SEQ_BITS}), m.subject, m.data, m.time,
                       m.refs
                FROM durable_messages AS m
                JOIN durable_streams AS s ON m.key >> {_sql.SEQ_BITS} = s.id;
            DROP TABLE durable_messages;
            ALTER TABLE old_messages RENAME TO durable_messages;
            CREATE UNIQUE INDEX durable_messages_seq ON durable_messages (stream, seq);
            DROP INDEX durable_streams_id;
            ALTER TABLE durable_streams DROP COLUMN id;
            COMMIT;
            """
        )


async def test_a_file_from_before_the_keys_is_moved_to_them(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with opened(path) as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        audit = await system.streams.create("AUDIT", subjects=["audit.>"])
        billing = await orders.consumer("billing", deliver="all")
        for i in range(1, 4):
            await orders.publish("orders.eu", {"order": i})
        await audit.publish("audit.log", "a1")
        await audit.publish("audit.log", "a2")
        (first,) = await billing.fetch(1)
        assert await first.ack()
    _to_layout_before_keys(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM durable_messages").fetchone() == (5,)

    async with opened(path) as system:
        orders = await system.streams.get("ORDERS")
        billing = await orders.consumer("billing")
        got = await billing.fetch(10)
        assert [(m.seq, m.data) for m in got] == [(2, {"order": 2}), (3, {"order": 3})]
        await billing.ack(got)
        assert await orders.publish("orders.eu", {"order": 4}) == 4
        (fourth,) = await billing.fetch(10)
        assert (fourth.seq, fourth.data) == (4, {"order": 4})
        audit = await system.streams.get("AUDIT")
        readers = await audit.consumer("readers", deliver="all")
        assert [(m.seq, m.data) for m in await readers.fetch(10)] == [(1, "a1"), (2, "a2")]
        assert (await audit.info()).messages == 2
        # A stream created now gets an id of its own.
        later = await system.streams.create("LATER", subjects=["later.>"])
        assert await later.publish("later.x", "l1") == 1
        assert (await audit.info()).messages == 2

    with contextlib.closing(sqlite3.connect(path)) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(durable_messages)")]
        assert columns == ["key", "subject", "data", "time", "refs"]
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        assert "durable_messages_by_stream" not in tables
        assert "durable_messages_seq" not in tables
        ids = conn.execute("SELECT name, id FROM durable_streams ORDER BY name").fetchall()
        assert ids == [("AUDIT", 1), ("LATER", 3), ("ORDERS", 2)]


async def test_a_deleted_streams_id_given_again_starts_empty(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        await system.streams.create("A", subjects=["a.>"])
        b = await system.streams.create("B", subjects=["b.>"])
        for i in range(3):
            await b.publish("b.x", i)
        assert await system.streams.delete("B")
        c = await system.streams.create("C", subjects=["c.>"])  # B's id, the highest
        readers = await c.consumer("readers", deliver="all")
        assert await readers.fetch(10) == []
        assert await c.publish("c.x", "c1") == 1
        assert [(m.seq, m.data) for m in await readers.fetch(10)] == [(1, "c1")]
        assert (await c.info()).messages == 1


def test_stream_ids_are_reused_once_the_highest_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sql, "MAX_STREAM_ID", 3)
    conn = _sql.open_connection(str(tmp_path / "s.db"), "NORMAL", 5.0)

    def ids() -> list[tuple[str, int]]:
        return conn.execute("SELECT name, id FROM durable_streams ORDER BY id").fetchall()

    try:
        for name in "ABC":
            _sql.put_stream(conn, name, "{}")
        _sql.delete_stream(conn, "B")
        _sql.put_stream(conn, "D", "{}")
        assert ids() == [("A", 1), ("D", 2), ("C", 3)]
        _sql.delete_stream(conn, "A")
        _sql.put_stream(conn, "A", "{}")
        assert ids() == [("A", 1), ("D", 2), ("C", 3)]
        with pytest.raises(durable.DurableError, match="holds 3 streams, its most"):
            _sql.put_stream(conn, "E", "{}")
        _sql.put_stream(conn, "C", '{"changed": 1}')  # an update needs no new id
        assert ids() == [("A", 1), ("D", 2), ("C", 3)]
    finally:
        conn.close()


async def test_a_stream_past_its_last_sequence_refuses_the_publish(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with opened(path) as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        await orders.publish("orders.eu", 1)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE durable_streams SET last_seq = ?", (_sql.MAX_SEQ - 1,))
    async with opened(path) as system:
        orders = await system.streams.get("ORDERS")
        assert await orders.publish("orders.eu", 2) == _sql.MAX_SEQ
        with pytest.raises(durable.DurableError, match="given out its last sequence"):
            await orders.publish("orders.eu", 3)
        info = await orders.info()
        assert (info.messages, info.last_seq) == (2, _sql.MAX_SEQ)
        readers = await orders.consumer("readers", deliver="all")
        assert [m.data for m in await readers.fetch(10)] == [1, 2]


def test_parked_deliveries_are_found_by_their_due_time(tmp_path: Path) -> None:
    # The claim brings back the due ones through the partial index, never by
    # walking the parked rows; the claim itself walks the consumer's own.
    conn = _sql.open_connection(str(tmp_path / "s.db"), "NORMAL", 5.0)
    try:
        for sql in (_sql.ANY_DUE, _sql.UNPARK, _sql.PARKED_DUE):
            plan = _plan(conn, sql, (-1, 0.0)[: sql.count("?")])
            assert "USING COVERING INDEX durable_pending_parked (cid=?" in plan, plan
    finally:
        conn.close()


async def test_parked_deliveries_go_with_a_reset_a_delete_and_a_limit(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"], max_msgs=10)
        await orders.publish_many([("orders.a", i) for i in range(10)])
        billing = await orders.consumer("billing", ack_wait=3600)
        shipping = await orders.consumer("shipping", ack_wait=3600)

        for consumer in (billing, shipping):
            for m in await consumer.fetch(4):
                await m.nak(delay=3600)
        assert await parked(system) == 8
        # The limit drops the two oldest messages, parked deliveries with them.
        await orders.publish_many([("orders.a", i) for i in range(10, 12)])
        assert await parked(system) == 4
        assert (await billing.info()).pending == 10
        # A reset starts over from a sequence: nothing stays parked.
        await billing.reset(5)
        assert await parked(system) == 2
        assert [m.data for m in await billing.fetch(20)] == list(range(4, 12))
        # A deleted consumer leaves no row behind.
        await shipping.delete()
        async with system.streams.transaction() as tx:
            assert await tx.execute(
                "SELECT count(*) FROM durable_pending WHERE cid IN (?, ?)",
                (shipping._cid, -shipping._cid),
            ) == [(0,)]


async def test_a_deleted_consumer_lets_go_of_its_parked_messages(tmp_path: Path) -> None:
    # Interest retention keeps a message while a consumer has it pending,
    # parked or not: deleting the consumer lets go of both kinds.
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"], retention="interest")
        billing = await orders.consumer("billing", ack_wait=3600)
        shipping = await orders.consumer("shipping", ack_wait=3600)
        await orders.publish_many([("orders.a", i) for i in range(4)])
        for m in await billing.fetch(2):
            await m.nak(delay=3600)  # parked: seqs 1 and 2
        assert await shipping.ack(await shipping.fetch(4)) == [True] * 4
        assert (await orders.info()).messages == 4  # billing still has them all
        await billing.delete()
        assert (await orders.info()).messages == 0


async def test_limits_drop_hundreds_at_once(tmp_path: Path) -> None:
    # More to drop than one chunk of the trim reads, by count and by size.
    async with opened(tmp_path / "s.db") as system:
        few = await system.streams.create("FEW", subjects=["few"], max_msgs=10)
        small = await system.streams.create("SMALL", subjects=["small"], max_bytes=1000)
        readers = [await few.consumer("c"), await small.consumer("c")]
        await few.publish_many([("few", i) for i in range(600)])
        await small.publish_many([("small", b"x" * 100)] * 600)
        few_info, small_info = await few.info(), await small.info()
        assert (few_info.messages, few_info.last_seq) == (10, 600)
        assert small_info.bytes <= 1000 and small_info.last_seq == 600
        assert small_info.messages == small_info.bytes // len(pickle.dumps(b"x" * 100, 5))
        assert [m.data for m in await readers[0].fetch(100)] == list(range(590, 600))
        assert (await readers[1].info()).pending == small_info.messages
