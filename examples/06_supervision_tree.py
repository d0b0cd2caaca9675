"""A supervision tree: the same three-stage pipeline under each restart strategy.

This example shows:

- a tree: a root ``Supervisor`` whose children are supervisors themselves
  (``ChildSpec(Supervisor, [...], strategy=...)``), one per strategy;
- a pipeline source -> transform -> sink, where each stage connects itself to
  the stage before it when it starts, so a stage depends on those before it;
- ``one_for_one``: only the crashed transform restarts, and the sink is left
  connected to nothing, because its connection was to the dead transform;
- ``one_for_all``: every stage is stopped (in reverse order) and all are
  started again (in list order);
- ``rest_for_one``: the crashed stage and the ones after it restart, the
  source keeps running, and the pipeline flows again: the right strategy
  when later children depend on earlier ones;
- ``register_as``: a name in the registry that follows a child across
  restarts, which is how a stage finds the current incarnation of the one
  before it.

The crashes are logged on stderr; this lesson's output is on stdout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import actors
from actors import Actor, ActorRef, ActorSystem, Channel
from supervision import ChildSpec, Supervisor, which_children


@dataclass(frozen=True)
class Connect:
    """Sent by a stage to the stage before it: send your output to me."""

    downstream: ActorRef


@dataclass(frozen=True)
class Item:
    value: int


class Stage(Actor):
    """A pipeline stage: passes what ``work`` makes of each item downstream."""

    def __init__(self, line: str, upstream: str | None, events: Channel[str]) -> None:
        self.line = line
        self.upstream = upstream
        self.events = events  # main prints these, in the order they happened
        self.downstream: ActorRef | None = None

    # --8<-- [start:stage-start]
    async def on_start(self) -> None:
        if self.upstream is not None:
            upstream = self.context.system.registry.whereis(f"{self.line}.{self.upstream}")
            assert upstream is not None, "the stage before starts first"
            await upstream.tell(Connect(self.ref))
        await self.events.send(f"{self.ref.name} started")

    # --8<-- [end:stage-start]

    async def on_stop(self) -> None:  # after a crash too
        await self.events.send(f"{self.ref.name} stopped")

    async def receive(self, message: object) -> None:
        match message:
            case Connect(downstream):
                self.downstream = downstream
            case Item(value):
                result = self.work(value)
                if self.downstream is None:
                    await self.events.send(f"{self.ref.name}: nowhere to send {result}")
                else:
                    await self.downstream.tell(Item(result))

    def work(self, value: int) -> int:
        return value


class Source(Stage):
    pass


class Transform(Stage):
    def work(self, value: int) -> int:
        return math.isqrt(value)  # ValueError for a negative value: a crash


class Sink(Stage):
    async def receive(self, message: object) -> None:
        match message:
            case Item(value):
                await self.events.send(f"sink: got {value}")


# --8<-- [start:pipeline]
def pipeline(line: str, events: Channel[str]) -> list[ChildSpec]:
    """The stages in start order; each registers as ``<line>.<stage>``."""
    return [
        ChildSpec(Source, line, None, events, name="source", register_as=f"{line}.source"),
        ChildSpec(
            Transform, line, "source", events, name="transform", register_as=f"{line}.transform"
        ),
        ChildSpec(Sink, line, "transform", events, name="sink", register_as=f"{line}.sink"),
    ]


# --8<-- [end:pipeline]


async def send(system: ActorSystem, line: str, value: int) -> None:
    source = system.registry.whereis(f"{line}.source")
    assert source is not None
    await source.tell(Item(value))


async def crash_transform(system: ActorSystem, line: ActorRef, events: Channel[str]) -> None:
    print(f"-- {line.name}: the transform crashes on Item(-1)")
    await send(system, line.name, -1)
    # Wait until the new transform has started. Its supervisor may still be
    # busy with the rest of the restart; it answers which_children only after
    # that, since an actor handles one message at a time.
    seen = [await events.receive()]
    while seen[-1] != "transform started":
        seen.append(await events.receive())
    children = await which_children(line)
    # Now every stage the restart stopped or started has said so, in order.
    seen += [events.receive_nowait() for _ in range(len(events))]
    for event in seen:
        print(f"  {event}")
    print("  restarts:", ", ".join(f"{c.name} {c.restarts}" for c in children))
    await send(system, line.name, 16)
    print(f"  Item(16): {await events.receive()}")  # each item ends up somewhere


async def main() -> None:
    async with ActorSystem() as system:
        # --8<-- [start:tree]
        events = Channel[str](math.inf)
        strategies = ["one_for_one", "one_for_all", "rest_for_one"]
        tree = [
            ChildSpec(Supervisor, pipeline(strategy, events), strategy=strategy, name=strategy)
            for strategy in strategies
        ]
        root = await system.spawn(Supervisor, tree, name="pipelines", shutdown=math.inf)
        # --8<-- [end:tree]
        lines = await which_children(root)
        print(f"the tree: {root.path}, with a supervisor for each line")
        for line in lines:
            assert line.ref is not None
            stages = [stage.name for stage in await which_children(line.ref)]
            print(f"  {line.name}: {' -> '.join(stages)}")
        while len(events):  # "source started", ... nine times
            events.receive_nowait()
        for line in lines:
            assert line.ref is not None
            await crash_transform(system, line.ref, events)


if __name__ == "__main__":
    actors.run(main)
