"""Durable streams on the SQLite store against raw sqlite3 and SQLite queues.

Usage: ``python -m benchmarks.durable [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

Workloads, each beside its yardstick measured in the same run, at both
``synchronous`` settings (FULL and NORMAL, WAL either way), on each backend.
Messages are 64-byte payloads, pickled as the store pickles them.

- publish 1/txn: ``await stream.publish(subject, payload)`` ``n`` times (one
  commit each), to a stream without consumers (an append, as the raw
  loop's). Yardstick: a raw ``sqlite3`` loop, ``BEGIN IMMEDIATE``,
  ``INSERT``, ``COMMIT`` per message, on the same settings, with no event
  loop and no thread hop.
- publish 1/call, 16 tasks: 16 tasks publishing at once, each awaiting one
  ``stream.publish`` at a time (``n`` in all): the store commits the
  publishes waiting together in one transaction (group commit), each
  returning after that commit. Yardstick: the raw loop above (one writer,
  one commit a message).
- publish 100/txn: ``stream.publish_many`` of 100. Yardstick: raw
  ``executemany`` of 100 in one transaction.
- fetch+ack 1: ``consumer.fetch(1)`` then ``message.ack()`` (two commits a
  message; at FULL the claim's commit does not wait for the disk, the ack's
  does, as docs/durable.md says). Yardstick: the raw loop: the claim
  ``UPDATE ... RETURNING`` of one row over the ``(topic, id)`` index, commit,
  ``DELETE``, commit, both at the setting (at FULL, two syncs a message).
- fetch+ack 100: ``fetch(100)``, then ``consumer.ack(messages)`` (two commits
  per 100). Yardstick: the same raw claim of 100 and one ``executemany``
  delete.
- dead letter: a nak of a message's last allowed delivery moves it to the
  dead-letter queue (one commit each); its time against a publish's.
- push: ``batches * 100`` messages through ``durable.Push`` with
  ``max_in_flight=100`` into an actor that returns at once (the acks are
  written in batches beside it); from the spawn until the last is handled.
  No yardstick and no target: the rate of the everyday consumer.
- peers on the fetch+ack 1 and publish 1 workloads (from the ``bench``
  extra): persist-queue's ``SQLiteAckQueue`` (``put``; ``get`` + ``ack``) and
  litequeue (``put``; ``get`` + ``done``), their connections set to the same
  ``synchronous``; they are synchronous libraries, measured without an event
  loop.

Targets (per backend, per setting): publish 1/txn at least 0.8x raw, 16
concurrent publishers at least 1x the raw loop, 100/txn
at least 0.5x raw ``executemany``, fetch+ack at least 0.5x the raw loop, and
at least 1x each peer, a move to the dead letters at most 2x a publish's
time. Printed as PASS or MISS; a miss never changes the exit
status.
"""

from __future__ import annotations

import functools
import os
import pickle
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

import actors
from actors import durable

from ._pairs import Sink
from ._util import (
    Backend,
    Recorder,
    Spread,
    Target,
    format_rate,
    format_spread,
    format_table,
    headline,
    machine,
    parse_args,
    print_verdicts,
    repeat_runs,
    run_on,
    spreads_json,
    versions,
    write_json,
)

SETTINGS = ("FULL", "NORMAL")
PAYLOAD = b"x" * 64
SUBJECT = "orders.eu.created"


@dataclass(frozen=True)
class Size:
    """Messages per workload: single commits at FULL cost an fsync each."""

    single: dict[str, int]
    batches: int


FULL_SIZE = Size({"FULL": 300, "NORMAL": 3000}, 100)
QUICK = Size({"FULL": 60, "NORMAL": 600}, 20)


def _raw_conn(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
        "data BLOB NOT NULL, vt REAL NOT NULL DEFAULT 0)"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS q_topic ON q (topic, id)")
    return conn


CLAIM = (
    "UPDATE q SET vt = ? WHERE id IN (SELECT id FROM q WHERE topic = ? AND vt <= ? "
    "ORDER BY id LIMIT ?) RETURNING id, data"
)


def _raw(directory: str, synchronous: str, n: int, batches: int) -> dict[str, float]:
    """The raw sqlite3 loops: rates in messages per second."""
    conn = _raw_conn(os.path.join(directory, f"raw-{synchronous}.db"), synchronous)
    data = pickle.dumps(PAYLOAD, 5)
    out = {}
    start = time.perf_counter()
    for _ in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO q (topic, data) VALUES (?, ?)", ("t", data))
        conn.execute("COMMIT")
    out["publish1"] = n / (time.perf_counter() - start)
    rows = [("t", data)] * 100
    start = time.perf_counter()
    for _ in range(batches):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO q (topic, data) VALUES (?, ?)", rows)
        conn.execute("COMMIT")
    out["publish100"] = batches * 100 / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        (row,) = conn.execute(CLAIM, (now + 30, "t", now, 1)).fetchall()
        conn.execute("COMMIT")
        pickle.loads(row[1])
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM q WHERE id = ?", (row[0],))
        conn.execute("COMMIT")
    out["fetch1"] = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(batches):
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        got = conn.execute(CLAIM, (now + 30, "t", now, 100)).fetchall()
        conn.execute("COMMIT")
        for _id, blob in got:
            pickle.loads(blob)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("DELETE FROM q WHERE id = ?", [(i,) for i, _ in got])
        conn.execute("COMMIT")
    out["fetch100"] = batches * 100 / (time.perf_counter() - start)
    conn.close()
    return out


async def _ours(
    directory: str, synchronous: str, n: int, batches: int, backend: str
) -> dict[str, float]:
    # A file of each backend's own: the second would otherwise start on the
    # first one's rows (a bigger file than the raw loop's).
    path = os.path.join(directory, f"ours-{synchronous}-{backend}.db")
    store = durable.SQLiteStore(path, synchronous=synchronous)  # type: ignore[arg-type]
    out = {}
    async with actors.ActorSystem(store=store) as system:
        # Appends to a stream without consumers, as the raw loops append to a table.
        stream = await system.streams.create("ORDERS", subjects=["orders.>"])
        await stream.publish(SUBJECT, PAYLOAD)  # opens the file
        start = time.perf_counter()
        for _ in range(n):
            await stream.publish(SUBJECT, PAYLOAD)
        out["publish1"] = n / (time.perf_counter() - start)
        bulk = await system.streams.create("BULK", subjects=["bulk.>"])  # also no consumer
        out["publish1x16"] = await _concurrent_publishes(bulk, n)
        items = [(SUBJECT, PAYLOAD)] * 100
        start = time.perf_counter()
        for _ in range(batches):
            await stream.publish_many(items)
        out["publish100"] = batches * 100 / (time.perf_counter() - start)
        # A consumer of everything published so far claims and acks it.
        consumer = await stream.consumer("c", max_in_flight=100_000)
        await consumer.ack(await consumer.fetch(1))  # the warm-up publish
        start = time.perf_counter()
        for _ in range(n):
            (m,) = await consumer.fetch(1)
            m.data  # noqa: B018 (unpickled, as the raw loop does)
            await m.ack()
        out["fetch1"] = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(batches):
            got = await consumer.fetch(100)
            for m in got:
                m.data  # noqa: B018
            await consumer.ack(got)
        out["fetch100"] = batches * 100 / (time.perf_counter() - start)
        assert await consumer.fetch(1) == []
        # Moves to the dead-letter queue: a nak of the only allowed delivery.
        dead = await stream.consumer("d", max_deliver=1, max_in_flight=100_000)
        got = await dead.fetch(n)
        start = time.perf_counter()
        for m in got:
            await m.nak(error="poison")
        out["dlq1"] = n / (time.perf_counter() - start)
        out["push100"] = await _push(system, batches * 100)
    return out


async def _push(system: actors.ActorSystem, n: int) -> float:
    stream = await system.streams.create("PUSH", subjects=["push.>"])
    await stream.consumer("p")
    for _ in range(n // 100):
        await stream.publish_many([("push.eu", PAYLOAD)] * 100)
    done = anyio.Event()
    start = time.perf_counter()
    ref = await system.spawn(durable.Push, Sink, n, done, durable=("PUSH", "p"), max_in_flight=100)
    await done.wait()
    rate = n / (time.perf_counter() - start)
    await ref.stop()
    return rate


#: Tasks publishing at once in the concurrent workload.
PUBLISHERS = 16


async def _concurrent_publishes(stream: durable.Stream, n: int) -> float:
    # PUBLISHERS tasks, each awaiting one publish at a time: the store
    # commits the publishes that wait at once together (group commit).
    each = max(1, n // PUBLISHERS)

    async def publisher() -> None:
        for _ in range(each):
            await stream.publish("bulk.eu.created", PAYLOAD)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(PUBLISHERS):
            tg.start_soon(publisher)
    return each * PUBLISHERS / (time.perf_counter() - start)


def _persist_queue(directory: str, synchronous: str, n: int) -> dict[str, float] | None:
    try:
        from persistqueue import SQLiteAckQueue
    except ImportError:
        return None
    queue = SQLiteAckQueue(os.path.join(directory, f"pq-{synchronous}"), multithreading=True)
    for conn in (queue._conn, queue._getter):
        if conn is not None:
            conn.execute(f"PRAGMA synchronous = {synchronous}")
    start = time.perf_counter()
    for _ in range(n):
        queue.put(PAYLOAD)
    publish = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        item = queue.get(block=False)
        queue.ack(item)
    fetch = n / (time.perf_counter() - start)
    return {"publish1": publish, "fetch1": fetch}


def _litequeue(directory: str, synchronous: str, n: int) -> dict[str, float] | None:
    try:
        from litequeue import LiteQueue
    except ImportError:
        return None
    queue = LiteQueue(os.path.join(directory, f"lq-{synchronous}.db"))
    queue.conn.execute(f"PRAGMA synchronous = {synchronous}")
    text = PAYLOAD.decode()
    start = time.perf_counter()
    for _ in range(n):
        queue.put(text)
    publish = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        message = queue.pop()
        claim = getattr(message, "claim_id", None)  # litequeue 0.14: done() names the claim
        if claim is None:
            queue.done(message.message_id)
        else:
            queue.done(message.message_id, claim_id=claim)
    fetch = n / (time.perf_counter() - start)
    queue.close()
    return {"publish1": publish, "fetch1": fetch}


PEERS: dict[str, Callable[[str, str, int], dict[str, float] | None]] = {
    "persist-queue": _persist_queue,
    "litequeue": _litequeue,
}


def _measure_once(recorder: Recorder, backends: list[Backend], size: Size, record: bool) -> None:
    for synchronous in SETTINGS:
        n = size.single[synchronous]
        with tempfile.TemporaryDirectory() as directory:
            results: dict[tuple[str, ...], dict[str, float]] = {}
            results[("raw",)] = _raw(directory, synchronous, n, size.batches)
            for backend in backends:
                results[(backend,)] = run_on(
                    backend,
                    functools.partial(_ours, directory, synchronous, n, size.batches, backend),
                )
            for name, peer in PEERS.items():
                got = peer(directory, synchronous, n)
                if got is not None:
                    results[(name,)] = got
            if record:
                for who, figures in results.items():
                    for workload, rate in figures.items():
                        recorder.add((synchronous, *who, workload), rate)


def measure(backends: list[Backend], runs: int, size: Size) -> Recorder:
    """Every workload ``runs`` times after a small warm-up."""
    recorder = Recorder()
    warm = Size({"FULL": 10, "NORMAL": 50}, 2)
    repeat_runs(
        runs,
        lambda: _measure_once(recorder, backends, size, record=True),
        lambda: _measure_once(recorder, backends, warm, record=False),
    )
    return recorder


WORKLOADS = [
    ("publish1", "publish 1/txn", "raw INSERT + COMMIT loop", 0.8),
    ("publish1x16", "publish 1/call, 16 tasks", "raw INSERT + COMMIT loop", 1.0),
    ("publish100", "publish 100/txn", "raw executemany of 100", 0.5),
    ("fetch1", "fetch+ack 1", "raw claim + delete loop", 0.5),
    ("fetch100", "fetch+ack 100", "raw claim 100 + delete 100", 0.5),
]


def report(
    recorder: Recorder, backends: list[Backend], runs: int, info: dict[str, object]
) -> dict[str, object]:
    """Print the tables and return the results as JSON-ready data."""
    peers = ", ".join(f"{name} {v}" for name, v in versions(list(PEERS)).items())
    print(headline("durable", info, f"sqlite {sqlite3.sqlite_version}, {peers}", runs))
    header = ["sync", "who", "workload", "median msg/s", "spread"]
    rows = []
    for key in sorted(recorder.samples, key=str):
        assert isinstance(key, tuple)
        spread = recorder.spread(key)
        rows.append([*key, *format_spread(spread, format_rate)])
    print("\n== rates ==\n")
    print(format_table(header, rows, right=(3, 4)))
    verdicts: list[tuple[str, Spread, Target]] = []
    for synchronous in SETTINGS:
        for backend in backends:
            for workload, label, yardstick, threshold in WORKLOADS:
                ours = recorder.spread((synchronous, backend, workload))
                raw = workload.removesuffix("x16")  # the concurrent ones against the loop
                verdicts.append(
                    (
                        f"{synchronous} {backend}: {label} / {yardstick}, msg/s",
                        ours.ratio(recorder.spread((synchronous, "raw", raw))),
                        Target(">=", threshold),
                    )
                )
            verdicts.append(
                (
                    f"{synchronous} {backend}: a move to the dead letters, time / a publish's",
                    recorder.spread((synchronous, backend, "publish1")).ratio(
                        recorder.spread((synchronous, backend, "dlq1"))
                    ),
                    Target("<=", 2.0),
                )
            )
            for peer in PEERS:
                for workload, label, _yardstick, _threshold in (WORKLOADS[0], WORKLOADS[3]):
                    key = (synchronous, peer, workload)
                    if key in recorder.samples:
                        verdicts.append(
                            (
                                f"{synchronous} {backend}: {label} / {peer}",
                                recorder.spread((synchronous, backend, workload)).ratio(
                                    recorder.spread(key)
                                ),
                                Target(">=", 1.0),
                            )
                        )
    print_verdicts(verdicts)
    return {
        "machine": info,
        "rates": spreads_json(recorder),
        "ratios": {label: value.as_json() for label, value, _ in verdicts},
    }


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args(
        "durable", __doc__ or "", "fewer messages per workload (a smoke run)", argv
    )
    size = QUICK if args.quick else FULL_SIZE
    info = machine()
    recorder = measure(backends, args.runs, size)
    data = report(recorder, backends, args.runs, info)
    if args.json:
        write_json(Path(args.json), data)


if __name__ == "__main__":
    main()
