"""Actors across the process boundary: tell, ask, spawn, restart, death.

Usage: ``python -m benchmarks.process [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

Workloads, each beside its yardstick measured in the same run, on both
backends. The actor is an echo (``benchmarks._process_actors.Echo``) spawned
with ``placement=actors.Subprocess()``: it runs in a fresh ``python -m
actors._child`` process, and this process holds an ordinary ``ActorRef``.

- tell: messages per second to the actor in its child, a small dataclass
  each: ``await ref.tell(order)`` ``n`` times, then one ``ask`` as the
  barrier (it answers with its count, checked). The yardstick: a raw anyio
  socket stream over a Unix socketpair to a plain child process
  (``benchmarks._process_children``) that unpickles the same pickles,
  length-prefixed, sent 256 to a write as the wire batches a burst, and
  answers a barrier with its count.
- ask: µs per round trip to the actor, waiting for each answer. The
  yardstick: ``multiprocessing.Pipe`` to a ``spawn``-context child echoing
  the same message (plain blocking calls, no event loop). For scale, the
  event loop's own floor: a raw anyio socket stream to a child that
  unpickles the message and sends it back pickled, and the same through the
  bare sockets on both ends (``actors._socket.SocketStream``: the event
  loop's readiness waits and the socket calls, no anyio stream layer, as the
  connection to a process actor has); no targets.
- spawn: ms from ``spawn(..., placement=Subprocess())`` until it returns
  with the actor started (a plain actor spawns them, as its children, so
  that killing one later fails that child, not the system). The yardstick: ``anyio.open_process`` of
  the same interpreter running a child that reads a secret from an
  inherited socketpair and does the actors handshake over it
  (``actors._handshake``), until the handshake is done.
- restart: a ``Supervisor`` of one process child (registered by name); the
  child's process is killed with SIGKILL, and the time runs until the new
  incarnation (found by polling the registry every 0.5 ms) answers an
  ``ask``. Compared with spawn.
- death: ms from SIGKILL of an actor's process until ``ref.join()`` returns
  its ``Terminated`` (its reason ``actors.ProcessExited``); beside it, for
  scale, the yardstick child's ``process.wait()`` after SIGKILL.
- peers, from the ``bench`` extra (shown as "not installed" without it):
  thespian's ``multiprocTCPBase`` (a process per actor, TCP between them):
  tell throughput with an ``ask`` as the barrier, and the ask round trip,
  both from outside its system as ours are; Ray: the round trip of a remote
  actor method, ``ray.get(actor.echo.remote(order))``. Each peer's system
  is started once (not timed) and measured once per run after the other
  rows, so that its idle processes never run beside them.

Targets, per backend: tell at least 0.5x the raw stream; an ask at most 1.5x
a Pipe round trip and at least 10x faster than Ray's; spawn at most 1.2x the
bare process with its handshake; a restart at most 1.5x a spawn; a death seen
within 50 ms. Every run gets fresh event loops and fresh child processes;
ratios are taken run by run. Every child process is reaped, on errors too.
Targets are printed as PASS or MISS; a miss never changes the exit status.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

import actors
from actors._handshake import handshake
from actors._socket import SocketStream
from actors._wire import YIELD_EVERY
from supervision import ChildSpec, Supervisor

from ._messages import Order
from ._process_actors import Echo
from ._process_children import COUNT, LENGTH, SECRET_SIZE, pipe_echo
from ._util import (
    ROOT,
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
    versions,
    write_json,
)
from .peers import missing

MESSAGE = Order(12345, "ABC-123", 3, 9.99)
#: How long a child that was told to end may take before it is killed.
REAP_WAIT = 5.0
#: How often the restart workload looks for the new incarnation, in seconds.
POLL = 0.0005


@dataclass(frozen=True)
class Size:
    messages: int  # tells per throughput run
    asks: int  # round trips per run
    spawns: int  # processes spawned (and killed) per run
    restarts: int  # kills of a supervised child per run
    peer_messages: int  # thespian tells per run
    peer_asks: int  # thespian and Ray round trips per run


FULL = Size(100_000, 5_000, 10, 10, 2_000, 500)
QUICK = Size(10_000, 500, 3, 2, 500, 200)
WARM_UP = Size(1_000, 50, 1, 1, 0, 0)


def ray_missing() -> str | None:
    """Why Ray cannot be measured here, or ``None`` when it can."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "not installed (pip install -e '.[bench]')"
    return None


# -- actors: one system per backend and run ------------------------------------------


async def _tell_rate(ref: actors.ActorRef, n: int) -> float:
    before = await ref.ask("count")
    tell = ref.tell
    start = time.perf_counter()
    for _ in range(n):
        await tell(MESSAGE)
    counted = await ref.ask("count", timeout=60)
    elapsed = time.perf_counter() - start
    if counted - before != n:
        raise RuntimeError(f"benchmark lost messages: {counted - before} counted, not {n}")
    return n / elapsed


async def _ask_us(ref: actors.ActorRef, n: int) -> float:
    ask = ref.ask
    start = time.perf_counter()
    for _ in range(n):
        if await ask(MESSAGE) != MESSAGE:
            raise RuntimeError("benchmark echo answered wrong")
    return (time.perf_counter() - start) / n * 1e6


async def _death_ms(ref: actors.ActorRef) -> float:
    pid = await ref.ask("pid")
    start = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    ended = await ref.join()
    elapsed = time.perf_counter() - start
    if not isinstance(ended.reason, actors.ProcessExited):
        raise RuntimeError(f"a killed process actor ended with {ended.reason!r}")
    return elapsed * 1e3


async def _restart_ms(system: actors.ActorSystem, n: int) -> list[float]:
    spec = ChildSpec(Echo, name="w", register_as="w", placement=actors.Subprocess())
    await system.spawn(Supervisor, [spec], max_restarts=n + 1, within=3600.0, name="sup")
    times = []
    for _ in range(n):
        old = system.registry.whereis("w")
        if old is None:
            raise RuntimeError("the supervised process child is not registered")
        pid = await old.ask("pid")
        start = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        # Nothing announces a new incarnation to code outside the supervisor:
        # look for it, at a resolution far below a process start.
        while (new := system.registry.whereis("w")) is None or new == old:  # noqa: ASYNC110
            await anyio.sleep(POLL)
        if await new.ask("pid", timeout=60) == pid:
            raise RuntimeError("the restarted child answered from the killed process")
        times.append((time.perf_counter() - start) * 1e3)
    return times


class Keeper(actors.Actor):
    """Spawns process actors as its children, timing each spawn, and takes
    their deaths calmly: they are killed on purpose. (A failed top-level
    actor would fail the whole system.)"""

    async def receive(self, message: Any) -> Any:
        start = time.perf_counter()
        ref = await self.context.spawn(Echo, name=message, placement=actors.Subprocess())
        return ref, (time.perf_counter() - start) * 1e3

    async def on_child_failed(self, child: actors.ActorRef, error: BaseException) -> None:
        pass


async def _actors(size: Size) -> dict[str, float]:
    """The actors figures of one run: tell, ask, spawn, death, restart."""
    figures: dict[str, float] = {}
    async with actors.ActorSystem() as system:
        keeper = await system.spawn(Keeper, name="keeper")
        refs = []
        spawns = []
        for i in range(size.spawns):
            ref, elapsed = await keeper.ask(f"echo{i}", timeout=60)
            refs.append(ref)
            spawns.append(elapsed)
        figures["spawn"] = statistics.median(spawns)
        figures["tell"] = await _tell_rate(refs[0], size.messages)
        figures["ask"] = await _ask_us(refs[0], size.asks)
        figures["death"] = statistics.median([await _death_ms(ref) for ref in refs])
        figures["restart"] = statistics.median(await _restart_ms(system, size.restarts))
    return figures


# -- yardsticks: plain child processes -----------------------------------------------


async def _reap(process: anyio.abc.Process) -> None:
    """Wait for ``process`` to end, killing it after :data:`REAP_WAIT`."""
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(REAP_WAIT):
            await process.wait()
            return
        process.kill()
        await process.wait()


@asynccontextmanager
async def _child(
    kind: str, backend: Backend
) -> AsyncIterator[tuple[anyio.abc.Process, anyio.abc.ByteStream]]:
    """A ``benchmarks._process_children`` child on one end of a socketpair,
    and a stream on the other (an ``actors._socket.SocketStream`` for a
    ``bare_`` kind, else anyio's). On exit the stream is closed (the child
    ends at end of stream) and the child reaped, killed if it does not end."""
    ours, theirs = socket.socketpair()
    try:
        try:
            process = await anyio.open_process(
                [
                    sys.executable,
                    "-m",
                    "benchmarks._process_children",
                    kind,
                    str(theirs.fileno()),
                    backend,
                ],
                pass_fds=(theirs.fileno(),),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None,
            )
        finally:
            theirs.close()
        try:
            stream: anyio.abc.ByteStream
            if kind.startswith("bare_"):
                stream = SocketStream(ours)
            else:
                stream = await anyio.abc.SocketStream.from_socket(ours)
            async with stream:
                yield process, stream
        finally:
            await _reap(process)
    finally:
        ours.close()


async def _raw_stream(backend: Backend, n: int, batch: int) -> float:
    """Messages per second through a raw anyio socket stream to a child that
    unpickles them: length-prefixed pickles, ``batch`` to a send, then a
    barrier answered with the child's count."""
    async with _child("stream", backend) as (_, stream):
        counts = BufferedByteReceiveStream(stream)
        # The child is up once it answers a first barrier (not timed).
        await stream.send(LENGTH.pack(0))
        await counts.receive_exactly(COUNT.size)
        pack, dumps = LENGTH.pack, pickle.dumps
        parts: list[bytes] = []
        start = time.perf_counter()
        for i in range(n):
            data = dumps(MESSAGE, protocol=5)
            parts.append(pack(len(data)))
            parts.append(data)
            if len(parts) == 2 * batch or i == n - 1:
                await stream.send(b"".join(parts))
                parts.clear()
        await stream.send(LENGTH.pack(0))
        (counted,) = COUNT.unpack(await counts.receive_exactly(COUNT.size))
        elapsed = time.perf_counter() - start
    if counted != n:
        raise RuntimeError(f"benchmark lost messages: {counted} counted, not {n}")
    return n / elapsed


async def _raw_round_trip(backend: Backend, n: int, kind: str = "echo") -> float:
    """µs per round trip through a raw anyio socket stream (``kind="bare_echo"``:
    bare sockets) to a child that unpickles each message and sends it back
    pickled: the event loop's floor for an ask, without envelopes, MACs or
    actors."""
    async with _child(kind, backend) as (_, stream):
        replies = BufferedByteReceiveStream(stream)
        data = pickle.dumps(MESSAGE, protocol=5)
        request = LENGTH.pack(len(data)) + data

        async def once() -> None:
            await stream.send(request)
            (size,) = LENGTH.unpack(await replies.receive_exactly(LENGTH.size))
            pickle.loads(await replies.receive_exactly(size))

        await once()  # the child is up (not timed)
        start = time.perf_counter()
        for _ in range(n):
            await once()
        return (time.perf_counter() - start) / n * 1e6


async def _bare(backend: Backend, n: int) -> tuple[float, float]:
    """Median ms to start a child that does the actors handshake, and median
    ms from SIGKILL of it until ``process.wait()`` returns; ``n`` children."""
    starts = []
    deaths = []
    for _ in range(n):
        start = time.perf_counter()
        async with _child("handshake", backend) as (process, stream):
            secret = os.urandom(SECRET_SIZE)
            await stream.send(secret)
            await handshake(stream, secret, True)
            started = time.perf_counter()
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()
            deaths.append((time.perf_counter() - started) * 1e3)
            starts.append((started - start) * 1e3)
    return statistics.median(starts), statistics.median(deaths)


def _pipe_us(n: int) -> float:
    """µs per round trip through a ``multiprocessing.Pipe`` to a ``spawn``
    child that echoes every message."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=pipe_echo, args=(theirs,), daemon=True)
    try:
        process.start()
        theirs.close()
        send, recv = ours.send, ours.recv
        send(MESSAGE)  # the child is up once it answers (not timed)
        recv()
        start = time.perf_counter()
        for _ in range(n):
            send(MESSAGE)
            if recv() != MESSAGE:
                raise RuntimeError("benchmark echo answered wrong")
        elapsed = time.perf_counter() - start
        send(None)
    finally:
        theirs.close()
        ours.close()  # the child ends at end of stream too
        if process.pid is not None:
            process.join(REAP_WAIT)
            if process.exitcode is None:
                process.kill()
                process.join()
    return elapsed / n * 1e6


# -- peers --------------------------------------------------------------------------


@contextmanager
def _ray() -> Iterator[Callable[[int], float]]:
    """A local Ray instance with an echo actor; yields a function measuring
    µs per round trip of ``n`` calls. Shut down on exit."""
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:

        @ray.remote
        class RayEcho:
            def echo(self, message: Any) -> Any:
                return message

        echo = cast(Any, RayEcho).remote()
        ray.get(echo.echo.remote(MESSAGE))  # started (not timed)

        def ask_us(n: int) -> float:
            call, get = echo.echo.remote, ray.get
            start = time.perf_counter()
            for _ in range(n):
                if get(call(MESSAGE)) != MESSAGE:
                    raise RuntimeError("Ray echo answered wrong")
            return (time.perf_counter() - start) / n * 1e6

        yield ask_us
    finally:
        ray.shutdown()


def _measure_peers(recorder: Recorder, runs: int, size: Size) -> None:
    if missing("thespian") is None:
        from . import _process_thespian

        print("thespian multiprocTCPBase", file=sys.stderr, flush=True)
        with _process_thespian.system() as system:
            _process_thespian.tell_rate(system, max(size.peer_messages // 10, 10))  # warm-up
            for _ in range(runs):
                recorder.add(
                    ("thespian", "tell"), _process_thespian.tell_rate(system, size.peer_messages)
                )
                recorder.add(("thespian", "ask"), _process_thespian.ask_us(system, size.peer_asks))
    if ray_missing() is None:
        print("Ray", file=sys.stderr, flush=True)
        with _ray() as ray_ask_us:
            ray_ask_us(max(size.peer_asks // 10, 10))  # warm-up
            for _ in range(runs):
                recorder.add(("ray", "ask"), ray_ask_us(size.peer_asks))


# -- measuring ----------------------------------------------------------------------


def _measure_once(recorder: Recorder, backends: list[Backend], size: Size, record: bool) -> None:
    def add(key: tuple[str, ...], value: float) -> None:
        if record:
            recorder.add(key, value)

    for backend in backends:
        for what, value in run_on(backend, partial(_actors, size)).items():
            add((backend, what), value)
        add(
            (backend, "raw"),
            run_on(backend, partial(_raw_stream, backend, size.messages, YIELD_EVERY)),
        )
        add((backend, "raw_rtt"), run_on(backend, partial(_raw_round_trip, backend, size.asks)))
        add(
            (backend, "bare_rtt"),
            run_on(backend, partial(_raw_round_trip, backend, size.asks, "bare_echo")),
        )
        bare, wait = run_on(backend, partial(_bare, backend, size.spawns))
        add((backend, "bare"), bare)
        add((backend, "wait"), wait)
    add(("pipe",), _pipe_us(size.asks))


def measure(backends: list[Backend], runs: int, size: Size) -> Recorder:
    """Every workload ``runs`` times, interleaved, after a small warm-up; the
    peers after."""
    recorder = Recorder()
    print("warm-up", file=sys.stderr, flush=True)
    _measure_once(recorder, backends, WARM_UP, record=False)
    for run in range(runs):
        print(f"run {run + 1}/{runs}", file=sys.stderr, flush=True)
        _measure_once(recorder, backends, size, record=True)
    _measure_peers(recorder, runs, size)
    return recorder


# -- reporting ----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    label: str
    value: Spread
    target: Target | None
    unit: str  # "x" for a ratio, else the unit of an absolute figure

    def result(self) -> str:
        if self.target is None:
            return ""
        return "PASS" if self.target.met(self.value) else "MISS"

    def cells(self) -> list[str]:
        if self.unit == "x":
            return [*format_spread(self.value, format_ratio, "x"), str(self.target or "")]
        target = (
            f"{'≥' if self.target.op == '>=' else '≤'} {self.target.threshold:g} {self.unit}"
            if self.target
            else ""
        )
        return [*format_spread(self.value, _format_ms, f" {self.unit}"), target]


def _format_ms(value: float) -> str:
    return f"{value:.1f}"


def _verdicts(recorder: Recorder, backends: list[Backend]) -> list[Verdict]:
    def get(*key: str) -> Spread:
        return recorder.spread(key)

    def has(*key: str) -> bool:
        return key in recorder.samples

    verdicts = []
    for backend in backends:
        verdicts += [
            Verdict(
                f"{backend}: tell / raw socket stream, msg/s",
                get(backend, "tell").ratio(get(backend, "raw")),
                Target(">=", 0.5),
                "x",
            ),
            Verdict(
                f"{backend}: ask / multiprocessing.Pipe, time",
                get(backend, "ask").ratio(get("pipe")),
                Target("<=", 1.5),
                "x",
            ),
            Verdict(
                f"{backend}: bare event-loop round trip / Pipe, time",
                get(backend, "bare_rtt").ratio(get("pipe")),
                None,
                "x",
            ),
            Verdict(
                f"{backend}: ask / bare event-loop round trip, time",
                get(backend, "ask").ratio(get(backend, "bare_rtt")),
                None,
                "x",
            ),
        ]
        if has("ray", "ask"):
            verdicts.append(
                Verdict(
                    f"{backend}: ask, times faster than Ray's",
                    get("ray", "ask").ratio(get(backend, "ask")),
                    Target(">=", 10.0),
                    "x",
                )
            )
        if has("thespian", "tell"):
            verdicts += [
                Verdict(
                    f"{backend}: tell / thespian's, msg/s",
                    get(backend, "tell").ratio(get("thespian", "tell")),
                    None,
                    "x",
                ),
                Verdict(
                    f"{backend}: ask, times faster than thespian's",
                    get("thespian", "ask").ratio(get(backend, "ask")),
                    None,
                    "x",
                ),
            ]
        verdicts += [
            Verdict(
                f"{backend}: spawn / bare open_process + handshake",
                get(backend, "spawn").ratio(get(backend, "bare")),
                Target("<=", 1.2),
                "x",
            ),
            Verdict(
                f"{backend}: restart after SIGKILL / spawn",
                get(backend, "restart").ratio(get(backend, "spawn")),
                Target("<=", 1.5),
                "x",
            ),
            Verdict(
                f"{backend}: death seen (SIGKILL -> Terminated)",
                get(backend, "death"),
                Target("<=", 50.0),
                "ms",
            ),
        ]
    return verdicts


def _rows(
    recorder: Recorder,
    backends: list[Backend],
    paths: list[tuple[str, str]],
    fmt: Callable[[float], str],
) -> list[list[str]]:
    """One row per ``(key, label)`` measured, for each backend in turn."""
    rows = []
    for backend in backends:
        first = True
        for path, label in paths:
            if (backend, path) in recorder.samples:
                spread = recorder.spread((backend, path))
                rows.append([backend if first else "", label, *format_spread(spread, fmt)])
                first = False
    return rows


def _peer_rows(
    recorder: Recorder, peers: list[tuple[str, str, str]], fmt: Callable[[float], str]
) -> list[list[str]]:
    """``(key, label, why missing)`` rows: the figure, or why there is none."""
    rows = []
    for key, label, why in peers:
        name, path = key.split(":")
        if (name, path) in recorder.samples:
            rows.append(["-", label, *format_spread(recorder.spread((name, path)), fmt)])
        elif why:
            rows.append(["-", f"{label}: {why}", "", ""])
    return rows


def report(
    recorder: Recorder, backends: list[Backend], runs: int, size: Size, info: dict[str, object]
) -> dict[str, object]:
    """Print the tables and return the same results as JSON-ready data."""
    info = {**info, "load_average_end": load_average(), "peers": versions(["thespian", "ray"])}
    peers = cast(dict[str, str], info["peers"])
    print(
        f"actors process benchmark, {info['date']}\n"
        f"{info['python']}, {info['platform']}, {info['cpu']}, {info['cpus']} CPUs, "
        f"load {info['load_average']} -> {info['load_average_end']}; "
        f"anyio {info['anyio']}, trio {info['trio']}, "
        + ", ".join(f"{name} {v}" for name, v in peers.items())
        + f"\n{size.messages:,} tells, {size.asks:,} asks, {size.spawns} spawns and "
        f"{size.restarts} restarts a run ({size.peer_messages:,} tells and "
        f"{size.peer_asks:,} asks for the peers); median of {runs} "
        f"run{'s' if runs != 1 else ''}, spread min-max"
    )
    thespian_why = missing("thespian")
    ray_why = ray_missing()

    header = ["backend", "path", "median", "spread"]
    rows = _rows(
        recorder,
        backends,
        [
            ("tell", "actors: tell, then an ask as the barrier"),
            ("raw", f"raw anyio socket stream, {YIELD_EVERY} to a send"),
        ],
        format_rate,
    )
    rows += _peer_rows(
        recorder,
        [("thespian:tell", "thespian multiprocTCPBase: tell, then an ask", thespian_why or "")],
        format_rate,
    )
    print("\n== throughput to a child process, msg/s ==\n")
    print(format_table(header, rows, right=(2, 3)))

    rows = _rows(
        recorder,
        backends,
        [
            ("ask", "actors: ask"),
            ("raw_rtt", "raw anyio socket stream, pickle both ways"),
            ("bare_rtt", "bare sockets on the event loop, pickle both ways"),
        ],
        format_micros,
    )
    rows += [
        [
            "-",
            "multiprocessing.Pipe, spawn child",
            *format_spread(recorder.spread(("pipe",)), format_micros),
        ]
    ]
    rows += _peer_rows(
        recorder,
        [
            ("thespian:ask", "thespian multiprocTCPBase: ask", thespian_why or ""),
            ("ray:ask", "Ray: ray.get(actor.echo.remote(m))", ray_why or ""),
        ],
        format_micros,
    )
    print("\n== round trip to a child process, µs ==\n")
    print(format_table(header, rows, right=(2, 3)))

    rows = _rows(
        recorder,
        backends,
        [
            ("spawn", "actors: spawn, until started"),
            ("bare", "bare: open_process, the child's handshake"),
            ("restart", "actors: restart after SIGKILL, until it answers"),
            ("death", "actors: death seen (SIGKILL -> join returns)"),
            ("wait", "bare: SIGKILL -> process.wait() returns"),
        ],
        _format_ms,
    )
    print("\n== child processes, ms ==\n")
    print(format_table(header, rows, right=(2, 3)))

    verdicts = _verdicts(recorder, backends)
    if verdicts:
        print()
        print(
            format_table(
                ["figure", "median", "spread", "target", "result"],
                [[v.label, *v.cells(), v.result()] for v in verdicts],
                right=(1, 2),
            )
        )
    judged = [v.result() for v in verdicts if v.target is not None]
    print(f"\ntargets: {judged.count('PASS')} of {len(judged)} met")
    return {
        "machine": info,
        "runs": runs,
        "size": size.__dict__,
        "samples": {
            " / ".join(cast(tuple[str, ...], key)): values
            for key, values in recorder.samples.items()
        },
        "verdicts": [
            {
                "label": v.label,
                "unit": v.unit,
                **v.value.as_json(),
                "target": str(v.target) if v.target else None,
                "passed": v.target.met(v.value) if v.target else None,
            }
            for v in verdicts
        ],
    }


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args(
        "process",
        __doc__,
        "a tenth of the messages and asks, 3 spawns and 2 restarts instead of 10",
        argv,
    )
    size = QUICK if args.quick else FULL
    # Killed children are logged as failures, with their tracebacks: not what
    # is measured.
    for name in ("actors", "supervision"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    info = machine()
    recorder = measure(backends, args.runs, size)
    results = report(recorder, backends, args.runs, size, info)
    if args.json is not None:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
