"""A worker pool: workers started on demand under a DynamicSupervisor, restarted with backoff.

This example shows:

- ``DynamicSupervisor(max_children=...)``: it starts no children itself;
  ``start_child`` adds them, naming each ``<factory>-<n>``, and refuses one
  too many with ``TooManyChildren``;
- spreading jobs over the pool's workers, found with ``which_children``;
- ``Backoff(min, max, factor, jitter)``: a crashed worker is restarted after
  a delay that doubles while it keeps crashing, so a broken downstream service
  is not hammered (``jitter=0`` here so that every run is alike; keep the
  default in production, so that workers that crashed together do not all
  come back at the same moment);
- during the delay the worker is ``"restarting"`` with no ref, and messages to
  its old ref become dead letters;
- ``terminate_child`` to shrink the pool and ``count_children`` to size it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import actors
from actors import ActorFailed, ActorRef, ActorSystem, Channel, DeadLetter
from supervision import (
    Backoff,
    ChildSpec,
    DynamicSupervisor,
    TooManyChildren,
    count_children,
    start_child,
    terminate_child,
    which_children,
)


@dataclass(frozen=True)
class Fetch:
    url: str


class Fetcher(actors.Actor):
    """Fetches pages (pretend ones). A host that refuses the connection crashes it."""

    def __init__(self, started: Channel[ActorRef]) -> None:
        self.started = started
        self.fetched = 0

    async def on_start(self) -> None:
        await self.started.send(self.ref)

    async def receive(self, message: object) -> str | None:
        match message:
            case Fetch(url) if "down.example" in url:
                raise ConnectionError(f"{url} refused the connection")
            case Fetch(url):
                self.fetched += 1
                return f"200 OK, {len(url)} bytes (page {self.fetched} of this worker)"
        return None


def show_letter(letter: DeadLetter) -> None:
    to = letter.recipient.path if letter.recipient else "?"
    print(f"  dead letter to {to}: {letter.message} ({letter.reason})")


async def show_pool(pool: ActorRef) -> None:
    for child in await which_children(pool):
        ref = child.ref.path if child.ref else None
        print(f"  {child.name}: {child.state}, restarts {child.restarts}, ref {ref}")


async def fetch_all(pool: ActorRef, urls: list[str]) -> None:
    """Give each url to the next worker in turn, and print what it answered."""
    workers = [child.ref for child in await which_children(pool) if child.ref]
    for n, url in enumerate(urls):
        worker = workers[n % len(workers)]
        try:
            print(f"  {worker.name} {url}: {await worker.ask(Fetch(url))}")
        except ActorFailed as error:
            print(f"  {worker.name} {url}: crashed with {error.__cause__!r}")


async def main() -> None:
    # --8<-- [start:pool]
    backoff = Backoff(min=0.25, max=2.0, factor=2, jitter=0)
    print(f"restart delays in a row: {[backoff.delay(n) for n in range(5)]} seconds")

    async with ActorSystem() as system, system.dead_letters() as letters:
        started = Channel[ActorRef](math.inf)  # every incarnation reports here
        pool = await system.spawn(DynamicSupervisor, max_children=3, backoff=backoff, name="pool")
        worker = ChildSpec(Fetcher, started)

        print("-- start three workers, then one too many")
        for _ in range(3):
            await start_child(pool, worker)
            print(f"  started {(await started.receive()).path}")
        try:
            await start_child(pool, worker)
        except TooManyChildren:
            print("  a fourth: TooManyChildren (max_children=3)")
        # --8<-- [end:pool]

        print("-- five jobs, one per worker in turn; the last host is down")
        fetcher_2 = (await which_children(pool))[1].ref
        assert fetcher_2 is not None
        await fetch_all(
            pool, ["a.example/", "b.example/", "c.example/", "d.example/", "down.example/"]
        )

        # --8<-- [start:backoff]
        print("-- fetcher-2 waits out its backoff delay")
        # The supervisor handles the crash just after our ask learned of it:
        # ask it until it has (then the delay has just begun).
        while (await which_children(pool))[1].ref == fetcher_2:
            pass
        await show_pool(pool)
        await fetcher_2.tell(Fetch("h.example/"))
        show_letter(await letters.receive())
        # --8<-- [end:backoff]

        print("-- 0.25 s later fetcher-2 is back, a new incarnation with fresh state")
        back = await started.receive()
        print(f"  {back.name} started again")
        await show_pool(pool)
        await fetch_all(pool, ["e.example/", "f.example/", "g.example/"])

        # --8<-- [start:shrink]
        print("-- shrink the pool by one, then grow it again")
        await terminate_child(pool, "fetcher-3")
        print(f"  {await count_children(pool)}")
        await start_child(pool, worker)
        print(f"  started {(await started.receive()).path}")
        await show_pool(pool)
        # --8<-- [end:shrink]


if __name__ == "__main__":
    actors.run(main)
