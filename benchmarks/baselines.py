"""The raw substrate's side of the suite's workloads, where no other module has it.

``benchmarks.actors``, ``benchmarks.channel`` and ``benchmarks.topics`` hold
most baselines; this module adds the rest, each written the way a careful user
of that substrate would write it:

- fan-out to 100 consumers through trio memory channels (``*_nowait`` first,
  trio's fast path) and through anyio memory object streams (``await send``,
  the idiom anyio documents);
- point-to-point: 4 consumers draining one ``asyncio.Queue``, one trio memory
  channel, one anyio memory object stream;
- idle tasks, each waiting on its own trio memory channel or anyio memory
  object stream, spawned and stopped in a fresh interpreter
  (``python -m benchmarks.baselines --child KIND BACKEND N`` prints JSON).

Every function returns its figure (deliveries or messages per second, or a
dict of figures) and checks that nothing was lost.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

import anyio
import trio
import trio.testing
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._util import idle_figures
from .actors import _rss

SUBSCRIBERS = 100
CONSUMERS = 4
CAPACITY = 1000


def _check(received: int, expected: int) -> None:
    if received != expected:
        raise RuntimeError(f"baseline lost messages: {received} received, not {expected}")


# -- trio memory channels, *_nowait first -------------------------------------


async def _trio_send(send: trio.MemorySendChannel[int], value: int) -> None:
    try:
        send.send_nowait(value)
    except trio.WouldBlock:
        await send.send(value)


async def _trio_drain(receive: trio.MemoryReceiveChannel[int], counts: list[int]) -> None:
    """Receive until the channel is closed and drained, then count."""
    got = 0
    while True:
        try:
            receive.receive_nowait()
        except trio.WouldBlock:
            try:
                await receive.receive()
            except trio.EndOfChannel:
                break
        except trio.EndOfChannel:
            break
        got += 1
    counts.append(got)


async def trio_fan_out(n: int) -> float:
    """``n`` messages to each of 100 trio channels, one consumer task each."""
    pairs = [trio.open_memory_channel[int](CAPACITY) for _ in range(SUBSCRIBERS)]
    counts: list[int] = []
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _, receive in pairs:
            nursery.start_soon(_trio_drain, receive, counts)
        for i in range(n):
            for send, _ in pairs:
                await _trio_send(send, i)
        for send, _ in pairs:
            await send.aclose()
    elapsed = time.perf_counter() - start
    _check(sum(counts), n * SUBSCRIBERS)
    return n * SUBSCRIBERS / elapsed


async def trio_point_to_point(n: int) -> float:
    """``n`` messages through one trio channel drained by 4 consumer tasks."""
    send, receive = trio.open_memory_channel[int](CAPACITY)
    counts: list[int] = []
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(CONSUMERS):
            nursery.start_soon(_trio_drain, receive.clone(), counts)
        await receive.aclose()
        for i in range(n):
            await _trio_send(send, i)
        await send.aclose()
    elapsed = time.perf_counter() - start
    _check(sum(counts), n)
    return n / elapsed


# -- anyio memory object streams, await send / receive ------------------------


async def _anyio_drain(receive: MemoryObjectReceiveStream[int], counts: list[int]) -> None:
    got = 0
    async with receive:
        async for _ in receive:
            got += 1
    counts.append(got)


async def anyio_fan_out(n: int) -> float:
    """``n`` messages to each of 100 anyio streams, one consumer task each."""
    streams = [anyio.create_memory_object_stream[int](CAPACITY) for _ in range(SUBSCRIBERS)]
    sends = [send.send for send, _ in streams]
    counts: list[int] = []
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _, receive in streams:
            tg.start_soon(_anyio_drain, receive, counts)
        for i in range(n):
            for send in sends:
                await send(i)
        for stream, _ in streams:
            await stream.aclose()
    elapsed = time.perf_counter() - start
    _check(sum(counts), n * SUBSCRIBERS)
    return n * SUBSCRIBERS / elapsed


async def anyio_point_to_point(n: int) -> float:
    """``n`` messages through one anyio stream drained by 4 consumer tasks."""
    send, receive = anyio.create_memory_object_stream[int](CAPACITY)
    counts: list[int] = []
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(CONSUMERS):
            tg.start_soon(_anyio_drain, receive.clone(), counts)
        await receive.aclose()
        async with send:
            for i in range(n):
                await send.send(i)
    elapsed = time.perf_counter() - start
    _check(sum(counts), n)
    return n / elapsed


# -- asyncio.Queue ------------------------------------------------------------


async def queue_point_to_point(n: int) -> float:
    """``n`` messages through one ``asyncio.Queue(1000)`` drained by 4 tasks.

    asyncio queues cannot be closed: each consumer takes its share, as the
    actors in a group each take a quarter.
    """
    queue: asyncio.Queue[int] = asyncio.Queue(CAPACITY)
    counts: list[int] = []

    async def consume(share: int) -> None:
        get = queue.get
        for _ in range(share):
            await get()
        counts.append(share)

    start = time.perf_counter()
    tasks = [asyncio.ensure_future(consume(n // CONSUMERS)) for _ in range(CONSUMERS)]
    put = queue.put
    for i in range(n // CONSUMERS * CONSUMERS):
        await put(i)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    _check(sum(counts), n // CONSUMERS * CONSUMERS)
    return sum(counts) / elapsed


# -- idle tasks (each run in a fresh interpreter) -------------------------------


async def _idle_trio_tasks(n: int) -> dict[str, float]:
    async def idle(receive: trio.MemoryReceiveChannel[None]) -> None:
        await receive.receive()

    before = _rss()
    start = time.perf_counter()
    sends: list[trio.MemorySendChannel[None]] = []
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            send, receive = trio.open_memory_channel[None](1)
            sends.append(send)
            nursery.start_soon(idle, receive)
        await trio.testing.wait_all_tasks_blocked()  # every task started and blocked
        spawned = time.perf_counter()
        after = _rss()
        for send in sends:
            send.send_nowait(None)
    stopped = time.perf_counter()
    return idle_figures(n, before, after, start, spawned, stopped)


async def _idle_anyio_tasks(n: int) -> dict[str, float]:
    async def idle(receive: MemoryObjectReceiveStream[None]) -> None:
        await receive.receive()

    before = _rss()
    start = time.perf_counter()
    sends: list[MemoryObjectSendStream[None]] = []
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            send, receive = anyio.create_memory_object_stream[None](1)
            sends.append(send)
            tg.start_soon(idle, receive)
        await anyio.wait_all_tasks_blocked()
        spawned = time.perf_counter()
        after = _rss()
        for send in sends:
            send.send_nowait(None)
    stopped = time.perf_counter()
    return idle_figures(n, before, after, start, spawned, stopped)


_CHILDREN: dict[str, Callable[[int], Awaitable[dict[str, float]]]] = {
    "trio-tasks": _idle_trio_tasks,
    "anyio-tasks": _idle_anyio_tasks,
}


def main(argv: list[str]) -> None:
    """``--child KIND BACKEND N``: one idle-task measurement, printed as JSON."""
    if len(argv) != 4 or argv[0] != "--child" or argv[1] not in _CHILDREN:
        raise SystemExit(f"usage: python -m benchmarks.baselines --child {{{','.join(_CHILDREN)}}}")
    kind, backend, n = argv[1], argv[2], int(argv[3])
    print(json.dumps(anyio.run(_CHILDREN[kind], n, backend=backend)))


if __name__ == "__main__":
    main(sys.argv[1:])
