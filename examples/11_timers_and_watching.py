"""Timers that die with their actor, and watching actors to learn when they are gone.

This example shows:

- ``self.context.schedule_every(interval, msg)``: a heartbeat the actor sends
  itself, returning a ``Timer`` that dies with the actor;
- ``self.context.schedule_once(delay, msg)``: a message to self, later;
- ``self.context.watch(ref)``: a ``Terminated(ref, reason)`` notice once the
  watched actor is gone, with ``reason`` ``None`` for a normal stop and the
  exception for a failure;
- ``await ref.join()``: the same notice for plain code outside actors, and
  ``ref.alive`` to ask without waiting;
- containing a failure: a parent that overrides ``on_child_failed`` to note the
  failure and carry on, so it does not travel up and fail the whole system
  (a plain parent would fail too; supervisors restart instead). The runtime
  still logs the failure, with its traceback, on the ``actors`` logger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import actors
from actors import Actor, ActorRef, ActorSystem, Channel, Terminated


@dataclass(frozen=True)
class Watch:
    ref: ActorRef


# --8<-- [start:watcher]
class Watcher(Actor):
    """Watches whatever it is told to, and reports each death notice."""

    def __init__(self, notices: Channel[Terminated]) -> None:
        self.notices = notices

    async def receive(self, message: object) -> None:
        match message:
            case Watch(ref):
                self.context.watch(ref)
            case Terminated(ref, None):
                print(f"watcher: {ref.path} terminated normally")
                await self.notices.send(message)
            case Terminated(ref, reason):
                print(f"watcher: {ref.path} terminated by a failure: {reason!r}")
                await self.notices.send(message)


# --8<-- [end:watcher]
# --8<-- [start:pulse]
class Pulse(Actor):
    """Beats every 50 ms; stops itself after ``beats`` beats."""

    def __init__(self, beats: int) -> None:
        self.beats = beats
        self.count = 0

    async def on_start(self) -> None:
        self.heartbeat = self.context.schedule_every(0.05, "beat")

    async def receive(self, message: object) -> None:
        match message:
            case "beat":
                self.count += 1
                print(f"pulse: beat {self.count}")
                if self.count == self.beats:
                    self.heartbeat.cancel()  # optional: timers die with the actor
                    await self.context.stop()

    async def on_stop(self) -> None:
        print(f"pulse: stopping after {self.count} beats")


# --8<-- [end:pulse]
# --8<-- [start:fragile]
class Fragile(Actor):
    async def receive(self, message: object) -> None:
        match message:
            case "crash soon":
                print("fragile: crashing in 50 ms")
                self.context.schedule_once(0.05, "crash")
            case "crash":
                raise RuntimeError("boom")


# --8<-- [end:fragile]
# --8<-- [start:parent]
class Parent(Actor):
    """Keeps a fragile child, and carries on when it fails."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    async def on_start(self) -> None:
        self.child = await self.context.spawn(Fragile, name="fragile")

    async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
        # The default re-raises, failing this actor too. Noting it and
        # returning contains the failure here.
        self.failures.append(f"{child.name} failed with {error!r}")

    async def receive(self, message: object) -> ActorRef | None:
        match message:
            case "child":
                return self.child
            case "status":
                print(f"parent: carrying on; failures noted: {self.failures}")
                print(f"parent: children now: {[c.name for c in self.context.children]}")
        return None


# --8<-- [end:parent]
# --8<-- [start:main]
async def main() -> None:
    async with ActorSystem() as system:
        notices = Channel[Terminated](math.inf)
        watcher = await system.spawn(Watcher, notices, name="watcher")

        print("-- heartbeats, then a normal stop")
        pulse = await system.spawn(Pulse, 3, name="pulse")
        await watcher.ask(Watch(pulse))
        await notices.receive()  # wait until the watcher has heard

        print("-- a failure, contained by the parent")
        parent = await system.spawn(Parent, name="parent")
        fragile = await parent.ask("child")
        await watcher.ask(Watch(fragile))
        await fragile.tell("crash soon")
        await notices.receive()
        await parent.ask("status")

        print("-- watching an actor that is already gone: the notice comes at once")
        await watcher.ask(Watch(pulse))
        await notices.receive()

        print("-- joining from plain code")
        ended = await fragile.join()  # how it ended, like a watcher's notice
        print(f"fragile: alive {fragile.alive}, ended with {ended.reason!r}")
        pulse = await system.spawn(Pulse, 1, name="pulse")
        ended = await pulse.join()  # waits until it is gone
        print(f"pulse: alive {pulse.alive}, ended normally: {ended.reason is None}")
    print("the system stopped normally")


# --8<-- [end:main]


if __name__ == "__main__":
    actors.run(main)
