"""Topic delivery: fan-out, matching cost as subscriptions grow, point-to-point.

Usage: ``python -m benchmarks.topics [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

Workloads, each on both backends with its baselines in the same run:

- fan-out: one publisher, 100 subscriber actors, 10,000 messages published
  (1,000,000 deliveries), until every subscriber has handled all of them;
  baselines: the same 1,000,000 raw ``Channel(1000).send`` calls in a loop to
  100 consumer tasks, and 100 ``asyncio.Queue(1000)`` fed the same way (always
  on asyncio: it is the yardstick the targets name).
- matching: 50,000 publishes to concrete topics, each reaching one
  subscriber, with 10,000 subscriptions of mixed patterns installed versus
  10: "hot" cycles over 100 topics (the per-topic cache answers), "cold" over
  10,000 distinct topics (every lookup misses the cache and walks the trie).
  The ratio shows how the cost grows with the number of subscriptions.
- point-to-point: 4 actors in one group, 100,000 messages; baseline: one
  ``Channel(1000)`` drained by 4 consumer tasks.

Every run of every workload gets a fresh event loop; runs are interleaved and
ratios are taken run by run. Targets are printed as PASS or MISS; a miss
never changes the exit status.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio

from actors import Actor, ActorSystem, Channel

from ._util import (
    Backend,
    Recorder,
    Spread,
    Target,
    format_rate,
    format_ratio,
    format_spread,
    format_table,
    machine,
    parse_args,
    run_on,
    write_json,
)

SUBSCRIBERS = 100
CONSUMERS = 4
FEW, MANY = 10, 10_000
HOT_TOPICS, COLD_TOPICS = 100, 10_000


@dataclass(frozen=True)
class Size:
    fan_out: int  # messages published to 100 subscribers
    matching: int  # publishes per matching run
    p2p: int  # messages shared by 4 consumers


FULL = Size(10_000, 50_000, 100_000)
QUICK = Size(1_000, 5_000, 10_000)


class _Counter(Actor):
    """Counts messages; calls ``done`` at the ``n``-th."""

    def __init__(self, n: int, done: Callable[[], None]) -> None:
        self.left = n
        self.done = done

    async def receive(self, message: Any) -> None:
        self.left -= 1
        if not self.left:
            self.done()


class _Idle(Actor):
    async def receive(self, message: Any) -> None:
        pass


def _countdown(n: int) -> tuple[anyio.Event, Callable[[], None]]:
    event = anyio.Event()
    left = [n]

    def done() -> None:
        left[0] -= 1
        if not left[0]:
            event.set()

    return event, done


# -- fan-out ------------------------------------------------------------------
# Each returns deliveries per second.


async def _fan_out_topics(n: int) -> float:
    async with ActorSystem() as system:
        finished, done = _countdown(SUBSCRIBERS)
        for _ in range(SUBSCRIBERS):
            ref = await system.spawn(_Counter, n, done)
            system.subscribe("bench.fan_out", ref)
        publish = system.publish
        start = time.perf_counter()
        for i in range(n):
            await publish("bench.fan_out", i)
        await finished.wait()
        elapsed = time.perf_counter() - start
    return n * SUBSCRIBERS / elapsed


async def _drain_channel(channel: Channel[int], n: int) -> None:
    receive = channel.receive
    for _ in range(n):
        await receive()


async def _fan_out_channels(n: int) -> float:
    channels = [Channel[int](1000) for _ in range(SUBSCRIBERS)]
    sends = [channel.send for channel in channels]
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for channel in channels:
            tg.start_soon(_drain_channel, channel, n)
        for i in range(n):
            for send in sends:
                await send(i)
    return n * SUBSCRIBERS / (time.perf_counter() - start)


async def _drain_queue(queue: asyncio.Queue[int], n: int) -> None:
    get = queue.get
    for _ in range(n):
        await get()


async def _fan_out_queues(n: int) -> float:
    queues = [asyncio.Queue[int](1000) for _ in range(SUBSCRIBERS)]
    puts = [queue.put for queue in queues]
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(_drain_queue(queue, n)) for queue in queues]
    for i in range(n):
        for put in puts:
            await put(i)
    await asyncio.gather(*tasks)
    return n * SUBSCRIBERS / (time.perf_counter() - start)


# -- matching -----------------------------------------------------------------


def mixed_patterns(count: int) -> list[str]:
    """``count`` patterns none of which matches ``bench.t<j>.created``, but
    which share its tokens and wildcards, so the trie has real branches."""
    patterns: list[str] = []
    j = 0
    while len(patterns) < count:
        patterns += [
            f"bench.t{j}.updated",
            f"bench.t{j}.*.x",
            f"svc{j}.>",
            f"*.t{j}.shipped",
            f"svc{j}.*.created",
            f"bench.t{j}.created.late",
            f"x{j}",
            f"bench.*.d{j}",
        ]
        j += 1
    return patterns[:count]


async def _matching(subscriptions: int, topics: int, n: int) -> float:
    """Publishes per second; every publish reaches the one sink."""
    names = [f"bench.t{j % topics}.created" for j in range(n)]
    async with ActorSystem() as system:
        finished, done = _countdown(1)
        sink = await system.spawn(_Counter, n, done)
        system.subscribe("bench.*.created", sink)
        holders = [await system.spawn(_Idle) for _ in range(10)]
        for index, pattern in enumerate(mixed_patterns(subscriptions - 1)):
            system.subscribe(pattern, holders[index % len(holders)])
        publish = system.publish
        start = time.perf_counter()
        for name in names:
            await publish(name, None)
        await finished.wait()
        elapsed = time.perf_counter() - start
    return n / elapsed


# -- point-to-point -----------------------------------------------------------


async def _p2p_topics(n: int) -> float:
    async with ActorSystem() as system:
        finished, done = _countdown(CONSUMERS)
        for _ in range(CONSUMERS):
            ref = await system.spawn(_Counter, n // CONSUMERS, done)
            system.subscribe("bench.jobs", ref, group="workers")
        publish = system.publish
        start = time.perf_counter()
        for i in range(n):
            await publish("bench.jobs", i)
        await finished.wait()
        elapsed = time.perf_counter() - start
    return n / elapsed


async def _p2p_channel(n: int) -> float:
    channel = Channel[int](1000)
    send = channel.send
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(CONSUMERS):
            tg.start_soon(_drain_channel, channel, n // CONSUMERS)
        for i in range(n):
            await send(i)
    return n / (time.perf_counter() - start)


# -- measuring ----------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    run: Callable[[Size], Awaitable[float]]
    unit: str
    #: Where it runs: ``None`` for the backend of the table it appears in.
    backend: Backend | None = None


def _workloads() -> list[Workload]:
    def fixed(fn: Callable[[int], Awaitable[float]], field: str) -> Any:
        return lambda size: fn(getattr(size, field))

    def matching(subscriptions: int, topics: int) -> Any:
        return lambda size: _matching(subscriptions, topics, size.matching)

    return [
        Workload("fan_out", "fan-out: topics, 100 actors", fixed(_fan_out_topics, "fan_out"), "d"),
        Workload(
            "fan_out_channel",
            "fan-out: raw Channel.send, 100 tasks",
            fixed(_fan_out_channels, "fan_out"),
            "d",
        ),
        Workload(
            "fan_out_queue",
            "fan-out: 100 asyncio.Queue (on asyncio)",
            fixed(_fan_out_queues, "fan_out"),
            "d",
            backend="asyncio",
        ),
        Workload("hot_few", f"matching, hot: {FEW} subscriptions", matching(FEW, HOT_TOPICS), "p"),
        Workload(
            "hot_many", f"matching, hot: {MANY:,} subscriptions", matching(MANY, HOT_TOPICS), "p"
        ),
        Workload(
            "cold_few", f"matching, cold: {FEW} subscriptions", matching(FEW, COLD_TOPICS), "p"
        ),
        Workload(
            "cold_many",
            f"matching, cold: {MANY:,} subscriptions",
            matching(MANY, COLD_TOPICS),
            "p",
        ),
        Workload("p2p", "point-to-point: group of 4 actors", fixed(_p2p_topics, "p2p"), "m"),
        Workload(
            "p2p_channel", "point-to-point: Channel, 4 tasks", fixed(_p2p_channel, "p2p"), "m"
        ),
    ]


UNITS = {"d": "deliveries/s", "p": "publishes/s", "m": "messages/s"}


def _measure_once(recorder: Recorder, backend: Backend, size: Size, record: bool = True) -> None:
    for workload in _workloads():
        where = workload.backend or backend
        rate = run_on(where, partial(workload.run, size))
        if record:
            recorder.add((backend, workload.key), rate)


def measure(backends: list[Backend], runs: int, size: Size) -> Recorder:
    """Run every workload ``runs`` times per backend, interleaved."""
    recorder = Recorder()
    for backend in backends:
        _measure_once(recorder, backend, QUICK, record=False)  # warm up
    for run in range(runs):
        for backend in backends:
            print(f"run {run + 1}/{runs}: {backend}", file=sys.stderr, flush=True)
            _measure_once(recorder, backend, size)
    return recorder


# -- reporting ----------------------------------------------------------------


RATIOS = [
    ("fan-out: topics / raw Channel.send", "fan_out", "fan_out_channel", Target(">=", 0.5)),
    ("fan-out: topics / asyncio.Queue", "fan_out", "fan_out_queue", Target(">=", 0.4)),
    (f"matching, hot: {MANY:,} / {FEW} subscriptions", "hot_many", "hot_few", Target(">=", 0.5)),
    (
        f"matching, cold: {MANY:,} / {FEW} subscriptions",
        "cold_many",
        "cold_few",
        Target(">=", 0.5),
    ),
    ("point-to-point: topics / Channel", "p2p", "p2p_channel", None),
]


def _ratio(recorder: Recorder, backend: Backend, ours: str, theirs: str) -> Spread:
    return recorder.spread((backend, ours)).ratio(recorder.spread((backend, theirs)))


def report(recorder: Recorder, backends: list[Backend], runs: int, size: Size) -> dict[str, Any]:
    """Print the tables and return the same results as JSON-ready data."""
    info = machine()
    print(
        f"actors topics benchmark, {info['date']}\n"
        f"{info['python']}, {info['platform']}, {info['cpu']}, {info['cpus']} CPUs, "
        f"load {info['load_average']}; anyio {info['anyio']}, trio {info['trio']}\n"
        f"fan-out {size.fan_out:,} messages x {SUBSCRIBERS} subscribers, matching "
        f"{size.matching:,} publishes, point-to-point {size.p2p:,} messages; "
        f"median of {runs} run{'s' if runs != 1 else ''}, spread min-max"
    )
    results: dict[str, Any] = {}
    for backend in backends:
        print(f"\n== {backend} ==\n")
        rows = []
        for workload in _workloads():
            median, spread = format_spread(recorder.spread((backend, workload.key)), format_rate)
            rows.append([workload.label, UNITS[workload.unit], median, spread])
        print(format_table(["workload", "unit", "median", "spread"], rows, right=(2, 3)))
        ratio_rows = []
        ratios_json = []
        for label, ours, theirs, target in RATIOS:
            value = _ratio(recorder, backend, ours, theirs)
            verdict = "" if target is None else ("PASS" if target.met(value) else "MISS")
            ratio_rows.append(
                [label, *format_spread(value, format_ratio, "x"), str(target or ""), verdict]
            )
            ratios_json.append(
                {
                    "label": label,
                    **value.as_json(),
                    "target": str(target) if target else None,
                    "passed": target.met(value) if target else None,
                }
            )
        print()
        print(
            format_table(
                ["ratio", "median", "spread", "target", "result"], ratio_rows, right=(1, 2)
            )
        )
        results[backend] = {
            "measurements": {
                w.key: recorder.spread((backend, w.key)).as_json() for w in _workloads()
            },
            "ratios": ratios_json,
        }
    return {"machine": info, "runs": runs, "size": size.__dict__, "backends": results}


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args(
        "topics",
        __doc__,
        "a tenth of the messages",
        argv,
    )
    size = QUICK if args.quick else FULL
    recorder = measure(backends, args.runs, size)
    results = report(recorder, backends, args.runs, size)
    if args.json is not None:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
