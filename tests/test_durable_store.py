"""The SQLite store itself: its settings, the claim's query plan, and group commit."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import pytest
from durable_kit import opened

import actors
from actors import durable
from actors.durable import _sql

pytestmark = pytest.mark.anyio


def test_the_claim_walks_the_primary_key_in_order_and_never_sorts(tmp_path: Path) -> None:
    conn = _sql.open_connection(str(tmp_path / "s.db"), "NORMAL", 5.0)
    try:
        plan = " / ".join(
            row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + _sql.CLAIM_SELECT, (1, 0.0, 10))
        )
        assert "USING PRIMARY KEY (cid=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        plan = " / ".join(
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN " + _sql.CLAIM, ("e", 0.0, "[]", 0.0, 0.0, 1, 1, 0.0, 10)
            )
        )
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
        rows = conn.execute("SELECT seq FROM durable_messages ORDER BY seq").fetchall()
    assert [seq for (seq,) in rows] == list(range(1, 18))


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
