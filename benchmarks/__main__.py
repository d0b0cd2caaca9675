"""The whole suite in one run: ``python -m benchmarks``.

Usage: ``python -m benchmarks [--quick] [--runs N] [--backend asyncio|trio|both]
[--only WORKLOAD,...] [--json PATH] [--markdown]``, or
``python -m benchmarks --table PATH [--markdown]`` to print a saved run again.

Every workload runs on both backends beside the raw substrate (``asyncio.Queue``,
trio memory channels, anyio memory object streams) and the peers (pykka and
thespian, from the ``bench`` extra; shown as "not installed" without it), with
the same counts for everyone. It prints one table (each figure the median of
``--runs`` runs with the spread, and the ratios), then the targets of the
issues with PASS or MISS, and writes the same as JSON. A miss never changes
the exit status; a workload that fails does.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from . import report, suite, workloads
from ._util import BACKENDS, ROOT, load_average, machine, versions, write_json

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    keys = [w.key for w in workloads.workloads()]
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts: under a minute")
    parser.add_argument("--runs", type=int, default=3, help="runs of every row (3)")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both", help="(both)")
    parser.add_argument("--only", metavar="WORKLOAD,...", help=f"some of: {', '.join(keys)}")
    parser.add_argument(
        "--json", type=Path, metavar="PATH", default=DEFAULT_JSON, help="(%(default)s)"
    )
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--table", type=Path, metavar="PATH", help="print a saved run again")
    args = parser.parse_args(argv)
    if args.table is not None:
        print(report.render(json.loads(args.table.read_text("utf-8")), args.markdown))
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    only = args.only.split(",") if args.only else None
    if only and set(only) - set(keys):
        parser.error(f"unknown workloads: {', '.join(sorted(set(only) - set(keys)))}")
    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    # The restart workload crashes actors on purpose: formatting thousands of
    # logged tracebacks would be what it measured.
    for name in ("actors", "supervision"):
        logging.getLogger(name).setLevel(logging.CRITICAL)

    info = {**machine(), "peers": versions(["pykka", "thespian"])}
    began = time.perf_counter()
    chosen = suite.select(workloads.workloads(args.quick), backends, only)
    suite.warm_up(chosen)
    measured = suite.measure(chosen, args.runs, args.quick)
    info["load_average_end"] = load_average()
    data = report.results(
        measured, chosen, info, backends, args.runs, args.quick, time.perf_counter() - began
    )
    print(report.render(data, args.markdown))
    write_json(args.json, data)
    print(f"\nwritten: {args.json}", file=sys.stderr)
    return 1 if any(m.failed for m in measured) else 0


if __name__ == "__main__":
    sys.exit(main())
