"""Let it crash: a worker with a bug, and a supervisor that restarts it with fresh state.

This example shows:

- ``Supervisor`` and ``ChildSpec``: the supervisor builds its child from the
  spec, and builds it again, from scratch, each time it fails;
- a crash costs the worker its state: the new incarnation starts empty, the
  way a restarted process does, instead of carrying on with state the bug may
  have corrupted;
- ``which_children``: each child's state and how often it was restarted;
- a restarted child is a new incarnation with a new ref: the old ref is dead
  (``ask`` raises ``ActorStopped``), so look the child up again;
- restart intensity: after more than ``max_restarts`` crashes within
  ``within`` seconds the supervisor gives up and fails with
  ``SupervisorGaveUp``, and at the top ``async with ActorSystem()`` raises it.

Every failure is logged, with its traceback, on the ``actors`` logger, and
every restart at INFO level on the ``supervision`` logger. Here both go to
stderr as one line each, tracebacks left out, so the story stays readable next
to the output; keep the tracebacks in a real application.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass

import anyio

import actors
from actors import ActorRef, ActorStopped, ActorSystem, Channel, SupervisorGaveUp
from supervision import ChildSpec, Supervisor, which_children


# --8<-- [start:worker]
@dataclass(frozen=True)
class Count:
    text: str


@dataclass(frozen=True)
class Totals:
    pass


class WordCounter(actors.Actor):
    """Counts words. It trusts its input: a ``Count(None)`` is a bug, and crashes it."""

    def __init__(self, started: Channel[ActorRef]) -> None:
        self.started = started
        self.totals: Counter[str] = Counter()

    async def on_start(self) -> None:
        print(f"word counter: started, knowing {len(self.totals)} words")
        await self.started.send(self.ref)  # tell main which incarnation is current

    async def receive(self, message: object) -> dict[str, int] | None:
        match message:
            case Count(text):
                self.totals.update(text.split())  # AttributeError if text is None
            case Totals():
                return dict(self.totals)
        return None


# --8<-- [end:worker]


class OneLine(logging.Formatter):
    """A log format of one line per event: tracebacks are left out."""

    def formatException(self, ei: object) -> str:
        return ""


async def show_children(supervisor: ActorRef) -> None:
    for child in await which_children(supervisor):
        print(f"  which_children: {child.name} {child.state}, restarts {child.restarts}")


async def main() -> None:
    to_stderr = logging.StreamHandler()
    to_stderr.setFormatter(OneLine("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[to_stderr])

    # --8<-- [start:supervise]
    async with ActorSystem() as system:
        # The same channel goes to every incarnation: the spec keeps its arguments.
        started = Channel[ActorRef](math.inf)
        spec = ChildSpec(WordCounter, started, name="words")
        app = await system.spawn(Supervisor, [spec], name="app")
        words = await started.receive()

        await words.tell(Count("to be or not to be"))
        print(f"totals: {await words.ask(Totals())}")
        await show_children(app)

        print("-- a bug: Count(None)")
        await words.tell(Count(None))  # type: ignore[arg-type]
        new_words = await started.receive()  # the supervisor started a new incarnation
        await show_children(app)
        print(f"totals after the restart: {await new_words.ask(Totals())}")
        try:
            await words.ask(Totals())
        except ActorStopped:
            print("the old ref is dead: ask raised ActorStopped")
        await new_words.tell(Count("let it crash"))
        print(f"totals: {await new_words.ask(Totals())}")
    # --8<-- [end:supervise]

    # --8<-- [start:give-up]
    print("-- a worker that keeps crashing: the supervisor gives up")
    try:
        async with ActorSystem() as system:
            started = Channel[ActorRef](math.inf)
            spec = ChildSpec(WordCounter, started, name="words")
            await system.spawn(Supervisor, [spec], max_restarts=2, within=5.0, name="fragile-app")
            for crash in range(1, 4):
                words = await started.receive()
                print(f"crash {crash}")
                await words.tell(Count(None))  # type: ignore[arg-type]
            await anyio.sleep_forever()  # until the failure cancels this
    except SupervisorGaveUp as error:
        print("async with ActorSystem() raised SupervisorGaveUp:")
        print(f"  {str(error).split(';')[0]}")
    # --8<-- [end:give-up]


if __name__ == "__main__":
    actors.run(main)
