"""Publish-subscribe: actors subscribe to topic patterns, and every match gets a copy.

This example shows:

- ``self.context.subscribe(pattern)`` in ``on_start``, and
  ``system.publish(topic, message)``, which returns how many subscribers got
  the message;
- topics as dotted tokens, and NATS's wildcards in patterns: ``*`` matches one
  token (``orders.*.created``), ``>`` one or more at the end (``orders.>``);
- plain subscribers each get their own copy, and an actor whose patterns
  overlap still gets one copy, not one per pattern;
- the message itself arrives in ``receive``, so it carries what the
  subscriber needs to know (here, its topic);
- publishing is to a concrete topic: a wildcard there is a ``ValueError``;
- a message nobody subscribes to is not lost silently: ``publish`` returns 0
  and it becomes a dead letter, published on ``actors.DEAD_LETTERS_TOPIC``,
  which a pull subscription (``async with system.subscription(...)``) reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import actors
from actors import Actor, ActorSystem, Channel


# --8<-- [start:desk]
@dataclass(frozen=True)
class OrderEvent:
    topic: str
    order: int


class Desk(Actor):
    """Subscribes to its patterns, and reports every event it gets to ``log``."""

    def __init__(self, patterns: list[str], log: Channel[str]) -> None:
        self.patterns = patterns
        self.log = log

    async def on_start(self) -> None:
        for pattern in self.patterns:
            self.context.subscribe(pattern)

    async def receive(self, message: object) -> None:
        match message:
            case OrderEvent(topic, order):
                await self.log.send(f"{self.ref.name} got order {order} ({topic})")


# --8<-- [end:desk]


async def publish(system: ActorSystem, log: Channel[str], topic: str, order: int) -> None:
    delivered = await system.publish(topic, OrderEvent(topic, order))
    print(f"publish({topic!r}) returned {delivered}")
    # The desks run concurrently; sort what they report so every run reads alike.
    for line in sorted([await log.receive() for _ in range(delivered)]):
        print(f"  {line}")


# --8<-- [start:main]
async def main() -> None:
    async with ActorSystem() as system:
        log = Channel[str](math.inf)
        desks = {
            "billing": ["orders.*.created"],
            "email": ["orders.*.created"],
            "eu-shipping": ["orders.eu.shipped"],
            "audit": ["orders.>", "orders.eu.>"],  # overlapping on purpose
        }
        for name, patterns in desks.items():
            await system.spawn(Desk, patterns, log, name=name)
            print(f"{name} subscribes to {', '.join(patterns)}")

        print("-- every subscriber whose pattern matches gets a copy")
        await publish(system, log, "orders.eu.created", 1)
        await publish(system, log, "orders.us.created", 2)
        await publish(system, log, "orders.eu.shipped", 1)
        await publish(system, log, "orders.us.cancelled", 2)
        await publish(system, log, "orders.eu.express.created", 3)  # '*' is one token

        print("-- publishing to a pattern is an error")
        try:
            await publish(system, log, "orders.*.created", 4)
        except ValueError as error:
            print(f"  ValueError: {str(error).split(';')[0]}")

        print("-- a topic nobody subscribes to: a dead letter")
        # --8<-- [start:dead-letters]
        async with system.subscription(actors.DEAD_LETTERS_TOPIC) as dead_letters:
            await publish(system, log, "refunds.eu.created", 5)
            letter = await dead_letters.receive()
            print(f"  dead letter: {letter.message} ({letter.reason}, topic {letter.topic})")
        # --8<-- [end:dead-letters]


# --8<-- [end:main]


if __name__ == "__main__":
    actors.run(main)
