"""CPU-bound work over a process pool, under a supervisor that survives ``kill -9`` of a worker.

This example shows:

- ``await system.process_pool("cpu", size=2)``: two long-lived worker
  processes, each an interpreter of its own, so actors on different workers
  compute in parallel (Python runs one thread of Python at a time per
  process); awaited, the pool lives as long as the system, which ends its
  workers after every actor has stopped;
- ``ChildSpec(..., placement=Subprocess(pool="cpu"))``: four actors on two
  workers, each placed on the live worker with the fewest actors;
- a CPU-bound handler that yields now and then
  (``anyio.lowlevel.checkpoint()``), so its worker keeps answering
  heartbeats: one that holds the loop for longer than ``heartbeat * misses``
  (3 s by default) is taken for a hung process, and killed;
- ``kill -9`` of a worker: an ask in flight raises ``ConnectionLost``,
  exactly the actors on that worker fail with ``ProcessExited`` (code -9), and
  the supervisor restarts them on the live worker;
- the pool starts a replacement worker (``pool.wait_ready()`` waits for it),
  and new actors go to it, since it has the fewest.

The failures are logged on the ``actors`` and ``supervision`` loggers; here
they go to stderr as one line each, tracebacks left out.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

import anyio
import anyio.lowlevel

import actors
from actors import ActorRef, ActorSystem, ConnectionLost, ProcessExited, ProcessPool, Subprocess
from supervision import ChildSpec, Supervisor, which_children

CPU = Subprocess(pool="cpu")
LIMIT = 200_000


# --8<-- [start:cruncher]
@dataclass(frozen=True)
class CountPrimes:
    """Count the primes in ``range(start, stop)``."""

    start: int
    stop: int


class Cruncher(actors.Actor):
    """CPU-bound: counts primes by trial division."""

    async def receive(self, message: object) -> int | None:
        match message:
            case CountPrimes(start, stop):
                found = 0
                for n in range(start, stop):
                    found += is_prime(n)
                    if n % 5_000 == 0:
                        await anyio.lowlevel.checkpoint()  # let the worker answer heartbeats
                return found
            case "pid":
                return os.getpid()
        return None


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    divisor = 2
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 1
    return True


# --8<-- [end:cruncher]


class OneLine(logging.Formatter):
    """A log format of one line per event: tracebacks are left out."""

    def formatException(self, ei: object) -> str:
        return ""


async def crunchers(sup: ActorRef, not_: dict[str, ActorRef] | None = None) -> dict[str, ActorRef]:
    """The running crunchers by name, once none is an incarnation from ``not_``."""
    old = set((not_ or {}).values())
    while True:
        children = await which_children(sup)
        refs = {c.name: c.ref for c in children if c.ref is not None and c.state == "running"}
        if len(refs) == len(children) and not old & set(refs.values()):
            return refs


async def count_primes(refs: list[ActorRef], limit: int) -> int:
    """Count the primes below ``limit`` in 8 slices, spread over ``refs`` at once."""
    step = limit // 8
    counts: list[int] = []
    async with anyio.create_task_group() as tg:

        async def one(ref: ActorRef, start: int) -> None:
            counts.append(await ref.ask(CountPrimes(start, start + step), timeout=60))

        for i, start in enumerate(range(0, limit, step)):
            tg.start_soon(one, refs[i % len(refs)], start)
    return sum(counts)


async def where(pool: ProcessPool, ref: ActorRef) -> str:
    pid = await ref.ask("pid")
    return f"worker {pool.pids.index(pid) + 1}"


async def main() -> None:
    to_stderr = logging.StreamHandler()
    to_stderr.setFormatter(OneLine("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[to_stderr])

    # --8<-- [start:pool]
    async with ActorSystem() as system:
        pool = await system.process_pool("cpu", size=2)
        specs = [ChildSpec(Cruncher, name=f"cruncher-{i}", placement=CPU) for i in range(1, 5)]
        sup = await system.spawn(Supervisor, specs, strategy="one_for_one", name="sup")
        refs = await crunchers(sup)

        print(f"-- a pool of {pool.size} workers; {len(refs)} crunchers under a supervisor")
        for name, ref in refs.items():
            print(f"  {name} on {await where(pool, ref)}")
        print("-- 8 slices of the count over the 4 crunchers, two workers computing at once")
        print(f"  primes below {LIMIT:,}: {await count_primes(list(refs.values()), LIMIT):,}")
        # --8<-- [end:pool]

        # --8<-- [start:kill]
        print("-- kill -9 worker 1 while cruncher-1 is computing on it")
        victim = pool.pids[0]
        doomed = [name for name, ref in refs.items() if await ref.ask("pid") == victim]
        async with anyio.create_task_group() as tg:

            async def long_count() -> None:
                try:
                    await refs["cruncher-1"].ask(CountPrimes(0, 10**9), timeout=60)
                except ConnectionLost:
                    print("  the ask in flight: ConnectionLost (it may or may not have run)")

            tg.start_soon(long_count)
            await anyio.wait_all_tasks_blocked()
            os.kill(victim, signal.SIGKILL)
        for name in doomed:
            reason = (await refs[name].join()).reason
            assert isinstance(reason, ProcessExited)
            print(f"  {name} failed: {type(reason).__name__}, code {reason.code}")
        # --8<-- [end:kill]

        # --8<-- [start:restart]
        print("-- the supervisor restarted them on the live worker; the others never noticed")
        new = await crunchers(sup, not_={name: refs[name] for name in doomed})
        for child in await which_children(sup):
            pid = await new[child.name].ask("pid")
            place = "the live worker" if pid in pool.pids and pid != victim else "?"
            print(f"  {child.name}: restarts {child.restarts}, on {place}")
        print(f"  primes below {LIMIT:,}: {await count_primes(list(new.values()), LIMIT):,}")

        print("-- the pool replaced the dead worker; new actors go to it (it has the fewest)")
        await pool.wait_ready()
        print(
            f"  {len(pool.pids)} workers, {pool.restarts} replaced, none of them the dead one: "
            f"{victim not in pool.pids}"
        )
        for n in (1, 2):
            extra = await system.spawn(Cruncher, name=f"extra-{n}", placement=CPU)
            print(f"  extra-{n} on {await where(pool, extra)}")
        pids = pool.pids
        # --8<-- [end:restart]
    print(
        f"-- the system stopped every actor, then ended the workers: "
        f"{sum(alive(pid) for pid in pids)} left"
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    actors.run(main)
