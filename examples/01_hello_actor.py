"""Your first actor: a greeter you spawn, tell, ask and stop.

This example shows:

- subclassing ``Actor`` and handling messages in ``receive``;
- ``system.spawn`` starting an actor inside ``async with ActorSystem()``;
- ``tell``, which sends and does not wait for an answer;
- ``ask``, whose reply is whatever ``receive`` returns;
- ``stop``, which returns once the actor is gone (its ``on_stop`` has run),
  after which ``ask`` raises ``ActorStopped``.
"""

from __future__ import annotations

from typing import Any

import actors
from actors import Actor, ActorStopped, ActorSystem


# --8<-- [start:greeter]
class Greeter(Actor):
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting
        self.greeted = 0

    async def on_start(self) -> None:
        print(f"{self.ref.path}: started")

    async def receive(self, message: Any) -> Any:
        match message:
            case ("greet", name):
                self.greeted += 1
                print(f"{self.ref.path}: {self.greeting}, {name}!")
            case "how many?":
                return self.greeted
            case _:
                print(f"{self.ref.path}: I do not understand {message!r}")

    async def on_stop(self) -> None:
        print(f"{self.ref.path}: stopping after {self.greeted} greetings")


# --8<-- [end:greeter]
# --8<-- [start:main]
async def main() -> None:
    async with ActorSystem() as system:
        greeter = await system.spawn(Greeter, "Hello", name="greeter")
        print(f"spawned {greeter.name} at {greeter.path}")

        # tell: fire and forget. The messages are handled one at a time, in order.
        await greeter.tell(("greet", "Ada"))
        await greeter.tell(("greet", "Grace"))
        await greeter.tell("sing!")

        # ask: send, then wait for the value `receive` returns. It queues behind
        # the tells above, so the answer counts both greetings.
        count = await greeter.ask("how many?")
        print(f"main: the greeter has greeted {count} people")

        # stop: the actor finishes, runs on_stop, and is gone when this returns.
        await greeter.stop()
        print("main: the greeter is gone")

        # A stopped actor answers nothing: ask raises ActorStopped at once.
        try:
            await greeter.ask("how many?")
        except ActorStopped:
            print("main: asking a stopped actor raises ActorStopped")


# --8<-- [end:main]
# --8<-- [start:run]
if __name__ == "__main__":
    actors.run(main)
# --8<-- [end:run]
