"""The suite's workloads, and who runs each, in table order.

The workload functions live in the topic modules (``benchmarks.actors``,
``.channel``, ``.topics``, ``.supervision``) and in ``benchmarks.baselines``
and ``benchmarks.peers``; this module only arranges them into rows, each with
the same count for everyone unless its note says why not.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Awaitable, Callable, Iterator
from functools import partial

from . import actors, baselines, channel, observe, peers, supervision, topics
from ._util import BACKENDS, Backend, in_child, run_on
from .suite import Figures, Impl, Metric, Runner, Workload

# -- runners --------------------------------------------------------------------

RATE = "rate"


def _rate(fn: Callable[[int], Awaitable[float]], backend: Backend) -> Runner:
    """A loop function that returns its own rate."""
    return lambda n: {RATE: run_on(backend, partial(fn, n))}


def _rate_of_seconds(fn: Callable[[int], Awaitable[float]], backend: Backend) -> Runner:
    """A loop function that returns the seconds ``n`` messages took."""
    return lambda n: {RATE: n / run_on(backend, partial(fn, n))}


def _us(fn: Callable[[int], Awaitable[float]], backend: Backend) -> Runner:
    """A loop function that returns µs per round trip."""
    return lambda n: {"us": run_on(backend, partial(fn, n))}


def _us_of_seconds(fn: Callable[[int], Awaitable[float]], backend: Backend) -> Runner:
    """A loop function that returns the seconds ``n`` round trips took."""
    return lambda n: {"us": run_on(backend, partial(fn, n)) / n * 1e6}


def _sync(key: str, fn: Callable[[int], float]) -> Runner:
    def run(n: int) -> Figures:
        gc.collect()
        return {key: fn(n)}

    return run


def _child(module: str, *args: str) -> Runner:
    return lambda n: in_child(module, *args, str(n))


def _page(page: bool, backend: Backend) -> Runner:
    """Tell throughput with the live page open and streaming, or without."""
    return lambda n: {RATE: run_on(backend, partial(observe._one_way, n, page))[0]}


def _restart(children: int, backend: Backend) -> Runner:
    def run(n: int) -> Figures:
        latencies = sorted(run_on(backend, partial(supervision.restart_latency, children, n)))
        return {
            "us": statistics.median(latencies) * 1e6,
            "p99_us": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e6,
        }

    return run


# -- rows -----------------------------------------------------------------------


def _ours(
    key: str, label: str, make: Callable[[Backend], Runner], relative_to: str | None = None
) -> Iterator[Impl]:
    for backend in BACKENDS:
        yield Impl(key, label, backend, make(backend), ours=True, relative_to=relative_to)


def _base(key: str, label: str, backend: Backend, run: Runner, everywhere: bool = False) -> Impl:
    """A substrate row; ``everywhere``: a yardstick for ours on both backends."""
    return Impl(key, label, backend, run, compare=BACKENDS if everywhere else (backend,))


def _anyio(
    label: str, make: Callable[[Backend], Runner], scale: float = 1.0, why: str = ""
) -> Iterator[Impl]:
    """anyio's row on each backend. Where a checkpoint per operation makes the
    full count take 10 s or more a run, a fraction is measured (``why`` says
    so): the figures are rates or per-task costs, which the count hardly moves."""
    for backend in BACKENDS:
        yield Impl(
            "anyio", label, backend, make(backend), compare=(backend,), scale=scale, why_scaled=why
        )


def _peer(
    name: str,
    workload: str,
    run: Runner | None = None,
    note: str = "",
    scale: float = 1.0,
    why_scaled: str = "",
) -> Impl:
    """A peer's row; without ``run`` the peer cannot do the workload (see
    ``peers.NOT_SUPPORTED``)."""
    reason = peers.NOT_SUPPORTED.get(workload, {}).get(name) or peers.missing(name)
    if reason is None and run is None:
        raise ValueError(f"{name} has no {workload} and no reason why not")
    return Impl(
        name,
        peers.LABELS[name],
        peers.WHERE[name],
        None if reason else run,
        compare=BACKENDS,
        scale=scale,
        why_scaled=why_scaled,
        na=reason,
        note="" if reason else note,
    )


def _na(label: str, reason: str) -> Impl:
    return Impl("n/a", label, "-", na=reason)


SUBSTRATES = "asyncio.Queue, trio and anyio"
MSGS = (Metric(RATE, "msg/s", True),)
ROUND_TRIP = (Metric("us", "µs per round trip", False),)
ROUND_ROBIN = "dealt round-robin by a source actor"
TENTH = "a tenth: the full count takes 10 s+ a run; a rate"


def workloads(quick: bool = False) -> list[Workload]:
    """Every workload of the suite, its rows in table order."""
    restart_children = 100 if quick else supervision.CHILDREN
    pykka_idle = peers.PYKKA_IDLE / 100_000
    return [
        Workload(
            "one_way",
            "one-way",
            "messages",
            200_000,
            10_000,
            MSGS,
            (
                *_ours(
                    "actors", "actors: tell", partial(_rate, partial(actors._actors_one_way, 1))
                ),
                *_ours(
                    "channel",
                    "actors.Channel(1000), 2 tasks",
                    partial(_rate_of_seconds, partial(channel._pipe, channel._ours, 1000)),
                ),
                _base(
                    "queue",
                    "asyncio.Queue(1000)",
                    "asyncio",
                    _rate(actors._queue_one_way, "asyncio"),
                    True,
                ),
                _base(
                    "trio",
                    "trio channel(1000), *_nowait first",
                    "trio",
                    _rate(actors._trio_nowait, "trio"),
                ),
                *_anyio("anyio stream(1000)", partial(_rate, actors._anyio_one_way)),
                _peer("pykka", "one_way", _sync(RATE, peers.pykka_one_way)),
                _peer(
                    "thespian",
                    "one_way",
                    _sync(RATE, peers.thespian_one_way),
                    note="1,000 sends per handler call",
                ),
            ),
        ),
        Workload(
            "unbuffered",
            "one-way, unbuffered (rendezvous)",
            "messages",
            200_000,
            10_000,
            MSGS,
            (
                *_ours(
                    "channel",
                    "actors.Channel(0), 2 tasks",
                    partial(_rate_of_seconds, partial(channel._pipe, channel._ours, 0)),
                ),
                _base(
                    "trio",
                    "trio channel(0), *_nowait first",
                    "trio",
                    _rate_of_seconds(partial(channel._trio_pipe_nowait, 0), "trio"),
                ),
                *_anyio(
                    "anyio stream(0)",
                    partial(_rate_of_seconds, partial(channel._pipe, channel._anyio_stream, 0)),
                    0.1,
                    TENTH,
                ),
                _na("asyncio.Queue", "no rendezvous: Queue(0) is unbounded"),
                _na("pykka, thespian", "no rendezvous: a tell never waits for the receiver"),
            ),
        ),
        Workload(
            "round_trip",
            "round trip (ask)",
            "round trips",
            20_000,
            1_000,
            ROUND_TRIP,
            (
                *_ours("actors", "actors: ask", partial(_us, actors._actors_ask)),
                *_ours(
                    "channel",
                    "actors.Channel(0) ping-pong",
                    partial(_us_of_seconds, partial(channel._ping_pong, channel._ours)),
                ),
                _base(
                    "queue",
                    "asyncio.Queue + future (ask)",
                    "asyncio",
                    _us(actors._queue_ask, "asyncio"),
                    True,
                ),
                _base(
                    "trio_ask",
                    "trio channel + reschedule (ask)",
                    "trio",
                    _us(actors._trio_ask, "trio"),
                ),
                _base(
                    "queue_ping",
                    "asyncio.Queue(1) ping-pong",
                    "asyncio",
                    _us_of_seconds(partial(channel._ping_pong, channel._asyncio_queue), "asyncio"),
                    True,
                ),
                _base(
                    "trio",
                    "trio channel(0) ping-pong, *_nowait first",
                    "trio",
                    _us_of_seconds(channel._trio_ping_pong_nowait, "trio"),
                ),
                *_anyio(
                    "anyio stream(0) ping-pong",
                    partial(_us_of_seconds, partial(channel._ping_pong, channel._anyio_stream)),
                ),
                _peer("pykka", "round_trip", _sync("us", peers.pykka_ask)),
                _peer(
                    "thespian",
                    "round_trip",
                    _sync("us", peers.thespian_ask),
                    note="asked from outside",
                ),
            ),
        ),
        Workload(
            "idle",
            "idle actors spawned, then stopped",
            "actors",
            100_000,
            2_000,
            (
                Metric("us_per_actor", "µs per actor", False),
                Metric("rss_per_actor", "resident bytes per actor", False),
            ),
            (
                *_ours(
                    "actors",
                    "actors: spawn_nowait all, stop_nowait all",
                    lambda b: _child("benchmarks.actors", "actors", b),
                ),
                *_ours(
                    "awaited",
                    "actors: await spawn, await stop, one at a time",
                    lambda b: _child("benchmarks.actors", "actors-awaited", b),
                    relative_to="queue_awaited",
                ),
                _base(
                    "queue",
                    "asyncio tasks, each on a Queue",
                    "asyncio",
                    _child("benchmarks.actors", "tasks", "asyncio"),
                    True,
                ),
                Impl(
                    "queue_awaited",
                    "asyncio tasks, start and end awaited one at a time",
                    "asyncio",
                    _child("benchmarks.actors", "tasks-awaited", "asyncio"),
                    note="the floor of awaiting each",
                ),
                _base(
                    "trio",
                    "trio tasks, each on a channel",
                    "trio",
                    _child("benchmarks.baselines", "trio-tasks", "trio"),
                ),
                *_anyio(
                    "anyio tasks, each on a stream",
                    lambda b: _child("benchmarks.baselines", "anyio-tasks", b),
                    0.2,
                    "a fifth: 100,000 take 20 s a run; figures per task",
                ),
                _peer(
                    "pykka",
                    "idle",
                    _child("benchmarks.peers", "pykka"),
                    scale=pykka_idle,
                    why_scaled="a thread each; figures per actor",
                ),
                _peer("thespian", "idle", _child("benchmarks.peers", "thespian")),
            ),
            warm_up=False,
        ),
        Workload(
            "fan_out",
            "fan-out, 1 publisher, 100 subscribers",
            "messages",
            10_000,
            500,
            (Metric(RATE, "deliveries/s", True),),
            (
                *_ours(
                    "actors", "actors: publish to a topic", partial(_rate, topics._fan_out_topics)
                ),
                *_ours(
                    "channel",
                    "actors.Channel(1000).send, 100 tasks",
                    partial(_rate, topics._fan_out_channels),
                ),
                _base(
                    "queue",
                    "100 asyncio.Queue(1000)",
                    "asyncio",
                    _rate(topics._fan_out_queues, "asyncio"),
                    True,
                ),
                _base(
                    "trio",
                    "100 trio channels, *_nowait first",
                    "trio",
                    _rate(baselines.trio_fan_out, "trio"),
                ),
                *_anyio("100 anyio streams", partial(_rate, baselines.anyio_fan_out), 0.1, TENTH),
                _peer(
                    "pykka",
                    "fan_out",
                    _sync(RATE, peers.pykka_fan_out),
                    note="told by a source actor",
                ),
                _peer(
                    "thespian",
                    "fan_out",
                    _sync(RATE, peers.thespian_fan_out),
                    note="told by a source actor",
                ),
            ),
        ),
        Workload(
            "point_to_point",
            "point-to-point, 4 competing consumers",
            "messages",
            100_000,
            5_000,
            MSGS,
            (
                *_ours("actors", "actors: publish to a group", partial(_rate, topics._p2p_topics)),
                *_ours(
                    "channel", "actors.Channel(1000), 4 tasks", partial(_rate, topics._p2p_channel)
                ),
                _base(
                    "queue",
                    "asyncio.Queue(1000), 4 tasks",
                    "asyncio",
                    _rate(baselines.queue_point_to_point, "asyncio"),
                    True,
                ),
                _base(
                    "trio",
                    "trio channel(1000), 4 tasks, *_nowait",
                    "trio",
                    _rate(baselines.trio_point_to_point, "trio"),
                ),
                *_anyio(
                    "anyio stream(1000), 4 tasks", partial(_rate, baselines.anyio_point_to_point)
                ),
                _peer(
                    "pykka",
                    "point_to_point",
                    _sync(RATE, peers.pykka_point_to_point),
                    note=ROUND_ROBIN,
                ),
                _peer(
                    "thespian",
                    "point_to_point",
                    _sync(RATE, peers.thespian_point_to_point),
                    note=ROUND_ROBIN,
                ),
            ),
        ),
        Workload(
            "matching",
            "publish to concrete topics, subscriptions installed",
            "publishes",
            50_000,
            2_500,
            (Metric(RATE, "publishes/s", True),),
            (
                *_ours(
                    "hot_few",
                    "actors: 10, hot topics",
                    partial(_rate, partial(topics._matching, topics.FEW, topics.HOT_TOPICS)),
                ),
                *_ours(
                    "hot_many",
                    "actors: 10,000, hot topics",
                    partial(_rate, partial(topics._matching, topics.MANY, topics.HOT_TOPICS)),
                    relative_to="hot_few",
                ),
                *_ours(
                    "cold_few",
                    "actors: 10, cold topics",
                    partial(_rate, partial(topics._matching, topics.FEW, topics.COLD_TOPICS)),
                ),
                *_ours(
                    "cold_many",
                    "actors: 10,000, cold topics",
                    partial(_rate, partial(topics._matching, topics.MANY, topics.COLD_TOPICS)),
                    relative_to="cold_few",
                ),
                _na(SUBSTRATES, "no topics"),
                _peer("pykka", "matching"),
                _peer("thespian", "matching"),
            ),
        ),
        Workload(
            "restart",
            f"restart under a supervisor of {restart_children:,}",
            "restarts",
            5_000,
            500,
            (
                Metric("us", "µs, crash to answer", False),
                Metric("p99_us", "µs, 99th percentile", False),
            ),
            (
                *_ours(
                    "actors", "actors: one_for_one Supervisor", partial(_restart, restart_children)
                ),
                _na(SUBSTRATES, "no actors to supervise"),
                _peer("pykka", "restart"),
                _peer("thespian", "restart"),
            ),
        ),
        Workload(
            "pairs",
            "one-way, pairs at once, same total",
            "messages",
            200_000,
            100_000,  # 100 a pair at 1,000 pairs: fewer measure wake-ups, not messaging
            MSGS,
            (
                *(
                    impl
                    for pairs in (1, 10, 100, 1000)
                    for impl in _ours(
                        f"pairs_{pairs}",
                        f"actors: {pairs:,} pair{'s' if pairs > 1 else ''}",
                        partial(_rate, partial(actors._actors_one_way, pairs)),
                        relative_to="pairs_1" if pairs > 1 else None,
                    )
                ),
                _na(f"{SUBSTRATES}, peers", "ours against ours: how the cost grows (goal: flat)"),
            ),
        ),
        Workload(
            "page",
            f"one-way, {observe.PAIRS} pairs, {observe.IDLE} idle actors, live page",
            "messages",
            1_000_000,
            100_000,
            MSGS,
            (
                *_ours("no_page", "actors: no page", partial(_page, False)),
                *_ours(
                    "page",
                    "actors: page open, its stream read",
                    partial(_page, True),
                    relative_to="no_page",
                ),
                _na(f"{SUBSTRATES}, peers", "ours against ours: what an open page costs"),
            ),
        ),
    ]
