"""Actor messaging, ask latency and idle-actor cost beside the raw substrate.

Usage: ``python -m benchmarks.actors [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

Workloads, each on both backends with its baselines in the same run:

- one-way: an actor tells another 200,000 messages; baselines: one task
  feeding another through ``asyncio.Queue(1000)`` (on asyncio), trio's memory
  channel with the ``*_nowait`` fast path (on trio), and anyio's memory stream.
- ask: 20,000 round trips to an echo actor; baseline: a future-based ask over
  ``asyncio.Queue`` (a request carries a future the server resolves).
- idle: 100,000 actors spawned, then stopped, in a fresh interpreter each run:
  µs per actor and resident memory per idle actor; baseline: as many bare
  asyncio tasks each waiting on its own ``asyncio.Queue``.
- pairs: the one-way figure with 1, 10, 100 and 1,000 sender/receiver pairs
  at once, the same 200,000 messages in total (the goal: flat).

Targets are printed as PASS or MISS; a miss never changes the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import trio

from actors import Actor, ActorRef, ActorSystem

from ._util import (
    BACKENDS,
    Backend,
    Recorder,
    Target,
    format_rate,
    format_ratio,
    format_table,
    machine,
    run_on,
)

FULL = {"one_way": 200_000, "ask": 20_000, "idle": 100_000, "pairs": 200_000}
QUICK = {"one_way": 20_000, "ask": 2_000, "idle": 5_000, "pairs": 20_000}
PAIRS = (1, 10, 100, 1000)


# -- one-way ------------------------------------------------------------------


class _Sink(Actor):
    def __init__(self, n: int, done: anyio.Event) -> None:
        self.left = n
        self.done = done

    async def receive(self, message: Any) -> None:
        self.left -= 1
        if not self.left:
            self.done.set()


class _Source(Actor):
    def __init__(self, sink: ActorRef, n: int) -> None:
        self.sink = sink
        self.n = n

    async def receive(self, message: Any) -> None:
        tell = self.sink.tell
        for i in range(self.n):
            await tell(i)


async def _actors_one_way(pairs: int, total: int) -> float:
    per_pair = total // pairs
    async with ActorSystem() as system:
        done = [anyio.Event() for _ in range(pairs)]
        sources = []
        for i in range(pairs):
            sink = await system.spawn(_Sink, per_pair, done[i])
            sources.append(await system.spawn(_Source, sink, per_pair))
        start = time.perf_counter()
        for source in sources:
            await source.tell("go")
        for event in done:
            await event.wait()
        elapsed = time.perf_counter() - start
    return per_pair * pairs / elapsed


async def _queue_one_way(n: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue(1000)

    async def produce() -> None:
        for i in range(n):
            await queue.put(i)

    start = time.perf_counter()
    task = asyncio.ensure_future(produce())
    for _ in range(n):
        await queue.get()
    await task
    return n / (time.perf_counter() - start)


async def _trio_nowait(n: int) -> float:
    send, receive = trio.open_memory_channel[int](1000)

    async def produce() -> None:
        for i in range(n):
            try:
                send.send_nowait(i)
            except trio.WouldBlock:
                await send.send(i)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        for _ in range(n):
            try:
                receive.receive_nowait()
            except trio.WouldBlock:
                await receive.receive()
    return n / (time.perf_counter() - start)


async def _anyio_one_way(n: int) -> float:
    send, receive = anyio.create_memory_object_stream[int](1000)

    async def produce() -> None:
        for i in range(n):
            await send.send(i)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        for _ in range(n):
            await receive.receive()
    return n / (time.perf_counter() - start)


# -- ask ----------------------------------------------------------------------


class _Echo(Actor):
    async def receive(self, message: Any) -> Any:
        return message


async def _actors_ask(n: int) -> float:
    async with ActorSystem() as system:
        echo = await system.spawn(_Echo)
        ask = echo.ask
        start = time.perf_counter()
        for i in range(n):
            await ask(i)
        elapsed = time.perf_counter() - start
    return elapsed / n * 1e6


async def _queue_ask(n: int) -> float:
    requests: asyncio.Queue[tuple[int, asyncio.Future[int]]] = asyncio.Queue(1000)
    loop = asyncio.get_running_loop()

    async def serve() -> None:
        while True:
            value, future = await requests.get()
            future.set_result(value)

    server = asyncio.ensure_future(serve())
    start = time.perf_counter()
    for i in range(n):
        future = loop.create_future()
        await requests.put((i, future))
        await future
    elapsed = time.perf_counter() - start
    server.cancel()
    return elapsed / n * 1e6


# -- idle actors (each run in a fresh interpreter) ------------------------------


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _idle_actors(n: int) -> dict[str, float]:
    async with ActorSystem() as system:
        before = _rss()
        start = time.perf_counter()
        refs = [await system.spawn(Actor) for _ in range(n)]
        spawned = time.perf_counter()
        after = _rss()
        for ref in reversed(refs):
            await ref.stop()
        stopped = time.perf_counter()
    return {
        "us_per_actor": (stopped - start) / n * 1e6,
        "spawn_us": (spawned - start) / n * 1e6,
        "rss_per_actor": (after - before) / n,
    }


async def _idle_tasks(n: int) -> dict[str, float]:
    async def idle(queue: asyncio.Queue[None]) -> None:
        await queue.get()

    before = _rss()
    start = time.perf_counter()
    queues: list[asyncio.Queue[None]] = []
    tasks = []
    for _ in range(n):
        queue: asyncio.Queue[None] = asyncio.Queue()
        queues.append(queue)
        tasks.append(asyncio.ensure_future(idle(queue)))
    await asyncio.sleep(0)  # let every task start and block, as spawn does
    spawned = time.perf_counter()
    after = _rss()
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    stopped = time.perf_counter()
    return {
        "us_per_actor": (stopped - start) / n * 1e6,
        "spawn_us": (spawned - start) / n * 1e6,
        "rss_per_actor": (after - before) / n,
    }


def _in_child(kind: str, backend: Backend, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.actors", "--child", kind, backend, str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def _child_main(kind: str, backend: str, n: int) -> None:
    fn: Callable[[int], Awaitable[dict[str, float]]] = (
        _idle_actors if kind == "actors" else _idle_tasks
    )
    print(json.dumps(anyio.run(fn, n, backend=backend)))


# -- driver -------------------------------------------------------------------


def measure(backends: list[Backend], runs: int, size: dict[str, int]) -> Recorder:
    rec = Recorder()
    n, m, k, total = size["one_way"], size["ask"], size["idle"], size["pairs"]
    for _ in range(runs):
        for backend in backends:
            rec.add((backend, "one_way", "actors"), run_on(backend, partial(_actors_one_way, 1, n)))
            rec.add(
                (backend, "one_way", "anyio stream"), run_on(backend, partial(_anyio_one_way, n))
            )
            rec.add(("asyncio", "one_way", "asyncio.Queue@" + backend), _queue(n))
            if backend == "trio":
                rec.add(
                    ("trio", "one_way", "trio nowait"), run_on("trio", partial(_trio_nowait, n))
                )
            rec.add((backend, "ask", "actors"), run_on(backend, partial(_actors_ask, m)))
            rec.add((backend, "ask", "queue future"), run_on("asyncio", partial(_queue_ask, m)))
            idle = _in_child("actors", backend, k)
            base = _in_child("tasks", "asyncio", k)
            for key in ("us_per_actor", "rss_per_actor"):
                rec.add((backend, "idle", key), idle[key])
                rec.add((backend, "idle-base", key), base[key])
            for pairs in PAIRS:
                rec.add(
                    (backend, "pairs", pairs),
                    run_on(backend, partial(_actors_one_way, pairs, total)),
                )
    return rec


def _queue(n: int) -> float:
    return run_on("asyncio", partial(_queue_one_way, n))


def report(rec: Recorder, backends: list[Backend], runs: int) -> dict[str, object]:
    rows: list[list[str]] = []
    results: dict[str, object] = {"machine": machine(), "runs": runs, "workloads": {}}
    workloads: dict[str, object] = {}

    def row(
        backend: str, what: str, ours: float, base: float, unit: str, target: Target, ratio: float
    ) -> None:
        verdict = "PASS" if target.met(_single(ratio)) else "MISS"
        rows.append(
            [
                backend,
                what,
                f"{_fmt(ours)} {unit}",
                f"{_fmt(base)} {unit}",
                format_ratio(ratio) + "x",
                str(target),
                verdict,
            ]
        )
        workloads[f"{backend}/{what}"] = {
            "ours": ours,
            "baseline": base,
            "unit": unit,
            "ratio": ratio,
            "target": str(target),
            "met": verdict == "PASS",
        }

    for backend in backends:
        ours = rec.spread((backend, "one_way", "actors"))
        queue = rec.spread(("asyncio", "one_way", "asyncio.Queue@" + backend))
        stream = rec.spread((backend, "one_way", "anyio stream"))
        if backend == "asyncio":
            row(
                backend,
                "one-way vs asyncio.Queue",
                ours.median,
                queue.median,
                "msg/s",
                Target(">=", 0.5),
                ours.ratio(queue).median,
            )
        else:
            fast = rec.spread(("trio", "one_way", "trio nowait"))
            row(
                backend,
                "one-way vs trio nowait",
                ours.median,
                fast.median,
                "msg/s",
                Target(">=", 0.5),
                ours.ratio(fast).median,
            )
            row(
                backend,
                "one-way vs asyncio.Queue",
                ours.median,
                queue.median,
                "msg/s",
                Target(">=", 0.5),
                ours.ratio(queue).median,
            )
        row(
            backend,
            "one-way vs anyio stream",
            ours.median,
            stream.median,
            "msg/s",
            Target(">=", 2.0),
            ours.ratio(stream).median,
        )
        ask = rec.spread((backend, "ask", "actors"))
        qask = rec.spread((backend, "ask", "queue future"))
        row(
            backend,
            "ask round trip vs Queue+future",
            ask.median,
            qask.median,
            "µs",
            Target("<=", 2.0),
            ask.ratio(qask).median,
        )
        us = rec.spread((backend, "idle", "us_per_actor"))
        base_us = rec.spread((backend, "idle-base", "us_per_actor"))
        row(
            backend,
            "spawn+stop vs bare tasks",
            us.median,
            base_us.median,
            "µs/actor",
            Target("<=", 2.0),
            us.ratio(base_us).median,
        )
        rss = rec.spread((backend, "idle", "rss_per_actor"))
        base_rss = rec.spread((backend, "idle-base", "rss_per_actor"))
        rows.append(
            [
                backend,
                "RSS per idle actor (target ≤ 6144 B)",
                f"{rss.median:,.0f} B",
                f"{base_rss.median:,.0f} B",
                format_ratio(rss.median / base_rss.median) + "x",
                "≤ 6144 B",
                "PASS" if rss.median <= 6144 else "MISS",
            ]
        )
        workloads[f"{backend}/rss"] = {
            "ours": rss.median,
            "baseline": base_rss.median,
            "unit": "B",
            "met": rss.median <= 6144,
        }
        one = rec.spread((backend, "pairs", 1))
        for pairs in PAIRS[1:]:
            many = rec.spread((backend, "pairs", pairs))
            row(
                backend,
                f"{pairs} pairs vs 1 pair",
                many.median,
                one.median,
                "msg/s",
                Target(">=", 0.5),
                many.ratio(one).median,
            )
    print(
        format_table(
            ["backend", "workload", "ours", "baseline", "ratio", "target", ""],
            rows,
            right=(2, 3, 4),
        )
    )
    results["workloads"] = workloads
    return results


def _single(value: float) -> Any:
    from ._util import Spread

    return Spread.of([value])


def _fmt(value: float) -> str:
    return format_rate(value) if value >= 100 else f"{value:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.actors", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=["asyncio", "trio", "both"], default="both")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, backend, n = args.child
        _child_main(kind, backend, int(n))
        return
    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    size = QUICK if args.quick else FULL
    rec = measure(backends, args.runs, size)
    print(f"actors benchmark, medians of {args.runs} runs; {machine()}")
    results = report(rec, backends, args.runs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
