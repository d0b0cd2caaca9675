"""A caching front for a slow service: asks answered later, work piped to self.

This example shows:

- ``self.context.reply_later()``: take the reply of an ask and answer it
  later with ``reply.send(value)`` or ``reply.fail(error)`` (OTP's
  ``gen_server:reply``), so ``receive`` returns at once;
- ``self.context.pipe_to_self(fn, *args, message=..., on_error=...)``: run a
  slow call in a goroutine and get its result back as a message (Akka's
  ``pipeToSelf``), so the actor keeps handling messages meanwhile;
- request coalescing: two asks for the same key share one call to the
  service, and a failed call fails every ask waiting for it;
- an ``ask`` that awaited inside ``receive`` instead would have blocked the
  actor until the service answered.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import anyio.lowlevel

import actors
from actors import Actor, ActorSystem, Reply

# A stand-in for a slow remote service: it answers once ``gate`` opens.


async def fetch_price(gate: anyio.Event, item: str) -> int:
    await gate.wait()
    if item == "unicorn":
        raise LookupError(f"no price for {item!r}")
    return len(item) * 10


# --8<-- [start:messages]
@dataclass(frozen=True)
class GetPrice:
    item: str


@dataclass(frozen=True)
class Fetched:
    item: str
    price: int


@dataclass(frozen=True)
class FetchFailed:
    item: str
    error: Exception


@dataclass(frozen=True)
class Status:
    pass


# --8<-- [end:messages]
# --8<-- [start:prices]
class Prices(Actor):
    def __init__(self, gate: anyio.Event) -> None:
        self.gate = gate
        self.cache: dict[str, int] = {}
        self.waiting: dict[str, list[Reply]] = {}  # item -> asks to answer

    async def receive(self, message: object) -> object:
        match message:
            case GetPrice(item) if item in self.cache:
                return self.cache[item]
            case GetPrice(item):
                if item not in self.waiting:  # the first ask starts the call
                    self.waiting[item] = []
                    self.context.pipe_to_self(
                        fetch_price,
                        self.gate,
                        item,
                        message=lambda price: Fetched(item, price),
                        on_error=lambda error: FetchFailed(item, error),
                    )
                self.waiting[item].append(self.context.reply_later())
            case Fetched(item, price):
                self.cache[item] = price
                for reply in self.waiting.pop(item):
                    reply.send(price)
            case FetchFailed(item, error):
                for reply in self.waiting.pop(item):
                    reply.fail(error)
            case Status():
                return f"{len(self.waiting)} calls in flight, {len(self.cache)} cached"
            case _:
                return self.unhandled(message)
        return None


# --8<-- [end:prices]


async def main() -> None:
    gate = anyio.Event()
    async with ActorSystem() as system:
        prices = await system.spawn(Prices, gate, name="prices")
        answers: dict[str, object] = {}

        async def client(name: str, item: str) -> None:
            try:
                answers[name] = await prices.ask(GetPrice(item))
            except LookupError as error:
                answers[name] = f"failed: {error}"

        async with anyio.create_task_group() as tg:
            for name, item in [("ann", "tea"), ("bob", "coffee"), ("cy", "tea"), ("di", "unicorn")]:
                tg.start_soon(client, name, item)
            # The actor is free while the calls are in flight: it answers.
            while (status := await prices.ask(Status())) != "3 calls in flight, 0 cached":
                await anyio.lowlevel.checkpoint()
            print("while waiting:", status)
            gate.set()  # the service answers
        for name in sorted(answers):
            print(f"{name}: {answers[name]}")
        print("afterwards:", await prices.ask(Status()))
        print("cached, at once:", await prices.ask(GetPrice("tea")))


if __name__ == "__main__":
    actors.run(main)
