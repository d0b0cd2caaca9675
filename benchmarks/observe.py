"""The live page's cost: tell throughput with a page open and streaming, vs without.

Usage: ``python -m benchmarks.observe [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

Ten sources each tell their sink a share of the messages (as
``benchmarks.actors``' one-way row), in a system of a hundred more idle
actors under a supervisor. "page open": the system serves its live page
(``actors.observe.serve_page``) and one client, a thread reading the event
stream as a browser would, is subscribed to it for the whole run, so the page
samples the tree four times a second and sends what changed. Runs of the two
alternate, each on a fresh event loop. Target (issue 16): at least 0.9x.

Then the event stream under load: 10,000 actors under one supervisor, a
hundred restarts a second for a few seconds, and one client reading the
stream: how many deltas a second it got, their largest, and bytes a second
(bounded by the page's rate, four deltas a second, and by its collapse of
large supervisors, fifty children shown).
"""

from __future__ import annotations

import logging
import socket
import statistics
import sys
import threading
import time
from typing import Any

import anyio

from actors import Actor, ActorSystem
from actors.observe import serve_page
from supervision import ChildSpec, Supervisor

from ._pairs import Sink, Source
from ._util import (
    Backend,
    Recorder,
    Target,
    format_rate,
    format_ratio,
    format_table,
    machine,
    parse_args,
    run_on,
    write_json,
)

PAIRS = 10
IDLE = 100
FULL = 1_000_000
QUICK = 200_000
TARGET = Target(">=", 0.9)


def _read_events(port: int, stop: threading.Event, received: list[int]) -> None:
    """A browser's part, in a thread: read the event stream until told to stop."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: bench\r\n\r\n")
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            received[0] += len(data)


async def _one_way(total: int, page: bool) -> tuple[float, int]:
    per_pair = total // PAIRS
    received = [0]
    async with ActorSystem() as system:
        specs = [ChildSpec(Actor, name=f"idle-{i}") for i in range(IDLE)]
        await system.spawn(Supervisor, specs, name="idle")
        done = [anyio.Event() for _ in range(PAIRS)]
        sources = []
        for i in range(PAIRS):
            sink = await system.spawn(Sink, per_pair, done[i], name=f"sink-{i}")
            sources.append(await system.spawn(Source, sink, per_pair, name=f"source-{i}"))
        stop = threading.Event()
        reader = None
        if page:
            served = await serve_page(system)
            reader = threading.Thread(target=_read_events, args=(served.port, stop, received))
            reader.start()
            while True:  # subscribed once the first snapshot came
                if received[0]:
                    break
                await anyio.sleep(0.01)
        start = time.perf_counter()
        for source in sources:
            await source.tell("go")
        for event in done:
            await event.wait()
        elapsed = time.perf_counter() - start
        stop.set()
        if reader is not None:
            await anyio.to_thread.run_sync(reader.join)
    return per_pair * PAIRS / elapsed, received[0]


class _Crasher(Actor):
    async def receive(self, message: Any) -> None:
        raise ValueError(message)


LOAD_ACTORS = 10_000
RESTARTS_PER_SECOND = 100


async def _under_load(seconds: float) -> dict[str, float]:
    """The event stream's deltas and bytes while a supervisor of 10,000 restarts
    a hundred children a second, round-robin (half of them shown on the page)."""
    async with ActorSystem() as system:
        specs = [
            ChildSpec(_Crasher, name=f"w{i}", register_as=f"w{i}" if i < 100 else None)
            for i in range(LOAD_ACTORS)
        ]
        await system.spawn(Supervisor, specs, name="sup", max_restarts=1_000_000, within=1.0)
        served = await serve_page(system)
        stop = threading.Event()
        received = [0]
        reader = threading.Thread(target=_read_events, args=(served.port, stop, received))
        reader.start()
        while True:  # subscribed once the first snapshot came
            if received[0]:
                break
            await anyio.sleep(0.01)
        first = received[0]
        deltas = served._version
        start = anyio.current_time()
        n = 0
        while anyio.current_time() - start < seconds:
            ref = system.registry.whereis(f"w{n % 100}")
            if ref is not None:
                await ref.tell("boom")
            n += 1
            await anyio.sleep_until(start + n / RESTARTS_PER_SECOND)
        elapsed = anyio.current_time() - start
        streamed = received[0] - first
        deltas = served._version - deltas
        stop.set()
        await anyio.to_thread.run_sync(reader.join)
    return {
        "restarts_per_s": n / elapsed,
        "deltas_per_s": deltas / elapsed,
        "bytes_per_delta": streamed / max(deltas, 1),
        "bytes_per_s": streamed / elapsed,
    }


def measure(backends: list[Backend], runs: int, total: int) -> tuple[Recorder, dict[str, int]]:
    rec = Recorder()
    streamed: dict[str, int] = {}
    for _ in range(runs):
        for backend in backends:
            for page in (False, True):
                rate, got = run_on(backend, lambda page=page: _one_way(total, page))  # type: ignore[misc]
                rec.add((backend, page), rate)
                if page:
                    streamed[backend] = max(streamed.get(backend, 0), got)
    return rec, streamed


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args(
        "observe", __doc__ or "", f"{QUICK:,} messages instead of {FULL:,}", argv
    )
    total = QUICK if args.quick else FULL
    rec, streamed = measure(backends, args.runs, total)
    rows = []
    results: dict[str, Any] = {"machine": machine(), "messages": total, "rows": []}
    for backend in backends:
        without = rec.spread((backend, False))
        with_page = rec.spread((backend, True))
        ratios = [
            a / b
            for a, b in zip(
                rec.samples[(backend, True)], rec.samples[(backend, False)], strict=True
            )
        ]
        ratio = statistics.median(ratios)
        met = TARGET.op == ">=" and ratio >= TARGET.threshold
        rows.append(
            [
                backend,
                format_rate(without.median),
                format_rate(with_page.median),
                format_ratio(ratio) + "x",
                str(TARGET),
                "PASS" if met else "MISS",
                f"{streamed.get(backend, 0):,} B",
            ]
        )
        results["rows"].append(
            {
                "backend": backend,
                "without_page": without.median,
                "page_open": with_page.median,
                "ratio": ratio,
                "target": str(TARGET),
                "met": met,
                "streamed_bytes": streamed.get(backend, 0),
            }
        )
    print(
        f"tell throughput, {PAIRS} pairs, {total:,} messages, {IDLE} idle actors; "
        f"median of {args.runs} runs"
    )
    print(
        format_table(
            ["backend", "no page", "page open", "ratio", "target", "", "streamed"],
            rows,
            right=[1, 2, 3, 6],
        )
    )
    seconds = 2.0 if args.quick else 5.0
    # The crashes are on purpose: formatting their logged tracebacks would be what it measured.
    for name in ("actors", "supervision"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    load_rows = []
    results["under_load"] = []
    for backend in backends:
        load = run_on(backend, lambda: _under_load(seconds))
        results["under_load"].append({"backend": backend, **load})
        load_rows.append(
            [
                backend,
                f"{load['restarts_per_s']:.0f}",
                f"{load['deltas_per_s']:.1f}",
                f"{load['bytes_per_delta'] / 1000:.1f} KB",
                f"{load['bytes_per_s'] / 1000:.1f} KB/s",
            ]
        )
    print(
        f"\nthe event stream under load: {LOAD_ACTORS:,} actors under one supervisor, "
        f"{seconds:g} s of restarts"
    )
    print(
        format_table(
            ["backend", "restarts/s", "deltas/s", "a delta", "streamed"],
            load_rows,
            right=[1, 2, 3, 4],
        )
    )
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main(sys.argv[1:])
