"""Point-to-point: a work queue whose jobs are shared out among competing workers.

This example shows:

- a group: subscribers that give the same ``group`` name on the same pattern
  (``subscribe("jobs.>", group="workers")``) share its messages, one copy
  each, given to one member;
- every job handled exactly once, and the load spread evenly: members take
  turns (round-robin, in the order they joined);
- a plain subscriber next to the group still gets every message, so
  ``publish`` counts two deliveries: one to the group, one to the tally;
- membership follows life: a worker that stops leaves the group, and the
  others share its work from then on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import actors
from actors import Actor, ActorSystem, Channel


@dataclass(frozen=True)
class Job:
    number: int


@dataclass(frozen=True)
class Done:
    worker: str
    job: int


# --8<-- [start:worker]
class Worker(Actor):
    """One of the competing consumers: joins the group, reports each job done."""

    def __init__(self, done: Channel[Done]) -> None:
        self.done = done

    async def on_start(self) -> None:
        self.context.subscribe("jobs.>", group="workers")

    async def receive(self, message: object) -> None:
        match message:
            case Job(number):
                await self.done.send(Done(self.ref.name, number))


# --8<-- [end:worker]


class Tally(Actor):
    """A plain subscriber: sees every job, whoever does it."""

    def __init__(self) -> None:
        self.seen = 0

    async def on_start(self) -> None:
        self.context.subscribe("jobs.>")

    async def receive(self, message: object) -> int | None:
        match message:
            case Job():
                self.seen += 1
            case "seen":
                return self.seen
        return None


async def run_jobs(system: ActorSystem, done: Channel[Done], numbers: range) -> None:
    """Publish a job per number, then show who did which."""
    returned = set()
    for number in numbers:
        topic = "jobs.resize" if number % 2 else "jobs.thumbnail"
        returned.add(await system.publish(topic, Job(number)))
    [count] = returned  # the same for every job
    print(f"  {len(numbers)} jobs published; each publish returned {count}:")
    print("  one copy for the group (to one worker), one for the tally")

    by_worker: dict[str, list[int]] = {}
    handled = []
    for _ in numbers:
        report = await done.receive()
        by_worker.setdefault(report.worker, []).append(report.job)
        handled.append(report.job)
    for worker, jobs in sorted(by_worker.items()):
        print(f"  {worker} did {len(jobs)} jobs: {sorted(jobs)}")
    print(f"  each job done exactly once: {sorted(handled) == list(numbers)}")


# --8<-- [start:main]
async def main() -> None:
    async with ActorSystem() as system:
        done = Channel[Done](math.inf)
        tally = await system.spawn(Tally, name="tally")
        workers = [await system.spawn(Worker, done, name=f"worker-{i}") for i in range(1, 4)]
        # --8<-- [start:topics]
        for info in system.registry.topics():
            groups = {group.name: list(group.members) for group in info.groups}
            print(f"{info.pattern}: subscribers {list(info.subscribers)}, groups {groups}")
        # --8<-- [end:topics]

        print("-- twelve jobs, three workers")
        await run_jobs(system, done, range(12))

        print("-- worker-2 stops: it leaves the group")
        await workers[1].stop()
        await run_jobs(system, done, range(12, 18))

        print(f"the tally saw {await tally.ask('seen')} jobs")


# --8<-- [end:main]


if __name__ == "__main__":
    actors.run(main)
