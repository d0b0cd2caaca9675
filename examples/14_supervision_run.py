"""A supervised script: ``supervision.run(tree)`` serves until Ctrl-C, then stops gracefully.

This example shows:

- ``supervision.run(tree)``, the main of a long-running script: it starts an
  actor system, spawns the tree, and waits; it picks the backend from
  ``ACTORS_BACKEND``, as ``actors.run`` does;
- Ctrl-C (SIGINT) or SIGTERM stops the tree gracefully: children in reverse
  start order, each completely before the next, each within its
  ``shutdown``, and then ``run`` returns (a second Ctrl-C cancels what is
  left at once);
- ``shutdown=`` per child: seconds to finish ``on_stop`` before being
  cancelled (here the web server drains its requests in time and the report
  writer does not), or ``"brutal_kill"``: cancelled at once, no ``on_stop``.

So that the tutorial ends on its own, the last child presses Ctrl-C for you:
it sends SIGINT to this process once everything before it has started. Run
``python examples/14_supervision_run.py --forever`` to leave it out and press
Ctrl-C yourself. ``supervision.run`` notes the signal on stderr.
"""

from __future__ import annotations

import os
import signal
import sys

import anyio

import actors
import supervision
from supervision import ChildSpec, Supervisor


class Database(actors.Actor):
    async def on_start(self) -> None:
        print("db: connected")

    async def on_stop(self) -> None:
        print("db: connections closed")


class Web(actors.Actor):
    async def on_start(self) -> None:
        print("web: listening")

    async def on_stop(self) -> None:
        print("web: draining requests in flight...")
        await anyio.sleep(0.1)  # well within its shutdown of 2 s
        print("web: drained, no longer listening")


class Reports(actors.Actor):
    async def on_start(self) -> None:
        print("reports: writing reports")

    async def on_stop(self) -> None:
        print("reports: finishing the report in hand...")
        try:
            await anyio.sleep(60)  # far beyond its shutdown of 0.2 s
        except anyio.get_cancelled_exc_class():
            print("reports: cancelled, 0.2 s into its shutdown")
            raise
        print("reports: done")  # never reached


class Metrics(actors.Actor):
    async def on_start(self) -> None:
        print("metrics: counting")

    async def on_stop(self) -> None:
        print("metrics: never printed: a brutal kill does not run on_stop")


class PressCtrlC(actors.Actor):
    """For the tutorial only: interrupts this process once the tree is up."""

    async def on_start(self) -> None:
        print("everything is up: pressing Ctrl-C")
        os.kill(os.getpid(), signal.SIGINT)

    async def on_stop(self) -> None:
        print("ctrl-c: stopped first, as it started last")


children = [
    ChildSpec(Database, name="db"),
    ChildSpec(Web, name="web", shutdown=2.0),
    ChildSpec(Reports, name="reports", shutdown=0.2),
    ChildSpec(Metrics, name="metrics", shutdown="brutal_kill"),
]
if "--forever" not in sys.argv:
    children.append(ChildSpec(PressCtrlC, name="ctrl-c"))
tree = ChildSpec(Supervisor, children, name="app")

if __name__ == "__main__":
    supervision.run(tree)
    print("supervision.run returned: the tree is down, and the script exits with status 0")
