"""Channels across the process boundary: values per second through an end.

Usage: ``python -m benchmarks.process_channel [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

A ``Channel(capacity)`` of this process, handed to an actor in a child
process (``placement=actors.Subprocess()``), on both backends:

- send: the child's actor sends ``n`` ints into the channel (a send spends
  one of ``capacity`` credits; the owner returns it when the value enters
  the channel), and this process receives them until the channel is closed;
- receive: this process sends ``n`` ints and closes; the child's actor
  receives them (a receive at an end is one round trip to the owner per
  value) and reports its count.

The yardstick: the same channel and the same ``n`` between two tasks of one
process. Spawning the child is not timed. No targets: the figures say what a
channel across the boundary costs, for the guide.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from typing import cast

import anyio

import actors
from actors.testing import TestProbe

from ._channel_actors import Consumer, Producer
from ._util import (
    Backend,
    Recorder,
    format_rate,
    format_ratio,
    format_spread,
    format_table,
    machine,
    parse_args,
    run_on,
    write_json,
)

#: The capacities measured.
CAPACITIES = (8, 256)
#: Values per run: sends, receives (a round trip each), and the local yardstick.
FULL = (100_000, 5_000)
QUICK = (10_000, 1_000)


async def _remote(capacity: int, sends: int, receives: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with actors.ActorSystem() as system:
        producer = await system.spawn(Producer, placement=actors.Subprocess())
        consumer = await system.spawn(Consumer, placement=actors.Subprocess())
        probe = await TestProbe.start(system)
        channel = actors.Channel[int](capacity)
        start = time.perf_counter()
        await producer.tell(("produce", channel, sends))
        count = 0
        async for _ in channel:
            count += 1
        figures["send"] = sends / (time.perf_counter() - start)
        assert count == sends
        channel = actors.Channel[int](capacity)
        start = time.perf_counter()
        await consumer.tell(("consume", channel, probe.ref))
        for i in range(receives):
            await channel.send(i)
        channel.close()
        assert await probe.receive(600) == receives
        figures["receive"] = receives / (time.perf_counter() - start)
    return figures


async def _local(capacity: int, n: int) -> float:
    channel = actors.Channel[int](capacity)

    async def produce() -> None:
        for i in range(n):
            await channel.send(i)
        channel.close()

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        async for _ in channel:
            pass
    return n / (time.perf_counter() - start)


def measure(backends: list[Backend], runs: int, sizes: tuple[int, int]) -> Recorder:
    recorder = Recorder()
    for run in range(runs):
        print(f"run {run + 1}/{runs}", file=sys.stderr, flush=True)
        for backend in backends:
            for capacity in CAPACITIES:
                remote = run_on(backend, partial(_remote, capacity, *sizes))
                local = run_on(backend, partial(_local, capacity, sizes[0]))
                for what, rate in remote.items():
                    recorder.add((backend, capacity, what), rate)
                    recorder.add((backend, capacity, what, "ratio"), rate / local)
                recorder.add((backend, capacity, "local"), local)
    return recorder


def report(recorder: Recorder, backends: list[Backend]) -> None:
    header = ["backend", "capacity", "workload", "values/s", "spread", "/ local"]
    rows = []
    for backend in backends:
        for capacity in CAPACITIES:
            for what, label in (
                ("send", "a child sends into a channel here"),
                ("receive", "a child receives from a channel here"),
                ("local", "two tasks of one process (yardstick)"),
            ):
                ratio = ""
                if what != "local":
                    ratio = format_ratio(recorder.spread((backend, capacity, what, "ratio")).median)
                    ratio += "x"
                rate = recorder.spread((backend, capacity, what))
                rows.append(
                    [backend, str(capacity), label, *format_spread(rate, format_rate), ratio]
                )
    print(format_table(header, rows, right=(1, 3, 4, 5)))


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args(
        "process_channel",
        __doc__ or "",
        f"{QUICK[0]:,} sends and {QUICK[1]:,} receives instead of {FULL[0]:,} and {FULL[1]:,}",
        argv,
    )
    sizes = QUICK if args.quick else FULL
    recorder = measure(backends, args.runs, sizes)
    info = machine()
    print(f"{info['cpu']}, {info['cpus']} cpus, load {info['load_average']}, {info['python']}")
    report(recorder, backends)
    if args.json:
        write_json(
            args.json,
            {
                "machine": info,
                "results": {
                    "/".join(str(part) for part in cast("tuple[object, ...]", key)): (
                        recorder.spread(key).as_json()
                    )
                    for key in recorder.samples
                },
            },
        )


if __name__ == "__main__":
    main()
