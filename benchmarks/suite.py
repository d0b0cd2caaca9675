"""What a workload is, and the loop that measures one.

A :class:`Workload` is one question with one count for everyone ("one-way,
200,000 messages"). Its :class:`Impl` rows answer it: ours on each backend
first (the first of them is the figure the ratios are taken against), then
the raw substrate, then the peers, and a row with the reason for each that
cannot take part. ``benchmarks.workloads`` lists the suite's workloads.

Every run of every row gets a fresh event loop (or a fresh interpreter, for
resident memory); the rows are interleaved within a run and the runs follow
one another, so drift in the machine reaches every row alike.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ._util import BACKENDS, Backend

#: A run's figures by metric key.
Figures = dict[str, float]
#: Runs a row once for ``n`` messages (or actors, or restarts).
Runner = Callable[[int], Figures]


@dataclass(frozen=True)
class Metric:
    key: str
    #: What the figure is, for the table: "msg/s", "µs per round trip".
    title: str
    higher_is_better: bool


@dataclass(frozen=True)
class Impl:
    """One row of a workload: an implementation where it runs, or why not."""

    key: str
    label: str
    #: A backend; "threads" or "in-process" for the peers; "-" for a reason row.
    where: str
    run: Runner | None = None
    ours: bool = False
    #: The backends of ours whose figure this row is compared with.
    compare: tuple[Backend, ...] = ()
    #: Measure this fraction of the workload's count, for the reason given in
    #: ``why_scaled`` (the table says how many and why).
    scale: float = 1.0
    why_scaled: str = ""
    #: Key of another row of ours on the same backend to show this one against.
    relative_to: str | None = None
    #: Why this row has no figures.
    na: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    #: What the count counts: "messages", "actors", "restarts".
    noun: str
    full: int
    quick: int
    metrics: tuple[Metric, ...]
    impls: tuple[Impl, ...]
    #: False where every run starts an interpreter of its own anyway.
    warm_up: bool = True

    def count(self, quick: bool) -> int:
        return self.quick if quick else self.full

    @property
    def primary(self) -> str:
        """The key of the row of ours that the ratios are taken against."""
        return next(impl.key for impl in self.impls if impl.ours)


def scaled(n: int, scale: float) -> int:
    return max(int(n * scale), 1)


# -- measuring ------------------------------------------------------------------


@dataclass
class Measured:
    """The samples of one row: a list per metric, one value per run."""

    workload: Workload
    impl: Impl
    count: int
    samples: dict[str, list[float]]
    #: Wall-clock seconds of each run of the row, setting up included.
    seconds: list[float] = field(default_factory=list)
    failed: str | None = None


def select(
    all_workloads: list[Workload], backends: list[Backend], only: list[str] | None
) -> list[Workload]:
    """The workloads named in ``only`` (all by default), with the rows that run
    on ``backends`` and the ratios against ours on ``backends``."""
    chosen = []
    for workload in all_workloads:
        if only and workload.key not in only:
            continue
        impls = tuple(
            replace(impl, compare=tuple(b for b in impl.compare if b in backends))
            for impl in workload.impls
            if impl.where not in BACKENDS or impl.where in backends
        )
        chosen.append(replace(workload, impls=impls))
    return chosen


def measure(
    chosen: list[Workload], runs: int, quick: bool, progress: bool = True
) -> list[Measured]:
    """Run every row ``runs`` times, rows interleaved within each run.

    A row that raises is marked failed with the exception and skipped in the
    later runs; the others go on.
    """
    rows = [
        Measured(w, impl, scaled(w.count(quick), impl.scale), {m.key: [] for m in w.metrics})
        for w in chosen
        for impl in w.impls
        if impl.run is not None
    ]
    for run in range(runs):
        for row in rows:
            if row.failed or row.impl.run is None:
                continue
            if progress:
                print(
                    f"run {run + 1}/{runs}, {row.workload.key}: {row.impl.label}, {row.impl.where}",
                    file=sys.stderr,
                    flush=True,
                )
            began = time.perf_counter()
            try:
                figures = row.impl.run(row.count)
            except Exception as exc:  # reported in the table, and by the exit status
                row.failed = f"failed: {type(exc).__name__}: {exc}"
                print(row.failed, file=sys.stderr, flush=True)
                continue
            for key, values in row.samples.items():
                values.append(figures[key])
            row.seconds.append(time.perf_counter() - began)
    return rows


def warm_up(chosen: list[Workload]) -> None:
    """One small pass of ours and the substrate, not recorded: imports, caches
    and the allocator's pools settle before the first measured run."""
    for workload in chosen:
        n = max(workload.quick // 10, 10)
        for impl in workload.impls:
            if workload.warm_up and impl.run is not None and impl.where in BACKENDS:
                impl.run(scaled(n, impl.scale))
