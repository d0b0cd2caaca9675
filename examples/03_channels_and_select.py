"""Go's channel patterns in Python: fan-in, timeouts, non-blocking sends and closing.

This example shows:

- ``Channel``: unbuffered (a rendezvous) and buffered;
- tasks in an anyio task group talking over channels (the next example
  makes them goroutines owned by an actor);
- fan-in: merging two channels with ``select`` until both are closed, where a
  closed, drained channel's receive case yields ``CLOSED`` (Go's ``ok == false``);
- a timeout: ``select(..., timeout=s)`` raises ``TimeoutError``;
- non-blocking sends and receives: ``select(..., default=True)`` returns ``None``
  when nothing is ready;
- closing to signal done: ``async for`` ends when a channel is closed and
  drained, and closing a ``done`` channel tells a goroutine to stop.
"""

from __future__ import annotations

import anyio

import actors
from actors import CLOSED, Channel, ReceiveCase, select


# --8<-- [start:fan-in]
async def produce(name: str, out: Channel[str], count: int) -> None:
    for i in range(count):
        await out.send(f"{name}{i}")
    out.close()  # as in Go, the sender closes: it knows when it is done


async def fan_in() -> None:
    print("-- fan-in")
    a, b = Channel[str](), Channel[str]()
    got: dict[str, list[str]] = {"a": [], "b": []}
    async with anyio.create_task_group() as tg:
        tg.start_soon(produce, "a", a, 3)
        tg.start_soon(produce, "b", b, 4)
        cases: list[ReceiveCase[str] | None] = [a.receiving(), b.receiving()]
        while any(case is not None for case in cases):
            index, _, value = await select(*cases)
            if value is CLOSED:
                cases[index] = None  # a nil channel: select ignores it from now on
            else:
                got[value[0]].append(value)
    # select picks at random among ready cases, so the interleaving varies, but
    # each sender's values arrive in the order it sent them.
    print("both channels are closed")
    print(f"from a: {got['a']}")
    print(f"from b: {got['b']}")


# --8<-- [end:fan-in]
# --8<-- [start:timeout]
async def timeout() -> None:
    print("-- timeout")
    replies = Channel[str]()
    try:
        await select(replies.receiving(), timeout=0.1)
    except TimeoutError:
        print("no reply within 0.1 s: giving up")

    async with anyio.create_task_group() as tg:
        tg.start_soon(replies.send, "pong")
        selected = await select(replies.receiving(), timeout=5)
        print(f"got {selected.value!r} well within 5 s")


# --8<-- [end:timeout]
# --8<-- [start:non-blocking]
async def non_blocking() -> None:
    print("-- non-blocking send and receive")
    queue = Channel[str](2)
    for message in ["one", "two", "three"]:
        if await select(queue.sending(message), default=True) is None:
            print(f"queue full: dropped {message!r}")
        else:
            print(f"queued {message!r}")
    while (selected := await select(queue.receiving(), default=True)) is not None:
        print(f"took {selected.value!r}")
    print("queue empty: nothing to take")


# --8<-- [end:non-blocking]
# --8<-- [start:closing]
async def closing() -> None:
    print("-- closing to signal done")
    # A closed channel still yields what it buffered; then `async for` ends.
    jobs = Channel[int](10)
    for job in range(1, 6):
        await jobs.send(job)
    jobs.close()
    print(f"squares: {[job * job async for job in jobs]}")

    # Closing `done` is a broadcast: every receiver sees it at once. Here it
    # stops a generator that would otherwise count forever.
    numbers, done = Channel[int](), Channel[None]()

    async def count_up() -> None:
        n = 0
        while True:
            index, _, _ = await select(numbers.sending(n), done.receiving())
            if index == 1:
                print("generator: done is closed, stopping")
                return
            n += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(count_up)
        print(f"first five: {[await numbers.receive() for _ in range(5)]}")
        done.close()
    print("generator stopped; the task group has exited")


# --8<-- [end:closing]


async def main() -> None:
    await fan_in()
    await timeout()
    await non_blocking()
    await closing()


if __name__ == "__main__":
    actors.run(main)
