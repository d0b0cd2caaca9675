"""Channel throughput and ping-pong latency beside anyio, asyncio and trio.

Usage: ``python -m benchmarks.channel [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

For each backend, one producer task and one consumer task pass integers
through ``Channel(0)``, ``Channel(1)`` and ``Channel(1000)`` (messages per
second); two tasks bounce a value over two rendezvous channels (µs per round
trip); and many tasks parked on two rendezvous channels, half sending and half
receiving, are cancelled at once (µs per task, from the cancel until the last
one is gone: the channel's share is taking each one out of its queue). The
same workloads run in the same process through
``anyio.create_memory_object_stream``, ``asyncio.Queue`` (always on asyncio:
it is the yardstick the targets name) and, on trio, ``trio.open_memory_channel``
both with ``await send/receive`` and with the ``*_nowait`` fast path. Every
run of every workload gets a fresh event loop; the runs of the implementations
are interleaved, and ratios are taken run by run, so drift in the machine
hits both sides of a ratio alike.

Targets are printed as PASS or MISS; a miss never changes the exit status.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import anyio
import trio

from actors import Channel

from ._util import (
    Backend,
    Recorder,
    Spread,
    Target,
    format_micros,
    format_rate,
    format_ratio,
    format_spread,
    format_table,
    load_average,
    machine,
    parse_args,
    run_on,
    write_json,
)

CAPACITIES = (0, 1, 1000)
MESSAGES = 200_000
ROUND_TRIPS = 20_000
QUICK_MESSAGES = 20_000
QUICK_ROUND_TRIPS = 2_000
#: Parked tasks cancelled at once (half senders, half receivers): enough that
#: a queue whose removal is O(n) shows it, since the time is the cancelling.
CANCELLED = 80_000
QUICK_CANCELLED = 20_000

Send = Callable[[int], Awaitable[None]]
Receive = Callable[[], Awaitable[int]]
#: Builds one channel of the given capacity inside the running event loop.
Factory = Callable[[int], tuple[Send, Receive]]


# -- the workloads ------------------------------------------------------------
# Each returns the seconds it took, timed inside the event loop. The generic
# loops call bound methods, so no implementation pays for a wrapper frame; the
# trio fast path has loops of its own for the same reason.


def _check(last: int, n: int) -> None:
    if last != n - 1:
        raise RuntimeError(f"benchmark lost messages: last value {last}, not {n - 1}")


async def _produce(send: Send, n: int) -> None:
    for i in range(n):
        await send(i)


async def _consume(receive: Receive, n: int) -> None:
    value = -1
    for _ in range(n):
        value = await receive()
    _check(value, n)


async def _pipe(make: Factory, capacity: int, n: int) -> float:
    send, receive = make(capacity)
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_produce, send, n)
        tg.start_soon(_consume, receive, n)
    return time.perf_counter() - start


async def _ping(send: Send, receive: Receive, n: int) -> None:
    value = -1
    for i in range(n):
        await send(i)
        value = await receive()
    _check(value, n)


async def _pong(receive: Receive, send: Send, n: int) -> None:
    for _ in range(n):
        await send(await receive())


async def _ping_pong(make: Factory, n: int) -> float:
    ping_send, ping_receive = make(0)
    pong_send, pong_receive = make(0)
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_ping, ping_send, pong_receive, n)
        tg.start_soon(_pong, ping_receive, pong_send, n)
    return time.perf_counter() - start


async def _send_one(send: Send, value: int) -> None:
    await send(value)


async def _receive_one(receive: Receive) -> None:
    await receive()


async def _mass_cancel(make: Factory, n: int) -> float:
    # The unused ends stay referenced to the end, as in the other workloads:
    # anyio warns of a stream collected unclosed.
    to_senders, _receive = make(0)
    _send, to_receivers = make(0)
    async with anyio.create_task_group() as tg:
        for i in range(n // 2):
            tg.start_soon(_send_one, to_senders, i)
            tg.start_soon(_receive_one, to_receivers)
        await anyio.wait_all_tasks_blocked()
        start = time.perf_counter()
        tg.cancel_scope.cancel()
    return time.perf_counter() - start


def _ours(capacity: int) -> tuple[Send, Receive]:
    channel = Channel[int](capacity)
    return channel.send, channel.receive


def _anyio_stream(capacity: int) -> tuple[Send, Receive]:
    send, receive = anyio.create_memory_object_stream[int](capacity)
    return send.send, receive.receive


def _asyncio_queue(capacity: int) -> tuple[Send, Receive]:
    # maxsize=0 means unbounded to asyncio; the ping-pong asks for 0 and never
    # holds more than one value, so 1 behaves the same and says what it is.
    queue = asyncio.Queue[int](max(capacity, 1))
    return queue.put, queue.get


def _trio_channel(capacity: int) -> tuple[Send, Receive]:
    send, receive = trio.open_memory_channel[int](capacity)
    return send.send, receive.receive


async def _trio_produce_nowait(send: trio.MemorySendChannel[int], n: int) -> None:
    for i in range(n):
        try:
            send.send_nowait(i)
        except trio.WouldBlock:
            await send.send(i)


async def _trio_consume_nowait(receive: trio.MemoryReceiveChannel[int], n: int) -> None:
    value = -1
    for _ in range(n):
        try:
            value = receive.receive_nowait()
        except trio.WouldBlock:
            value = await receive.receive()
    _check(value, n)


async def _trio_pipe_nowait(capacity: int, n: int) -> float:
    send, receive = trio.open_memory_channel[int](capacity)
    start = time.perf_counter()
    async with anyio.create_task_group() as nursery:
        nursery.start_soon(_trio_produce_nowait, send, n)
        nursery.start_soon(_trio_consume_nowait, receive, n)
    return time.perf_counter() - start


async def _trio_ping_nowait(
    send: trio.MemorySendChannel[int], receive: trio.MemoryReceiveChannel[int], n: int
) -> None:
    value = -1
    for i in range(n):
        try:
            send.send_nowait(i)
        except trio.WouldBlock:
            await send.send(i)
        try:
            value = receive.receive_nowait()
        except trio.WouldBlock:
            value = await receive.receive()
    _check(value, n)


async def _trio_pong_nowait(
    receive: trio.MemoryReceiveChannel[int], send: trio.MemorySendChannel[int], n: int
) -> None:
    for _ in range(n):
        try:
            value = receive.receive_nowait()
        except trio.WouldBlock:
            value = await receive.receive()
        try:
            send.send_nowait(value)
        except trio.WouldBlock:
            await send.send(value)


async def _trio_ping_pong_nowait(n: int) -> float:
    ping_send, ping_receive = trio.open_memory_channel[int](0)
    pong_send, pong_receive = trio.open_memory_channel[int](0)
    start = time.perf_counter()
    async with anyio.create_task_group() as nursery:
        nursery.start_soon(_trio_ping_nowait, ping_send, pong_receive, n)
        nursery.start_soon(_trio_pong_nowait, ping_receive, pong_send, n)
    return time.perf_counter() - start


# -- the implementations ------------------------------------------------------


@dataclass(frozen=True)
class Impl:
    """One implementation of the workloads."""

    key: str
    label: str
    pipe: Callable[[int, int], Awaitable[float]]  # (capacity, messages) -> s
    ping_pong: Callable[[int], Awaitable[float]]  # round trips -> s
    #: Parked tasks -> s; ``None`` where it would repeat another row.
    mass_cancel: Callable[[int], Awaitable[float]] | None
    capacities: tuple[int, ...] = CAPACITIES
    #: Where it runs: ``None`` for the backend of the table it appears in.
    backend: Backend | None = None
    only_on: Backend | None = None


def _generic(
    key: str,
    label: str,
    make: Factory,
    capacities: tuple[int, ...] = CAPACITIES,
    backend: Backend | None = None,
    only_on: Backend | None = None,
) -> Impl:
    return Impl(
        key,
        label,
        partial(_pipe, make),
        partial(_ping_pong, make),
        partial(_mass_cancel, make),
        capacities,
        backend,
        only_on,
    )


IMPLS = (
    _generic("channel", "actors.Channel", _ours),
    _generic("anyio", "anyio memory object stream", _anyio_stream),
    # asyncio.Queue(0) is unbounded, not a rendezvous: nothing to compare.
    _generic(
        "queue",
        "asyncio.Queue (on asyncio)",
        _asyncio_queue,
        capacities=(1, 1000),
        backend="asyncio",
    ),
    _generic("trio", "trio memory channel", _trio_channel, only_on="trio"),
    Impl(
        "trio_nowait",
        "trio memory channel, *_nowait first",
        _trio_pipe_nowait,
        _trio_ping_pong_nowait,
        None,  # cancelling parked tasks involves no *_nowait call
        only_on="trio",
    ),
)


def _impls(backend: Backend) -> list[Impl]:
    return [i for i in IMPLS if i.only_on in (None, backend)]


# -- measuring ----------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    messages: int
    round_trips: int
    cancelled: int


def _measure_once(recorder: Recorder, backend: Backend, size: Size, record: bool = True) -> None:
    for impl in _impls(backend):
        where = impl.backend or backend
        for capacity in impl.capacities:
            seconds = run_on(where, partial(impl.pipe, capacity, size.messages))
            if record:
                recorder.add((backend, impl.key, capacity), size.messages / seconds)
        seconds = run_on(where, partial(impl.ping_pong, size.round_trips))
        if record:
            recorder.add((backend, impl.key, "ping"), seconds / size.round_trips * 1e6)
        if impl.mass_cancel is not None:
            seconds = run_on(where, partial(impl.mass_cancel, size.cancelled))
            if record:
                recorder.add((backend, impl.key, "cancel"), seconds / size.cancelled * 1e6)


def measure(backends: list[Backend], runs: int, size: Size) -> Recorder:
    """Run every workload ``runs`` times per backend, interleaved."""
    recorder = Recorder()
    warm_up = Size(
        max(size.messages // 50, 1000),
        max(size.round_trips // 50, 100),
        max(size.cancelled // 50, 100),
    )
    for backend in backends:
        _measure_once(recorder, backend, warm_up, record=False)
    for run in range(runs):
        for backend in backends:
            print(f"run {run + 1}/{runs}: {backend}", file=sys.stderr, flush=True)
            _measure_once(recorder, backend, size)
    return recorder


# -- reporting ----------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    label: str
    value: Spread
    target: Target | None

    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "PASS" if self.target.met(self.value) else "MISS"


def _ratios(recorder: Recorder, backend: Backend) -> list[Ratio]:
    def get(key: str, workload: int | str) -> Spread:
        return recorder.spread((backend, key, workload))

    ratios: list[Ratio] = []
    for capacity in CAPACITIES:
        target = Target(">=", 1.5 if capacity == 0 else 5.0)
        ratios.append(
            Ratio(
                f"Channel({capacity}) / anyio stream({capacity}), msg/s",
                get("channel", capacity).ratio(get("anyio", capacity)),
                target,
            )
        )
    for capacity in (1, 1000):
        ratios.append(
            Ratio(
                f"Channel({capacity}) / asyncio.Queue({capacity}), msg/s",
                get("channel", capacity).ratio(get("queue", capacity)),
                Target(">=", 0.5),
            )
        )
    ratios.append(
        Ratio(
            "ping-pong Channel / asyncio.Queue, µs",
            get("channel", "ping").ratio(get("queue", "ping")),
            Target("<=", 2.0),
        )
    )
    ratios.append(
        Ratio(
            "ping-pong Channel / anyio stream, µs",
            get("channel", "ping").ratio(get("anyio", "ping")),
            None,
        )
    )
    ratios.append(
        Ratio(
            "mass cancellation Channel / anyio stream, µs",
            get("channel", "cancel").ratio(get("anyio", "cancel")),
            Target("<=", 1.5),
        )
    )
    ratios.append(
        Ratio(
            "mass cancellation Channel / asyncio.Queue, µs",
            get("channel", "cancel").ratio(get("queue", "cancel")),
            None,
        )
    )
    if backend == "trio":
        for key, name in (("trio", "trio channel"), ("trio_nowait", "trio nowait")):
            for capacity in CAPACITIES:
                ratios.append(
                    Ratio(
                        f"Channel({capacity}) / {name}({capacity}), msg/s",
                        get("channel", capacity).ratio(get(key, capacity)),
                        None,
                    )
                )
            ratios.append(
                Ratio(
                    f"ping-pong Channel / {name}, µs",
                    get("channel", "ping").ratio(get(key, "ping")),
                    None,
                )
            )
        ratios.append(
            Ratio(
                "mass cancellation Channel / trio channel, µs",
                get("channel", "cancel").ratio(get("trio", "cancel")),
                None,
            )
        )
    return ratios


def _measurement_rows(recorder: Recorder, backend: Backend) -> list[list[str]]:
    rows: list[list[str]] = []
    workloads: list[tuple[int | str, str]] = [(c, f"capacity {c}, msg/s") for c in CAPACITIES]
    workloads.append(("ping", "ping-pong, µs/round trip"))
    workloads.append(("cancel", "mass cancellation, µs/task"))
    for workload, title in workloads:
        fmt = format_micros if workload in ("ping", "cancel") else format_rate
        first = True
        for impl in _impls(backend):
            key = (backend, impl.key, workload)
            if key not in recorder.samples:
                continue
            median, spread = format_spread(recorder.spread(key), fmt)
            rows.append([title if first else "", impl.label, median, spread])
            first = False
    return rows


def report(
    recorder: Recorder,
    backends: list[Backend],
    runs: int,
    size: Size,
    info: dict[str, object],
) -> dict[str, object]:
    """Print the tables and return the same results as JSON-ready data.

    ``info`` is :func:`machine` taken before measuring; the load average is
    taken again now, so the header shows the load at both ends.
    """
    info = {**info, "load_average_end": load_average()}
    print(
        f"actors channel benchmark, {info['date']}\n"
        f"{info['python']}, {info['platform']}, {info['cpu']}, {info['cpus']} CPUs, "
        f"load {info['load_average']} -> {info['load_average_end']}; "
        f"anyio {info['anyio']}, trio {info['trio']}\n"
        f"{size.messages:,} messages, {size.round_trips:,} round trips, "
        f"{size.cancelled:,} parked tasks cancelled; "
        f"median of {runs} run{'s' if runs != 1 else ''}, spread min-max"
    )
    backends_json: dict[str, object] = {}
    for backend in backends:
        print(f"\n== {backend} ==\n")
        print(
            format_table(
                ["workload", "implementation", "median", "spread"],
                _measurement_rows(recorder, backend),
                right=(2, 3),
            )
        )
        ratios = _ratios(recorder, backend)
        print()
        print(
            format_table(
                ["ratio (ours / theirs)", "median", "spread", "target", "result"],
                [
                    [
                        r.label,
                        *format_spread(r.value, format_ratio, "x"),
                        str(r.target or ""),
                        r.verdict(),
                    ]
                    for r in ratios
                ],
                right=(1, 2),
            )
        )
        verdicts = [r.verdict() for r in ratios if r.target is not None]
        print(f"\ntargets on {backend}: {verdicts.count('PASS')} of {len(verdicts)} met")
        measurements: dict[str, dict[str, object]] = {}
        for impl in _impls(backend):
            for workload in (*impl.capacities, "ping", "cancel"):
                if workload == "cancel" and impl.mass_cancel is None:
                    continue
                name = {"ping": "ping_pong_us", "cancel": "mass_cancel_us"}.get(
                    str(workload), f"msgs_per_s_{workload}"
                )
                measurements.setdefault(impl.key, {})[name] = recorder.spread(
                    (backend, impl.key, workload)
                ).as_json()
        backends_json[backend] = {
            "measurements": measurements,
            "ratios": [
                {
                    "label": r.label,
                    **r.value.as_json(),
                    "target": str(r.target) if r.target else None,
                    "passed": r.target.met(r.value) if r.target else None,
                }
                for r in ratios
            ],
        }
    return {
        "machine": info,
        "runs": runs,
        "messages": size.messages,
        "round_trips": size.round_trips,
        "cancelled": size.cancelled,
        "backends": backends_json,
    }


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args(
        "channel",
        __doc__,
        f"{QUICK_MESSAGES:,} messages, {QUICK_ROUND_TRIPS:,} round trips and "
        f"{QUICK_CANCELLED:,} parked tasks instead of {MESSAGES:,}, {ROUND_TRIPS:,} "
        f"and {CANCELLED:,}",
        argv,
    )
    size = (
        Size(QUICK_MESSAGES, QUICK_ROUND_TRIPS, QUICK_CANCELLED)
        if args.quick
        else Size(MESSAGES, ROUND_TRIPS, CANCELLED)
    )
    info = machine()
    recorder = measure(backends, args.runs, size)
    results = report(recorder, backends, args.runs, size, info)
    if args.json is not None:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
