"""Go's concurrent prime sieve, as goroutines owned by an actor.

This example shows:

- ``actors.go(fn, *args)`` inside an actor: the goroutine belongs to the actor,
  like a child task in a nursery;
- unbuffered channels chaining goroutines into a pipeline, one filter per prime;
- goroutines that loop forever are no leak: stopping their actor cancels them
  (an exception in one would fail the actor, so nothing fails silently).

It is the sieve from Go's tour (https://go.dev/doc/play/sieve.go), line for line.
"""

from __future__ import annotations

from typing import Any

import actors
from actors import Actor, ActorSystem, Channel


# --8<-- [start:sieve]
class Sieve(Actor):
    def __init__(self) -> None:
        self.running = 0

    async def generate(self, out: Channel[int]) -> None:
        """Send 2, 3, 4, ... to ``out``, forever."""
        self.running += 1
        try:
            i = 2
            while True:
                await out.send(i)
                i += 1
        finally:
            self.running -= 1

    async def filter(self, source: Channel[int], out: Channel[int], prime: int) -> None:
        """Copy the numbers from ``source`` to ``out``, except multiples of ``prime``."""
        self.running += 1
        try:
            while True:
                i = await source.receive()
                if i % prime != 0:
                    await out.send(i)
        finally:
            self.running -= 1

    async def receive(self, message: Any) -> Any:
        match message:
            case ("primes", int(count)):
                primes = []
                ch = Channel[int]()
                actors.go(self.generate, ch)
                for _ in range(count):
                    prime = await ch.receive()
                    primes.append(prime)
                    ch1 = Channel[int]()
                    actors.go(self.filter, ch, ch1, prime)
                    ch = ch1
                return primes
            case "goroutines":
                return self.running

    async def on_stop(self) -> None:
        print(f"on_stop: {self.running} goroutines still running")


# --8<-- [end:sieve]


async def main() -> None:
    async with ActorSystem() as system:
        sieve = await system.spawn(Sieve, name="sieve")
        primes = await sieve.ask(("primes", 20))
        print(f"the first 20 primes: {primes}")
        print(f"goroutines in the pipeline: {await sieve.ask('goroutines')}")
        await sieve.stop()  # cancels the goroutines, then runs on_stop
        print("sieve stopped, and every goroutine with it")


if __name__ == "__main__":
    actors.run(main)
