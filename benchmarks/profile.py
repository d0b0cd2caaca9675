"""Profile one hot path of the runtime with pyinstrument (from the ``bench`` extra).

Usage: ``python -m benchmarks.profile PATH [--backend asyncio|trio] [--html FILE]``,
PATH one of:

- ``ask``: tell → mailbox → receive → reply, 20,000 asks to an echo actor;
- ``one_way``: 200,000 tells from one actor to another;
- ``spawn``: 20,000 actors spawned and stopped, each awaited;
- ``spawn_nowait``: 20,000 actors spawned and stopped without waiting for each;
- ``publish``: 1,000 messages published to 100 subscribers;
- ``restart``: 1,000 crashes of a child of a one_for_one supervisor of 1,000.

Prints the call tree (time in each function, callers above callees). The
profiler costs about as much again as the code, so read the shares, not the
totals; ``python -m benchmarks`` measures speed.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from . import actors as actor_benchmarks
from . import supervision, topics

PATHS: dict[str, Callable[[], Awaitable[Any]]] = {
    "ask": partial(actor_benchmarks._actors_ask, 20_000),
    "one_way": partial(actor_benchmarks._actors_one_way, 1, 200_000),
    "spawn": partial(actor_benchmarks._idle_actors_awaited, 20_000),
    # Its check that every actor runs shows as ActorSystem.tree: not spawn's.
    "spawn_nowait": partial(actor_benchmarks._idle_actors, 20_000),
    "publish": partial(topics._fan_out_topics, 1_000),
    "restart": partial(supervision.restart_latency, 1_000, 1_000),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("path", choices=sorted(PATHS))
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML view here")
    args = parser.parse_args(argv)
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("pyinstrument is missing: pip install -e '.[bench]'") from None
    for name in ("actors", "supervision"):  # as the suite does: crashes log tracebacks
        logging.getLogger(name).setLevel(logging.CRITICAL)
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    with profiler:
        anyio.run(PATHS[args.path], backend=args.backend)
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        args.html.write_text(profiler.output_html())


if __name__ == "__main__":
    main()
