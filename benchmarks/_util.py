"""Helpers shared by the benchmarks: backends, spreads, ratios, targets, tables."""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import trio

T = TypeVar("T")

Backend = Literal["asyncio", "trio"]
BACKENDS: tuple[Backend, ...] = ("asyncio", "trio")


def run_on(backend: Backend, fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn`` in a fresh event loop of ``backend``, after a full collection.

    A fresh loop per measurement keeps one workload's garbage and scheduler
    state out of the next one's timing.
    """
    gc.collect()
    return anyio.run(fn, backend=backend)


#: The repository root: where ``python -m benchmarks...`` finds the package.
ROOT = Path(__file__).resolve().parent.parent


def in_child(module: str, *args: str) -> dict[str, float]:
    """Run ``python -m module --child *args`` and return the JSON it prints.

    Measurements of resident memory need an interpreter of their own: one
    that has not yet grown its heap for an earlier workload.
    """
    out = subprocess.run(
        [sys.executable, "-m", module, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, float] = json.loads(out.splitlines()[-1])
    return result


def idle_figures(
    n: int, rss_before: int, rss_after: int, start: float, spawned: float, stopped: float
) -> dict[str, float]:
    """The figures of an idle-actor run: µs per actor spawned and stopped, µs
    per actor spawned, and resident bytes per idle actor."""
    return {
        "us_per_actor": (stopped - start) / n * 1e6,
        "spawn_us": (spawned - start) / n * 1e6,
        "rss_per_actor": (rss_after - rss_before) / n,
    }


@dataclass(frozen=True)
class Spread:
    """The median of several runs, with the lowest and the highest."""

    median: float
    low: float
    high: float
    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        if not samples:
            raise ValueError("a spread needs at least one sample")
        return cls(statistics.median(samples), min(samples), max(samples), tuple(samples))

    def ratio(self, other: Spread) -> Spread:
        """Per-run ratios ``self / other``, paired by run: runs share conditions."""
        if len(self.samples) != len(other.samples):
            raise ValueError("ratio of spreads with different numbers of runs")
        return Spread.of([a / b for a, b in zip(self.samples, other.samples, strict=True)])

    def as_json(self) -> dict[str, object]:
        return {
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "samples": list(self.samples),
        }


@dataclass
class Recorder:
    """Collects one sample per run for each key, in any interleaving."""

    samples: dict[Hashable, list[float]] = field(default_factory=dict)

    def add(self, key: Hashable, value: float) -> None:
        self.samples.setdefault(key, []).append(value)

    def spread(self, key: Hashable) -> Spread:
        return Spread.of(self.samples[key])


@dataclass(frozen=True)
class Target:
    """A goal for a ratio: ``ratio >= threshold`` or ``ratio <= threshold``.

    Judged on the median; a miss is reported, never fatal.
    """

    op: Literal[">=", "<="]
    threshold: float

    def met(self, ratio: Spread) -> bool:
        if self.op == ">=":
            return ratio.median >= self.threshold
        return ratio.median <= self.threshold

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.threshold:g}x"


def format_ratio(value: float) -> str:
    """``2.345`` -> ``"2.35"`` (the table adds the ``x``)."""
    return f"{value:.2f}"


def format_rate(value: float) -> str:
    """Messages per second with thousands separators: ``"1,234,567"``."""
    return f"{value:,.0f}"


def format_micros(value: float) -> str:
    """Microseconds with one decimal: ``"12.3"``."""
    return f"{value:.1f}"


def format_spread(spread: Spread, fmt: Callable[[float], str], unit: str = "") -> tuple[str, str]:
    """The median and the ``min-max`` range, formatted with ``fmt`` and ``unit``."""
    return fmt(spread.median) + unit, f"{fmt(spread.low)}-{fmt(spread.high)}{unit}"


def format_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]] = (),
    right: Sequence[int] = (),
    groups: Sequence[tuple[str, Sequence[Sequence[str]]]] = (),
) -> str:
    """A plain-text table; the columns whose indexes are in ``right`` align
    right. ``groups`` are ``(title, rows)`` after ``rows``, each under a blank
    line and its title, in the same columns."""
    widths = [len(h) for h in header]
    for row in [*rows, *(row for _, grouped in groups for row in grouped)]:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines = [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]
    for title, grouped in groups:
        lines += ["", title, *(line(row) for row in grouped)]
    return "\n".join(lines)


def versions(distributions: Sequence[str]) -> dict[str, str]:
    """Each distribution's installed version, or ``"not installed"`` (the peers'
    of a benchmark, for its headline and JSON)."""
    out = {}
    for name in distributions:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def load_average() -> float | None:
    """The 1-minute load average, where the OS has one.

    Other work on the machine shows up here before it shows in the spread.
    """
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine() -> dict[str, object]:
    """Where and when the numbers were taken, for the header and the JSON."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for text in f:
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_average": load_average(),
        "anyio": version("anyio"),
        "trio": trio.__version__,
    }


def write_json(path: Path, data: object) -> None:
    """Write results as indented JSON (UTF-8, µs kept as is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def parse_args(
    module: str, doc: str, quick_help: str, argv: list[str] | None
) -> tuple[argparse.Namespace, list[Backend]]:
    """The command line every topic module shares: ``--quick``, ``--runs``,
    ``--backend`` and ``--json``; returns the arguments and the backends."""
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{module}", description=doc.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--runs", type=int, default=3, help="runs per workload (3)")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both", help="(both)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write results")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    return args, backends


def headline(title: str, info: dict[str, object], about: str, runs: int) -> str:
    """The two lines that open a module's report: what, when, where, the
    machine's load, ``about`` (versions, settings) and how many runs."""
    return (
        f"actors {title} benchmark, {info['date']}\n"
        f"{info['python']}, {info['platform']}, {info['cpu']}, {info['cpus']} CPUs, "
        f"load {info['load_average']}; {about}; "
        f"median of {runs} run{'s' if runs != 1 else ''}, spread min-max"
    )


def repeat_runs(
    runs: int, run: Callable[[], None], warm_up: Callable[[], None] | None = None
) -> None:
    """``warm_up`` once if given, then ``run`` ``runs`` times, saying which on stderr."""
    if warm_up is not None:
        print("warm-up", file=sys.stderr, flush=True)
        warm_up()
    for n in range(runs):
        print(f"run {n + 1}/{runs}", file=sys.stderr, flush=True)
        run()


def print_verdicts(verdicts: list[tuple[str, Spread, Target]]) -> None:
    """Print same-run ratios with their targets, PASS or MISS (never failing)."""
    print("\n== ratios (same run) ==\n")
    print(
        format_table(
            ["ratio", "median", "spread", "target", ""],
            [
                [
                    label,
                    *format_spread(value, format_ratio, "x"),
                    str(target),
                    "PASS" if target.met(value) else "MISS",
                ]
                for label, value, target in verdicts
            ],
            right=(1, 2),
        )
    )


def spreads_json(recorder: Recorder) -> dict[str, Any]:
    """Each recorded figure's spread, keyed by its key's parts joined with '/'."""
    return {
        "/".join(key): recorder.spread(key).as_json()
        for key in recorder.samples
        if isinstance(key, tuple)
    }
