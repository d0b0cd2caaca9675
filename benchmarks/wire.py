"""The wire between processes: the codec, the frame MAC, batched throughput.

Usage: ``python -m benchmarks.wire [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

Workloads, each in the same run as its yardsticks:

- codec: µs to pickle (``dumps``) and unpickle (``loads``) one small message
  with ``actors._codec`` beside ``pickle`` (protocol 5) and ``cloudpickle``:
  a tuple of builtins, a dataclass importable by name, and a class the
  receiver could not import (pickled by value, as a ``__main__`` class is).
- MAC: µs to tag one frame with keyed BLAKE2b-128 and with HMAC-SHA256, from
  64 bytes to 64 KiB, and with the wire's tagger (which picks by size).
- throughput: messages per second from one task to another over a Unix
  socketpair, each message a small dataclass pickled by the sender and
  unpickled by the receiver: through ``WireConnection`` (envelopes, batches,
  a MAC per frame; the handshake is not timed), and through a raw anyio
  socket stream carrying the same pickles, length-prefixed, in batches of the
  size the wire's writer makes from a burst. Also, for scale, the wire with a
  flush after every message (one frame, one MAC and one system call each).

Targets: the codec pickles a small message of builtins in at most 2 µs, and
the batched wire moves at least 0.5x the raw stream's messages. Every run
gets fresh event loops; runs are interleaved and ratios are taken run by run.
Targets are printed as PASS or MISS; a miss never changes the exit status.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import anyio
import anyio.abc
import cloudpickle

from actors import WouldBlock
from actors._codec import dumps, loads
from actors._envelope import Envelope, Kind
from actors._handshake import handshake
from actors._mac import SMALL_PAYLOAD, Tagger
from actors._wire import YIELD_EVERY, WireConnection

from ._messages import Order
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

SECRET = b"benchmark secret, 32 bytes long."


def _by_value_order() -> Any:
    # A class the receiver could not import by name, as a script's __main__
    # classes are: pickled by value.
    @dataclass(frozen=True)
    class LocalOrder:
        id: int
        sku: str
        quantity: int
        price: float

    return LocalOrder(12345, "ABC-123", 3, 9.99)


MESSAGES: dict[str, Any] = {
    "tuple": ("order", 12345, "ABC-123", 3, 9.99),
    "dataclass": Order(12345, "ABC-123", 3, 9.99),
    "by value": _by_value_order(),
}
MAC_SIZES = (64, 1024, SMALL_PAYLOAD, 4096, 65536)


@dataclass(frozen=True)
class Size:
    codec: int  # calls per codec figure
    mac: int  # tags of a 64-byte frame (fewer as frames grow)
    messages: int  # messages per throughput run


FULL = Size(100_000, 50_000, 200_000)
QUICK = Size(20_000, 5_000, 20_000)


# -- codec and MAC: plain loops -------------------------------------------------------


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def _codec_figures(n: int) -> dict[tuple[str, str], float]:
    figures = {}
    for label, message in MESSAGES.items():
        # cloudpickle re-pickles a by-value class every time: a hundredth.
        slow = max(n // 100, 10) if label == "by value" else n
        calls: dict[str, tuple[Callable[[], object], int]] = {
            "ours dumps": (partial(dumps, message), n),
            "ours loads": (partial(loads, dumps(message)), n),
            "cloudpickle dumps": (partial(cloudpickle.dumps, message, protocol=5), slow),
        }
        if label != "by value":  # pickle cannot send it: the receiver has no such name
            plain = pickle.dumps(message, protocol=5)
            calls["pickle dumps"] = (partial(pickle.dumps, message, protocol=5), n)
            calls["pickle loads"] = (partial(pickle.loads, plain), n)
        for what, (fn, count) in calls.items():
            figures[(label, what)] = _per_call_us(fn, count)
    return figures


def _tag(keyed: Any, head: bytes, payload: bytes) -> bytes:
    # As the wire's tagger does: a copy of the keyed state, two updates.
    h = keyed.copy()
    h.update(head)
    h.update(payload)
    return h.digest()[:16]  # type: ignore[no-any-return]


def _mac_figures(n: int) -> dict[tuple[int, str], float]:
    key = hashlib.sha256(b"key").digest()
    blake2b = hashlib.blake2b(key=key, digest_size=16)
    sha256 = hmac.new(key, digestmod=hashlib.sha256)
    tagger = Tagger(key)
    head = bytes(12)
    figures = {}
    for size in MAC_SIZES:
        payload = bytes(size)
        count = max(n * 64 // size, 200)

        figures[(size, "BLAKE2b-128")] = _per_call_us(partial(_tag, blake2b, head, payload), count)
        figures[(size, "HMAC-SHA256-128")] = _per_call_us(
            partial(_tag, sha256, head, payload), count
        )
        figures[(size, "the wire's tagger")] = _per_call_us(
            partial(tagger.tag, head, payload), count
        )
    return figures


# -- throughput: one task to another over a socketpair ---------------------------------


async def _socketpair() -> tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]:
    left, right = socket.socketpair()
    return (
        await anyio.abc.SocketStream.from_socket(left),
        await anyio.abc.SocketStream.from_socket(right),
    )


async def _wire(n: int, flush_each: bool = False) -> tuple[float, float]:
    """Messages per second through the wire, and envelopes per frame."""
    a, b = await _socketpair()
    sessions = {}

    async def accept() -> None:
        sessions["b"] = await handshake(b, SECRET, False)

    async with anyio.create_task_group() as tg:
        tg.start_soon(accept)
        sessions["a"] = await handshake(a, SECRET, True)
    message = MESSAGES["dataclass"]
    done = anyio.Event()

    async with (
        WireConnection(a, sessions["a"]) as sender,
        WireConnection(b, sessions["b"]) as receiver,
    ):

        async def consume() -> None:
            # As a router would: what the last frame brought by plain calls.
            receive, receive_nowait = receiver.receive, receiver.receive_nowait
            last = None
            for _ in range(n):
                try:
                    envelope = receive_nowait()
                except WouldBlock:
                    envelope = await receive()
                last = loads(envelope.body)
            if last != message:
                raise RuntimeError(f"benchmark lost messages: last {last!r}")
            done.set()

        async with anyio.create_task_group() as tg:
            start = time.perf_counter()
            tg.start_soon(consume)
            send = sender.send
            for _ in range(n):
                await send(Envelope(Kind.TELL, "/user/sink", "", 0, {}, dumps(message)))
                if flush_each:
                    await sender.flush()
            await done.wait()
            elapsed = time.perf_counter() - start
        stats = sender.statistics()
    return n / elapsed, stats.envelopes_sent / stats.frames_sent


_LENGTH = struct.Struct("!I")


async def _raw(n: int, batch: int) -> float:
    """Messages per second through a raw socket stream: the same pickles,
    length-prefixed, ``batch`` to a send; the receiver parses and unpickles."""
    a, b = await _socketpair()
    message = MESSAGES["dataclass"]
    done = anyio.Event()

    async def consume() -> None:
        buffer = bytearray()
        got = 0
        last = None
        unpack_from = _LENGTH.unpack_from
        while got < n:
            buffer += await b.receive()
            position = 0
            while len(buffer) - position >= 4:
                (size,) = unpack_from(buffer, position)
                end = position + 4 + size
                if end > len(buffer):
                    break
                last = pickle.loads(buffer[position + 4 : end])
                got += 1
                position = end
            del buffer[:position]
        if last != message:
            raise RuntimeError(f"benchmark lost messages: last {last!r}")
        done.set()

    async with a, b, anyio.create_task_group() as tg:
        start = time.perf_counter()
        tg.start_soon(consume)
        pack = _LENGTH.pack
        parts: list[bytes] = []
        for i in range(n):
            data = pickle.dumps(message, protocol=5)
            parts.append(pack(len(data)))
            parts.append(data)
            if len(parts) == 2 * batch or i == n - 1:
                await a.send(b"".join(parts))
                parts.clear()
        await done.wait()
        elapsed = time.perf_counter() - start
    return n / elapsed


# -- measuring ----------------------------------------------------------------------


def _measure_once(recorder: Recorder, backends: list[Backend], size: Size, record: bool) -> None:
    for (label, what), value in _codec_figures(size.codec).items():
        if record:
            recorder.add(("codec", label, what), value)
    for (frame, name), value in _mac_figures(size.mac).items():
        if record:
            recorder.add(("mac", frame, name), value)
    for backend in backends:
        rate, per_frame = run_on(backend, partial(_wire, size.messages))
        raw = run_on(backend, partial(_raw, size.messages, YIELD_EVERY))
        unbatched, _ = run_on(backend, partial(_wire, size.messages // 10, True))
        if record:
            recorder.add((backend, "wire"), rate)
            recorder.add((backend, "per frame"), per_frame)
            recorder.add((backend, "raw"), raw)
            recorder.add((backend, "unbatched"), unbatched)


def measure(backends: list[Backend], runs: int, size: Size) -> Recorder:
    """Every workload ``runs`` times, interleaved, after a small warm-up."""
    recorder = Recorder()
    _measure_once(recorder, backends, Size(500, 500, 2000), record=False)
    for run in range(runs):
        print(f"run {run + 1}/{runs}", file=sys.stderr, flush=True)
        _measure_once(recorder, backends, size, record=True)
    return recorder


# -- reporting ----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    label: str
    value: Spread
    target: Target | None
    unit: str

    def result(self) -> str:
        if self.target is None:
            return ""
        return "PASS" if self.target.met(self.value) else "MISS"


def _verdicts(recorder: Recorder, backends: list[Backend]) -> list[Verdict]:
    def get(*key: object) -> Spread:
        return recorder.spread(key)

    verdicts = [
        # The target names a small message of builtins; a dataclass costs
        # pickle itself more than that, so its row compares with pickle only.
        Verdict(
            "codec dumps, tuple, µs", get("codec", "tuple", "ours dumps"), Target("<=", 2.0), ""
        )
    ]
    verdicts += [
        Verdict(
            f"codec dumps / pickle.dumps, {label}",
            get("codec", label, "ours dumps").ratio(get("codec", label, "pickle dumps")),
            None,
            "x",
        )
        for label in ("tuple", "dataclass")
    ]
    verdicts.append(
        Verdict(
            "codec dumps / cloudpickle.dumps, by value",
            get("codec", "by value", "ours dumps").ratio(
                get("codec", "by value", "cloudpickle dumps")
            ),
            None,
            "x",
        )
    )
    for backend in backends:
        verdicts.append(
            Verdict(
                f"{backend}: wire / raw socketpair, batched, msg/s",
                get(backend, "wire").ratio(get(backend, "raw")),
                Target(">=", 0.5),
                "x",
            )
        )
        verdicts.append(
            Verdict(
                f"{backend}: batched / one frame per message, msg/s",
                get(backend, "wire").ratio(get(backend, "unbatched")),
                None,
                "x",
            )
        )
    return verdicts


def report(
    recorder: Recorder, backends: list[Backend], runs: int, size: Size, info: dict[str, object]
) -> dict[str, object]:
    """Print the tables and return the same results as JSON-ready data."""
    info = {**info, "load_average_end": load_average()}
    print(
        f"actors wire benchmark, {info['date']}\n"
        f"{info['python']}, {info['platform']}, {info['cpu']}, {info['cpus']} CPUs, "
        f"load {info['load_average']} -> {info['load_average_end']}; "
        f"anyio {info['anyio']}, trio {info['trio']}, cloudpickle {cloudpickle.__version__}\n"
        f"{size.messages:,} messages a throughput run; median of {runs} "
        f"run{'s' if runs != 1 else ''}, spread min-max"
    )

    rows = []
    for label, message in MESSAGES.items():
        first = True
        for what in (
            "ours dumps",
            "pickle dumps",
            "cloudpickle dumps",
            "ours loads",
            "pickle loads",
        ):
            key = ("codec", label, what)
            if key not in recorder.samples:
                continue
            title = f"{label}, {len(dumps(message))} B" if first else ""
            rows.append([title, what, *format_spread(recorder.spread(key), format_micros)])
            first = False
    print("\n== codec, µs per message ==\n")
    print(format_table(["message", "codec", "median", "spread"], rows, right=(2, 3)))

    rows = []
    for frame in MAC_SIZES:
        for i, name in enumerate(("BLAKE2b-128", "HMAC-SHA256-128", "the wire's tagger")):
            spread = recorder.spread(("mac", frame, name))
            rows.append(
                [f"{frame:,} B" if i == 0 else "", name, *format_spread(spread, _format_mac)]
            )
    print("\n== MAC, µs per frame ==\n")
    print(format_table(["frame", "MAC", "median", "spread"], rows, right=(2, 3)))

    rows = []
    for backend in backends:
        for path, label in (
            ("wire", "wire, batched"),
            ("raw", f"raw anyio socket stream, {YIELD_EVERY} to a send"),
            ("unbatched", "wire, flush after each message"),
        ):
            rows.append(
                [
                    backend if path == "wire" else "",
                    label,
                    *format_spread(recorder.spread((backend, path)), format_rate),
                ]
            )
        per_frame = recorder.spread((backend, "per frame"))
        rows.append(["", "(wire: envelopes per frame)", f"{per_frame.median:.0f}", ""])
    print("\n== throughput over a socketpair, msg/s ==\n")
    print(format_table(["backend", "path", "median", "spread"], rows, right=(2, 3)))

    verdicts = _verdicts(recorder, backends)
    print()
    print(
        format_table(
            ["figure", "median", "spread", "target", "result"],
            [
                [
                    v.label,
                    *format_spread(v.value, format_ratio if v.unit == "x" else _format_mac, v.unit),
                    str(v.target or "").replace("x", "") if v.unit != "x" else str(v.target or ""),
                    v.result(),
                ]
                for v in verdicts
            ],
            right=(1, 2),
        )
    )
    judged = [v.result() for v in verdicts if v.target is not None]
    print(f"\ntargets: {judged.count('PASS')} of {len(judged)} met")
    return {
        "machine": info,
        "runs": runs,
        "messages": size.messages,
        "samples": {
            " / ".join(str(part) for part in cast(tuple[object, ...], key)): values
            for key, values in recorder.samples.items()
        },
        "verdicts": [
            {
                "label": v.label,
                **v.value.as_json(),
                "target": str(v.target) if v.target else None,
                "passed": v.target.met(v.value) if v.target else None,
            }
            for v in verdicts
        ],
    }


def _format_mac(value: float) -> str:
    return f"{value:.2f}"


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args(
        "wire",
        __doc__,
        "a fifth of the codec calls, a tenth of the rest",
        argv,
    )
    size = QUICK if args.quick else FULL
    info = machine()
    recorder = measure(backends, args.runs, size)
    results = report(recorder, backends, args.runs, size, info)
    if args.json is not None:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
