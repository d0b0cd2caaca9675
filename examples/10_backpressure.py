"""Bounded mailboxes: what ``tell`` does when a mailbox is full, under each overflow policy.

This example shows:

- ``Mailbox(capacity=..., overflow=...)`` chosen at spawn (the default is
  1,000 messages and ``"block"``);
- ``"block"``: ``await tell`` waits for room (backpressure) and ``tell_nowait``
  raises ``MailboxFull``;
- ``"drop_newest"`` and ``"drop_oldest"``: ``tell`` never waits, and what is
  dropped becomes a ``DeadLetter``;
- ``"fail"``: ``tell`` raises ``MailboxFull`` and drops nothing;
- ``system.dead_letters()``, a stream of every message that could not be
  delivered, including a message sent to a stopped actor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import anyio

import actors
from actors import Actor, ActorRef, ActorSystem, Channel, DeadLetter, Mailbox, MailboxFull

Policy = Literal["block", "drop_newest", "drop_oldest", "fail"]


@dataclass(frozen=True)
class Job:
    n: int


@dataclass(frozen=True)
class Hold:
    """Keeps the worker busy until ``gate`` is set, so its mailbox fills up."""

    busy: anyio.Event
    gate: anyio.Event


# --8<-- [start:worker]
class Worker(Actor):
    def __init__(self, handled: Channel[int]) -> None:
        self.handled = handled

    async def receive(self, message: object) -> None:
        match message:
            case Hold(busy, gate):
                busy.set()
                await gate.wait()
            case Job(n):
                await self.handled.send(n)


# --8<-- [end:worker]
# --8<-- [start:letters]
def show_dead_letters(letters: Channel[DeadLetter]) -> None:
    if not len(letters):
        print("  no dead letters")
    for _ in range(len(letters)):
        letter = letters.receive_nowait()
        to = letter.recipient.path if letter.recipient else "?"
        print(f"  dead letter to {to}: {letter.message} ({letter.reason})")


# --8<-- [end:letters]
# --8<-- [start:busy-worker]
async def busy_worker(
    system: ActorSystem, policy: Policy
) -> tuple[ActorRef, Channel[int], anyio.Event]:
    """Spawn a worker with room for 3 messages and keep it busy; return it,
    the channel it reports handled jobs to, and the gate that frees it."""
    print(f'-- overflow="{policy}"')
    handled = Channel[int](math.inf)
    mailbox = Mailbox(capacity=3, overflow=policy)
    worker = await system.spawn(Worker, handled, name=policy, mailbox=mailbox)
    busy, gate = anyio.Event(), anyio.Event()
    await worker.tell(Hold(busy, gate))
    await busy.wait()
    for n in (1, 2, 3):
        await worker.tell(Job(n))
    print("  jobs 1-3 queued: the mailbox is full")
    return worker, handled, gate


# --8<-- [end:busy-worker]


async def handled_jobs(handled: Channel[int], count: int) -> list[int]:
    return [await handled.receive() for _ in range(count)]


# --8<-- [start:main]
async def main() -> None:
    async with ActorSystem() as system, system.dead_letters() as letters:
        worker, handled, gate = await busy_worker(system, "block")
        try:
            worker.tell_nowait(Job(4))
        except MailboxFull:
            print("  tell_nowait(Job(4)) raised MailboxFull")
        with anyio.move_on_after(0.1) as waiting:
            await worker.tell(Job(4))
        if waiting.cancelled_caught:  # a cancelled tell has queued nothing
            print("  await tell(Job(4)) was still waiting for room after 0.1 s")
        gate.set()
        await worker.tell(Job(4))  # now there is room
        print(f"  the worker handled {await handled_jobs(handled, 4)}")
        show_dead_letters(letters)

        worker, handled, gate = await busy_worker(system, "drop_newest")
        await worker.tell(Job(4))
        await worker.tell(Job(5))
        gate.set()
        print(f"  the worker handled {await handled_jobs(handled, 3)}")
        show_dead_letters(letters)

        worker, handled, gate = await busy_worker(system, "drop_oldest")
        await worker.tell(Job(4))
        await worker.tell(Job(5))
        gate.set()
        print(f"  the worker handled {await handled_jobs(handled, 3)}")
        show_dead_letters(letters)

        worker, handled, gate = await busy_worker(system, "fail")
        try:
            await worker.tell(Job(4))
        except MailboxFull:
            print("  tell(Job(4)) raised MailboxFull")
        gate.set()
        print(f"  the worker handled {await handled_jobs(handled, 3)}")
        show_dead_letters(letters)

        print("-- a message to a stopped actor")
        await worker.stop()
        await worker.tell(Job(6))  # never raises: it becomes a dead letter
        show_dead_letters(letters)
        print(f"dead letters in all: {system.statistics().dead_letters}")


# --8<-- [end:main]


if __name__ == "__main__":
    actors.run(main)
