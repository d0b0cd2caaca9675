"""The cost of tracing: tell and ask with the OpenTelemetry API imported but
not instrumented, vs without it imported; and instrumented.

Usage: ``python -m benchmarks.tracing [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

Each run measures each mode in a fresh interpreter (so "not imported" means
``opentelemetry`` is absent from ``sys.modules``), the modes alternating:

- ``off``: ``actors.tracing`` never instrumented, the API not imported;
- ``imported``: ``opentelemetry.trace`` imported and ``actors.tracing``
  instrumented then uninstrumented (the state of an application that has the
  extra and turned tracing off);
- ``on``: instrumented with the SDK's ``TracerProvider`` (every span sampled
  and recorded, no exporter: the cost of the spans themselves).

Workloads: tell, one actor telling another (as ``benchmarks.actors``'
one-way row); ask, round trips to an echo actor. Rates are per second of the
process's CPU time (the workloads are single-threaded and CPU-bound), the
best of three in each interpreter, so that other load on the machine does not
decide the ratio. Target (issue 16): imported
at least 0.97x of off (median of per-run ratios); "on" has no target.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

import anyio

from ._util import (
    Target,
    format_rate,
    format_ratio,
    format_table,
    in_child,
    machine,
    parse_args,
    write_json,
)

MODES = ("off", "imported", "on")
TELLS, QUICK_TELLS = 200_000, 50_000
ASKS, QUICK_ASKS = 20_000, 5_000
TARGET = Target(">=", 0.97)


async def _workloads(tells: int, asks: int) -> dict[str, float]:
    from actors import Actor, ActorSystem

    done = anyio.Event()

    class Sink(Actor):
        left = tells

        async def receive(self, message: Any) -> Any:
            Sink.left -= 1
            if not Sink.left:
                done.set()
            return message

    async with ActorSystem() as system:
        sink = await system.spawn(Sink, name="sink")
        start = time.process_time()
        tell = sink.tell
        for i in range(tells):
            await tell(i)
        await done.wait()
        tell_rate = tells / (time.process_time() - start)
        echo = await system.spawn(Sink, name="echo")
        ask = echo.ask
        start = time.process_time()
        for i in range(asks):
            await ask(i)
        ask_rate = asks / (time.process_time() - start)
    return {"tell": tell_rate, "ask": ask_rate}


def _child(mode: str, backend: str, tells: int, asks: int) -> None:
    if mode != "off":
        from opentelemetry import trace  # noqa: F401

        from actors import tracing

        if mode == "imported":
            tracing.instrument()
            tracing.uninstrument()
        else:
            from opentelemetry.sdk.trace import TracerProvider

            tracing.instrument(TracerProvider())
    else:
        import actors  # noqa: F401

        assert "opentelemetry" not in sys.modules
    # The best of three in one interpreter: interference only slows a run down.
    runs = [anyio.run(_workloads, tells, asks, backend=backend) for _ in range(3)]
    print(json.dumps({key: max(run[key] for run in runs) for key in runs[0]}))


def main(argv: list[str] | None = None) -> None:
    if argv and argv[0] == "--child":
        _child(argv[1], argv[2], int(argv[3]), int(argv[4]))
        return
    args, backends = parse_args(
        "tracing", __doc__ or "", f"{QUICK_TELLS:,} tells and {QUICK_ASKS:,} asks", argv
    )
    tells, asks = (QUICK_TELLS, QUICK_ASKS) if args.quick else (TELLS, ASKS)
    samples: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(args.runs):
        for backend in backends:
            for mode in MODES:
                result = in_child("benchmarks.tracing", mode, backend, str(tells), str(asks))
                for workload, rate in result.items():
                    samples.setdefault((backend, workload, mode), []).append(rate)
    rows = []
    results: dict[str, Any] = {"machine": machine(), "tells": tells, "asks": asks, "rows": []}
    for backend in backends:
        for workload in ("tell", "ask"):
            off = samples[(backend, workload, "off")]
            imported = samples[(backend, workload, "imported")]
            on = samples[(backend, workload, "on")]
            ratio = statistics.median(a / b for a, b in zip(imported, off, strict=True))
            on_ratio = statistics.median(a / b for a, b in zip(on, off, strict=True))
            met = ratio >= TARGET.threshold
            rows.append(
                [
                    backend,
                    workload,
                    format_rate(statistics.median(off)),
                    format_rate(statistics.median(imported)),
                    format_ratio(ratio) + "x",
                    str(TARGET),
                    "PASS" if met else "MISS",
                    format_rate(statistics.median(on)),
                    format_ratio(on_ratio) + "x",
                ]
            )
            results["rows"].append(
                {
                    "backend": backend,
                    "workload": workload,
                    "off": statistics.median(off),
                    "imported": statistics.median(imported),
                    "ratio": ratio,
                    "target": str(TARGET),
                    "met": met,
                    "on": statistics.median(on),
                    "on_ratio": on_ratio,
                }
            )
    print(f"{tells:,} tells, {asks:,} asks per run; median of {args.runs} runs (msg/s)")
    print(
        format_table(
            ["backend", "", "off", "imported", "ratio", "target", "", "on", "on/off"],
            rows,
            right=[2, 3, 4, 7, 8],
        )
    )
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main(sys.argv[1:])
