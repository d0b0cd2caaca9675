"""Chart a saved suite run: ``python -m benchmarks.chart [PATH] [--out PNG]``.

Reads the JSON that ``python -m benchmarks`` wrote (by default
``benchmarks/results/latest.json``) and draws, with matplotlib (from the
``bench`` extra), one panel per workload that has baselines: a bar per row,
ours in blue, the raw substrate in grey, the peers in orange, each bar the
median with a whisker from the lowest to the highest run, on a log scale (a
row measured on a smaller count carries it in brackets); and
how one-way throughput holds up with more pairs at once. Writes
``docs/performance.png`` by default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._util import ROOT

DEFAULT_OUT = ROOT / "docs" / "performance.png"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "latest.json"
#: (workload, metric) per panel, in reading order; the last panel is pairs.
PANELS = (
    ("one_way", "rate"),
    ("round_trip", "us"),
    ("fan_out", "rate"),
    ("point_to_point", "rate"),
    ("unbuffered", "rate"),
    ("idle", "us_per_actor"),
    ("idle", "rss_per_actor"),
)
COLOURS = {"ours": "#1f6fb4", "primitive": "#8fbce6", "substrate": "#9a9a9a", "peer": "#e8892b"}


def _kind(row: dict[str, Any]) -> str:
    if row["ours"]:
        return "ours" if row["label"].startswith("actors:") else "primitive"
    return "peer" if row["where"] in ("threads", "in-process") else "substrate"


def draw(data: dict[str, Any], out: Path) -> None:
    """Draw the panels of ``data`` into the PNG ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    workloads = {w["key"]: w for w in data["workloads"]}
    panels = [(w, m) for w, m in PANELS if w in workloads]
    cols = 2
    rows = (len(panels) + 1 + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(15, 4.2 * rows), squeeze=False)
    for ax, (key, metric_key) in zip(axes.flat, panels, strict=False):
        workload = workloads[key]
        metric = next(m for m in workload["metrics"] if m["key"] == metric_key)
        bars = [r for r in workload["rows"] if "figures" in r]
        labels = [
            f"{r['label']} ({r['where']})"
            + (
                f" [{r['count']:,}]"
                if r.get("count", workload["count"]) != workload["count"]
                else ""
            )
            for r in bars
        ]
        medians = [r["figures"][metric_key]["median"] for r in bars]
        low = [m - r["figures"][metric_key]["min"] for m, r in zip(medians, bars, strict=True)]
        high = [r["figures"][metric_key]["max"] - m for m, r in zip(medians, bars, strict=True)]
        positions = list(range(len(bars)))[::-1]
        ax.barh(
            positions,
            medians,
            xerr=[low, high],
            color=[COLOURS[_kind(r)] for r in bars],
            capsize=2,
        )
        ax.set_yticks(positions, labels, fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(_number))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
        for y, value, row in zip(positions, medians, bars, strict=True):
            ax.annotate(
                _number(value),
                (row["figures"][metric_key]["max"], y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        ax.margins(x=0.15)
        better = "higher" if metric["higher_is_better"] else "lower"
        ax.set_title(
            f"{workload['title']}, {workload['count']:,} {workload['noun']}\n"
            f"{metric['title']} ({better} is better)",
            fontsize=10,
        )
        ax.grid(axis="x", which="both", alpha=0.3)
    used = len(panels)
    if "pairs" in workloads:
        _pairs(axes.flat[used], workloads["pairs"])
        used += 1
    for ax in list(axes.flat)[used:]:
        ax.set_visible(False)
    info = data["machine"]
    fig.suptitle(
        f"actors benchmark suite, {info['date'][:10]}: median of {data['runs']} runs, "
        f"whiskers min-max\n{info['python']}, {info['cpu']}, {info['cpus']} CPUs; "
        "blue: actors, light blue: actors.Channel, grey: asyncio/trio/anyio, orange: peers; "
        "[n]: measured on fewer (see the table)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")  # long right-hand titles
    plt.close(fig)


def _number(value: float, _: object = None) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _pairs(ax: Any, workload: dict[str, Any]) -> None:
    from matplotlib.ticker import FuncFormatter

    for backend in ("asyncio", "trio"):
        points = [
            (int(r["key"].split("_")[1]), r["figures"]["rate"]["median"])
            for r in workload["rows"]
            if r["where"] == backend and "figures" in r
        ]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=f"actors on {backend}")
    ax.set_xscale("log")
    ax.set_xticks([1, 10, 100, 1000], ["1", "10", "100", "1,000"])
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(_number))
    ax.set_xlabel("pairs at once")
    ax.set_ylabel("msg/s")
    ax.set_title(
        f"{workload['title']}, {workload['count']:,} {workload['noun']}\nmsg/s (flat is the goal)",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chart", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_JSON, help="(%(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="(%(default)s)")
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError:
        parser.exit(1, "matplotlib is not installed: pip install -e '.[bench]'\n")
    draw(json.loads(args.path.read_text(encoding="utf-8")), args.out)
    print(args.out)


if __name__ == "__main__":
    main()
