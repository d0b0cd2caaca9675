"""Actor messaging, ask latency and idle-actor cost beside the raw substrate.

Usage: ``python -m benchmarks.actors [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

Workloads, each on both backends with its baselines in the same run:

- one-way: an actor tells another 200,000 messages; baselines: one task
  feeding another through ``asyncio.Queue(1000)`` (on asyncio), trio's memory
  channel with the ``*_nowait`` fast path (on trio), and anyio's memory stream.
- ask: 20,000 round trips to an echo actor (default 5 s timeout); baseline: a
  future-based ask over ``asyncio.Queue`` (a request carries a future the
  server resolves); on trio also its twin, a trio memory channel whose
  request carries the asking task for the server to reschedule.
- idle: 100,000 actors spawned, then stopped, in a fresh interpreter each run:
  µs per actor and resident memory per idle actor. As the baselines do it
  (``spawn_nowait`` all, then ``stop_nowait`` all and await each), against
  as many bare asyncio tasks each waiting on its own ``asyncio.Queue`` (on
  trio also trio tasks on memory channels); and awaited one at a time
  (``await spawn``, ``await stop``) against bare tasks whose start and end
  are each awaited, one at a time (the floor of that shape: two loop round
  trips per task).
- pairs: the one-way figure with 1, 10, 100 and 1,000 sender/receiver pairs
  at once, the same 200,000 messages in total (the goal: flat).

Targets are printed as PASS or MISS; a miss never changes the exit status.
On trio the targets take trio's own substrate (as the suite does); the
asyncio yardsticks are shown beside them without a target.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import trio
import trio.testing

from actors import Actor, ActorSystem

from ._pairs import Sink, Source
from ._util import (
    Backend,
    Recorder,
    Spread,
    Target,
    format_rate,
    format_ratio,
    format_table,
    idle_figures,
    in_child,
    machine,
    parse_args,
    run_on,
    write_json,
)

FULL = {"one_way": 200_000, "ask": 20_000, "idle": 100_000, "pairs": 200_000}
QUICK = {"one_way": 20_000, "ask": 2_000, "idle": 5_000, "pairs": 100_000}
PAIRS = (1, 10, 100, 1000)


# -- one-way ------------------------------------------------------------------


async def _actors_one_way(pairs: int, total: int) -> float:
    per_pair = total // pairs
    async with ActorSystem() as system:
        done = [anyio.Event() for _ in range(pairs)]
        sources = []
        for i in range(pairs):
            sink = await system.spawn(Sink, per_pair, done[i])
            sources.append(await system.spawn(Source, sink, per_pair))
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


async def _trio_ask(n: int) -> float:
    """The trio twin of the Queue + future ask: a request carries the asking
    task, which the server reschedules once the answer is in its box."""
    send, receive = trio.open_memory_channel[tuple[int, list[int], Any]](1000)

    async def serve() -> None:
        while True:
            try:
                value, box, task = receive.receive_nowait()
            except trio.WouldBlock:
                value, box, task = await receive.receive()
            box.append(value)
            trio.lowlevel.reschedule(task)

    def abort(_: Any) -> Any:
        return trio.lowlevel.Abort.SUCCEEDED

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        start = time.perf_counter()
        for i in range(n):
            box: list[int] = []
            send.send_nowait((i, box, trio.lowlevel.current_task()))
            await trio.lowlevel.wait_task_rescheduled(abort)
            if box != [i]:
                raise RuntimeError(f"trio ask answered {box}, not [{i}]")
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed / n * 1e6


# -- idle actors (each run in a fresh interpreter) ------------------------------


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _all_started() -> None:
    # What the bare-task baselines wait on: asyncio runs every new task's first
    # step, in order, before this one resumes; trio's order is random.
    if asyncio._get_running_loop() is None:  # trio
        await trio.testing.wait_all_tasks_blocked()
    else:
        await asyncio.sleep(0)


async def _idle_actors(n: int) -> dict[str, float]:
    """Spawned and stopped without waiting for each: the baselines' shape."""
    async with ActorSystem() as system:
        before = _rss()
        start = time.perf_counter()
        refs = [system.spawn_nowait(Actor) for _ in range(n)]
        await _all_started()
        spawned = time.perf_counter()
        after = _rss()
        _check(sum(info.state == "running" for info in system.tree().walk()), n)
        stopping = time.perf_counter()
        for ref in refs:
            ref.stop_nowait()
        for ref in refs:
            await ref.stop()
        stopped = time.perf_counter()
        _check(system.statistics().actors, 0)
    return idle_figures(n, before, after, start, spawned, stopped - (stopping - spawned))


async def _idle_actors_awaited(n: int) -> dict[str, float]:
    """Each spawn and each stop awaited before the next."""
    async with ActorSystem() as system:
        before = _rss()
        start = time.perf_counter()
        refs = [await system.spawn(Actor) for _ in range(n)]
        spawned = time.perf_counter()
        after = _rss()
        for ref in reversed(refs):
            await ref.stop()
        stopped = time.perf_counter()
    return idle_figures(n, before, after, start, spawned, stopped)


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
    return idle_figures(n, before, after, start, spawned, stopped)


async def _idle_tasks_awaited(n: int) -> dict[str, float]:
    """The floor of an awaited spawn and stop: a bare task whose start and
    end are each awaited (one loop round trip each), one task at a time."""
    loop = asyncio.get_running_loop()

    async def idle(started: asyncio.Future[None], queue: asyncio.Queue[None]) -> None:
        started.set_result(None)
        await queue.get()

    before = _rss()
    start = time.perf_counter()
    held = []
    for _ in range(n):
        started = loop.create_future()
        queue: asyncio.Queue[None] = asyncio.Queue()
        task = asyncio.ensure_future(idle(started, queue))
        await started
        held.append((queue, task))
    spawned = time.perf_counter()
    after = _rss()
    for queue, task in reversed(held):
        queue.put_nowait(None)
        await task
    stopped = time.perf_counter()
    return idle_figures(n, before, after, start, spawned, stopped)


def _check(got: object, expected: object) -> None:
    if got != expected:
        raise RuntimeError(f"idle actors: {got!r}, not {expected!r}")


IDLE_KINDS: dict[str, Callable[[int], Awaitable[dict[str, float]]]] = {
    "actors": _idle_actors,
    "actors-awaited": _idle_actors_awaited,
    "tasks": _idle_tasks,
    "tasks-awaited": _idle_tasks_awaited,
}


def _child_main(kind: str, backend: str, n: int) -> None:
    print(json.dumps(anyio.run(IDLE_KINDS[kind], n, backend=backend)))


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
            if backend == "trio":
                rec.add(("trio", "ask", "trio"), run_on("trio", partial(_trio_ask, m)))
            idle = in_child("benchmarks.actors", "actors", backend, str(k))
            base = in_child("benchmarks.actors", "tasks", "asyncio", str(k))
            awaited = in_child("benchmarks.actors", "actors-awaited", backend, str(k))
            floor = in_child("benchmarks.actors", "tasks-awaited", "asyncio", str(k))
            for key in ("us_per_actor", "rss_per_actor"):
                rec.add((backend, "idle", key), idle[key])
                rec.add((backend, "idle-base", key), base[key])
            rec.add((backend, "idle-awaited", "us_per_actor"), awaited["us_per_actor"])
            rec.add((backend, "idle-floor", "us_per_actor"), floor["us_per_actor"])
            if backend == "trio":
                trio_base = in_child("benchmarks.baselines", "trio-tasks", "trio", str(k))
                rec.add(("trio", "idle-trio", "us_per_actor"), trio_base["us_per_actor"])
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
        backend: str, what: str, ours: Spread, base: Spread, unit: str, target: Target | None
    ) -> None:
        # No target: a yardstick on the other backend, shown for comparison.
        ratio = ours.ratio(base)
        verdict = "" if target is None else "PASS" if target.met(ratio) else "MISS"
        rows.append(
            [
                backend,
                what,
                f"{_fmt(ours.median)} {unit}",
                f"{_fmt(base.median)} {unit}",
                format_ratio(ratio.median) + "x",
                "" if target is None else str(target),
                verdict,
            ]
        )
        workloads[f"{backend}/{what}"] = {
            "ours": ours.median,
            "baseline": base.median,
            "unit": unit,
            "ratio": ratio.median,
            "target": None if target is None else str(target),
            "met": None if target is None else verdict == "PASS",
        }

    for backend in backends:
        ours = rec.spread((backend, "one_way", "actors"))
        queue = rec.spread(("asyncio", "one_way", "asyncio.Queue@" + backend))
        stream = rec.spread((backend, "one_way", "anyio stream"))
        if backend == "asyncio":
            row(backend, "one-way vs asyncio.Queue", ours, queue, "msg/s", Target(">=", 0.5))
        else:
            fast = rec.spread(("trio", "one_way", "trio nowait"))
            row(backend, "one-way vs trio nowait", ours, fast, "msg/s", Target(">=", 0.5))
            row(backend, "one-way vs asyncio.Queue", ours, queue, "msg/s", None)
        row(backend, "one-way vs anyio stream", ours, stream, "msg/s", Target(">=", 2.0))
        ask = rec.spread((backend, "ask", "actors"))
        qask = rec.spread((backend, "ask", "queue future"))
        if backend == "trio":
            task = rec.spread(("trio", "ask", "trio"))
            row(
                backend,
                "ask round trip vs trio channel+reschedule",
                ask,
                task,
                "µs",
                Target("<=", 2.0),
            )
        row(
            backend,
            "ask round trip vs Queue+future",
            ask,
            qask,
            "µs",
            None if backend == "trio" else Target("<=", 2.0),
        )
        us = rec.spread((backend, "idle", "us_per_actor"))
        base_us = rec.spread((backend, "idle-base", "us_per_actor"))
        if backend == "trio":
            trio_us = rec.spread(("trio", "idle-trio", "us_per_actor"))
            row(
                backend,
                "spawn+stop (nowait) vs trio tasks",
                us,
                trio_us,
                "µs/actor",
                Target("<=", 2.0),
            )
        row(
            backend,
            "spawn+stop (nowait) vs asyncio tasks",
            us,
            base_us,
            "µs/actor",
            None if backend == "trio" else Target("<=", 2.0),
        )
        awaited = rec.spread((backend, "idle-awaited", "us_per_actor"))
        floor = rec.spread((backend, "idle-floor", "us_per_actor"))
        row(
            backend,
            "spawn+stop awaited vs asyncio tasks awaited",
            awaited,
            floor,
            "µs/actor",
            None,  # two loop trips per actor: see the docstring
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
            row(backend, f"{pairs} pairs vs 1 pair", many, one, "msg/s", Target(">=", 0.5))
    print(
        format_table(
            ["backend", "workload", "ours", "baseline", "ratio", "target", ""],
            rows,
            right=(2, 3, 4),
        )
    )
    results["workloads"] = workloads
    return results


def _fmt(value: float) -> str:
    return format_rate(value) if value >= 100 else f"{value:.1f}"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:  # one idle-actor measurement, in a fresh interpreter
        kind, backend, n = argv[1:]
        _child_main(kind, backend, int(n))
        return
    args, backends = parse_args(
        "actors",
        __doc__,
        "a tenth of the messages and asks, 5,000 idle actors, half the messages over the pairs",
        argv,
    )
    size = QUICK if args.quick else FULL
    rec = measure(backends, args.runs, size)
    print(f"actors benchmark, medians of {args.runs} runs; {machine()}")
    results = report(rec, backends, args.runs)
    if args.json is not None:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
