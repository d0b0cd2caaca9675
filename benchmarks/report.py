"""The suite's results: as JSON, as one table, and judged against the targets.

Everything here works on the JSON form (:func:`results`), so a saved run can
be printed again (``python -m benchmarks --table PATH [--markdown]``) and
charted (``python -m benchmarks.chart PATH``) without measuring anything.

The ratio columns say how many times ours beats the row: our figure on that
backend (the workload's first row) over the row's for rates, the row's over
ours for times and sizes; above 1x we are faster or smaller. Each is the
median of the ratios taken run by run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._util import Spread, format_rate, format_table
from .suite import Measured, Workload

Json = dict[str, Any]


def _spread(data: Json) -> Spread:
    return Spread(data["median"], data["min"], data["max"], tuple(data["samples"]))


# -- JSON -------------------------------------------------------------------------


def results(
    measured: list[Measured],
    chosen: list[Workload],
    info: dict[str, object],
    backends: list[str],
    runs: int,
    quick: bool,
    seconds: float,
) -> Json:
    """The run as JSON-ready data: every row's samples, spreads and ratios."""
    by_row = {(m.workload.key, m.impl.key, m.impl.where): m for m in measured}
    workloads_json = []
    for workload in chosen:
        count = workload.count(quick)
        primary = {
            m.impl.where: m
            for m in measured
            if m.workload.key == workload.key and m.impl.key == workload.primary and not m.failed
        }
        rows = []
        for impl in workload.impls:
            row: Json = {
                "key": impl.key,
                "label": impl.label,
                "where": impl.where,
                "ours": impl.ours,
                "note": impl.note,
                "why_scaled": impl.why_scaled,
                "na": impl.na,
            }
            m = by_row.get((workload.key, impl.key, impl.where))
            if m is not None:
                row.update(count=m.count, failed=m.failed, seconds=m.seconds)
            if m is not None and not m.failed:
                row["figures"] = {k: Spread.of(v).as_json() for k, v in m.samples.items()}
                row["versus"] = {}
                for metric in workload.metrics:
                    theirs = Spread.of(m.samples[metric.key])
                    versus = {}
                    for backend in impl.compare:
                        if backend in primary:
                            ours = Spread.of(primary[backend].samples[metric.key])
                            ratio = (
                                ours.ratio(theirs)
                                if metric.higher_is_better
                                else theirs.ratio(ours)
                            )
                            versus[backend] = ratio.as_json()
                    row["versus"][metric.key] = versus
                other = by_row.get((workload.key, impl.relative_to or "", impl.where))
                if other is not None and not other.failed:
                    row["relative_to"] = other.impl.label
                    row["relative"] = {
                        k: Spread.of(v).ratio(Spread.of(other.samples[k])).as_json()
                        for k, v in m.samples.items()
                    }
            rows.append(row)
        workloads_json.append(
            {
                "key": workload.key,
                "title": workload.title,
                "noun": workload.noun,
                "count": count,
                "metrics": [
                    {"key": m.key, "title": m.title, "higher_is_better": m.higher_is_better}
                    for m in workload.metrics
                ],
                "rows": rows,
            }
        )
    data: Json = {
        "machine": info,
        "backends": backends,
        "runs": runs,
        "quick": quick,
        "seconds": round(seconds, 1),
        "workloads": workloads_json,
    }
    data["targets"] = judge(data)
    return data


# -- targets ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal from an issue, judged on the median on each backend.

    ``ours`` and ``theirs`` name rows as ``(key, where)``; ``where`` ``None``
    is the backend being judged. Without ``theirs`` the target is on our
    figure itself. ``invert`` judges ``theirs / ours`` (for "5x faster" on a
    time), instead of ``ours / theirs``.
    """

    issue: int
    text: str
    workload: str
    metric: str
    ours: str
    theirs: tuple[str, str | None] | dict[str, tuple[str, str | None]] | None
    op: Literal[">=", "<="]
    threshold: float
    invert: bool = False


TARGETS = (
    Target(2, "Channel(1000) ≥ 5x anyio stream(1000)", "one_way", "rate", "channel",
           ("anyio", None), ">=", 5),
    Target(2, "Channel(1000) ≥ 0.5x asyncio.Queue(1000)", "one_way", "rate", "channel",
           ("queue", "asyncio"), ">=", 0.5),
    Target(2, "Channel(0) ≥ 1.5x anyio stream(0)", "unbuffered", "rate", "channel",
           ("anyio", None), ">=", 1.5),
    Target(2, "Channel ping-pong ≤ 2x asyncio.Queue's (time)", "round_trip", "us", "channel",
           ("queue_ping", "asyncio"), "<=", 2),
    Target(3, "tell ≥ 0.5x asyncio.Queue; on trio, trio *_nowait", "one_way", "rate", "actors",
           {"asyncio": ("queue", "asyncio"), "trio": ("trio", "trio")}, ">=", 0.5),
    Target(3, "ask ≤ 2x asyncio.Queue + future; on trio, its trio twin (time)", "round_trip",
           "us", "actors", {"asyncio": ("queue", "asyncio"), "trio": ("trio_ask", "trio")},
           "<=", 2),
    Target(3, "idle actor ≤ 6 KiB resident", "idle", "rss_per_actor", "actors", None,
           "<=", 6144),
    Target(3, "spawn + stop ≤ 2x asyncio tasks on Queues; on trio, trio tasks (time)", "idle",
           "us_per_actor", "actors", {"asyncio": ("queue", "asyncio"), "trio": ("trio", "trio")},
           "<=", 2),
    Target(3, "1,000 pairs ≥ 0.5x 1 pair (goal: flat)", "pairs", "rate", "pairs_1000",
           ("pairs_1", None), ">=", 0.5),
    Target(4, "restart latency well under 1 ms (median < 1,000 µs)", "restart", "us",
           "actors", None, "<=", 1000),
    Target(5, "fan-out ≥ 0.5x raw Channel.send", "fan_out", "rate", "actors",
           ("channel", None), ">=", 0.5),
    Target(5, "fan-out ≥ 0.4x 100 asyncio.Queues", "fan_out", "rate", "actors",
           ("queue", "asyncio"), ">=", 0.4),
    Target(5, "matching, hot: 10,000 ≥ 0.5x 10 subscriptions", "matching", "rate",
           "hot_many", ("hot_few", None), ">=", 0.5),
    Target(5, "matching, cold: 10,000 ≥ 0.5x 10 subscriptions", "matching", "rate",
           "cold_many", ("cold_few", None), ">=", 0.5),
    Target(7, "one-way ≥ 5x pykka", "one_way", "rate", "actors", ("pykka", "threads"),
           ">=", 5),
    Target(7, "ask ≥ 5x faster than pykka", "round_trip", "us", "actors",
           ("pykka", "threads"), ">=", 5, invert=True),
    Target(7, "one-way ≥ 5x thespian", "one_way", "rate", "actors",
           ("thespian", "in-process"), ">=", 5),
    Target(16, "tell with the live page open ≥ 0.9x without", "page", "rate", "page",
           ("no_page", None), ">=", 0.9),
)  # fmt: skip

UNITS = {"rss_per_actor": " B", "us": " µs", "us_per_actor": " µs"}


def _samples(data: Json, workload: str, metric: str, key: str, where: str) -> Spread | None:
    for w in data["workloads"]:
        if w["key"] != workload:
            continue
        for row in w["rows"]:
            if row["key"] == key and row["where"] == where and "figures" in row:
                return _spread(row["figures"][metric])
    return None


def judge(data: Json) -> list[Json]:
    """Every target on every backend measured, with its figure and verdict.

    A target whose rows were not measured (a peer not installed, a workload
    not chosen) is listed with the verdict "n/a".
    """
    backends = data["backends"]
    verdicts = []
    for target in TARGETS:
        for backend in backends:
            ours = _samples(data, target.workload, target.metric, target.ours, backend)
            theirs_row = (
                target.theirs.get(backend) if isinstance(target.theirs, dict) else target.theirs
            )
            value: Spread | None = ours
            if theirs_row is not None and ours is not None:
                key, where = theirs_row
                theirs = _samples(data, target.workload, target.metric, key, where or backend)
                if theirs is None:
                    value = None
                elif target.invert:
                    value = theirs.ratio(ours)
                else:
                    value = ours.ratio(theirs)
            if value is None:
                passed, shown = None, "n/a"
            else:
                med = value.median
                passed = med >= target.threshold if target.op == ">=" else med <= target.threshold
                shown = (
                    f"{med:.2f}x"
                    if theirs_row is not None
                    else f"{med:,.0f}{UNITS.get(target.metric, '')}"
                )
            verdicts.append(
                {
                    "issue": target.issue,
                    "target": target.text,
                    "backend": backend,
                    "measured": shown,
                    "value": None if value is None else value.as_json(),
                    "passed": passed,
                }
            )
    return verdicts


# -- the table --------------------------------------------------------------------


def _fmt(value: float, metric: str) -> str:
    if metric == "rate" or value >= 1000:
        return format_rate(value)
    return f"{value:.1f}"


def _ratio(data: Json | None) -> str:
    return "" if data is None else f"{data['median']:.2f}x"


Group = tuple[str, list[list[str]]]


def table(data: Json) -> tuple[list[str], list[Group]]:
    """The header of the one table and its rows, grouped under a title line
    per workload and metric ("one-way, 200,000 messages: msg/s")."""
    backends = data["backends"]
    header = [
        "backend",
        "implementation",
        "median",
        "spread (min-max)",
        *(f"ours÷it, {b}" for b in backends),
        "note",
    ]
    groups: list[Group] = []
    for w in data["workloads"]:
        for metric in w["metrics"]:
            key = metric["key"]
            rows: list[list[str]] = []
            for row in w["rows"]:
                if row["na"] and metric is not w["metrics"][0]:
                    continue  # a reason is given once per workload
                notes = [row["note"]]
                if row.get("count") not in (None, w["count"]):
                    notes.insert(0, f"{row['count']:,} {w['noun']} measured ({row['why_scaled']})")
                if row["na"] or row.get("failed"):
                    cells = ["n/a", "", *("" for _ in backends)]
                    notes = [row["na"] or row["failed"]]
                else:
                    s = _spread(row["figures"][key])
                    cells = [
                        _fmt(s.median, key),
                        f"{_fmt(s.low, key)}-{_fmt(s.high, key)}",
                        *(_ratio(row["versus"][key].get(b)) for b in backends),
                    ]
                    if "relative" in row:
                        rel = row["relative"][key]["median"]
                        notes.insert(0, f"{rel:.2f}x {row['relative_to']}")
                rows.append([row["where"], row["label"], *cells, "; ".join(filter(None, notes))])
            title = f"{w['title']}, {w['count']:,} {w['noun']}: {metric['title']}"
            groups.append((title, rows))
    return header, groups


def _escape(cell: str) -> str:
    """A cell's text as markdown shows it literally."""
    return cell.replace("|", "\\|").replace("*", "\\*")


def _markdown(header: list[str], groups: list[Group], right: Sequence[int]) -> str:
    """A markdown table; a group's title, if any, is a bold row of its own."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    lines = [
        line([_escape(h) for h in header]),
        line(["---:" if i in right else "---" for i in range(len(header))]),
    ]
    for title, rows in groups:
        if title:
            lines.append(line([f"**{_escape(title)}**", *("" for _ in header[1:])]))
        lines += [line([_escape(c) for c in row]) for row in rows]
    return "\n".join(lines)


def render(data: Json, markdown: bool = False) -> str:
    """The header lines, the one table, the legend and the targets."""
    info = data["machine"]
    peers = ", ".join(f"{k} {v}" for k, v in info.get("peers", {}).items())
    lines = [
        f"actors benchmark suite, {info['date']}",
        f"{info['python']}, {info['platform']}, {info['cpu']}, {info['cpus']} CPUs, "
        f"load {info['load_average']} -> {info.get('load_average_end')}",
        f"anyio {info['anyio']}, trio {info['trio']}; {peers}",
        f"{'quick sizes' if data['quick'] else 'full sizes'}; median of {data['runs']} "
        f"run{'s' if data['runs'] != 1 else ''}; took {data['seconds']:,.0f} s",
        "",
    ]
    header, groups = table(data)
    right = range(2, len(header) - 1)
    if markdown:
        lines = [line + "  " if line else line for line in lines]
    lines.append(
        _markdown(header, groups, right)
        if markdown
        else format_table(header, right=right, groups=groups)
    )
    lines += [
        "",
        "ours÷it: how many times our figure (the workload's first row, on that backend) "
        "beats this row's; above 1x we are faster or smaller.",
        "",
    ]
    verdict_rows = [
        [
            str(v["issue"]),
            v["target"],
            v["backend"],
            v["measured"],
            {True: "PASS", False: "MISS", None: "n/a"}[v["passed"]],
        ]
        for v in data["targets"]
    ]
    target_header = ["issue", "target", "backend", "measured", "result"]
    lines.append(
        _markdown(target_header, [("", verdict_rows)], [3])
        if markdown
        else format_table(target_header, verdict_rows, right=[3])
    )
    judged = [v for v in data["targets"] if v["passed"] is not None]
    lines += ["", f"targets met: {sum(v['passed'] for v in judged)} of {len(judged)}"]
    return "\n".join(lines)
