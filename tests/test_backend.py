"""Which backend runs the current task, trio's guest mode on asyncio included.

In guest mode (``trio.lowlevel.start_guest_run``) trio's tasks run inside the
asyncio host loop's callbacks, where asyncio reports its loop as running: the
runtime must still park, time and start trio's tasks the trio way, and the
host's tasks the asyncio way, at the same time in the same thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import outcome
import pytest
import trio
import trio.lowlevel

from actors import Actor, ActorStopped, ActorSystem, AskTimeout, Channel, select
from actors._backend import asyncio_loop

pytestmark = pytest.mark.anyio

T = TypeVar("T")


async def test_asyncio_loop_names_the_running_backend() -> None:
    if asyncio_loop() is None:
        assert trio.lowlevel.in_trio_task()
    else:
        assert asyncio_loop() is asyncio.get_running_loop()


def test_asyncio_loop_is_none_outside_any_loop() -> None:
    assert asyncio_loop() is None


async def in_guest(fn: Callable[[], Awaitable[T]]) -> T:
    """Runs ``fn`` in a trio guest run on the running asyncio loop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[outcome.Outcome[T]] = loop.create_future()
    trio.lowlevel.start_guest_run(
        fn,
        run_sync_soon_threadsafe=loop.call_soon_threadsafe,
        run_sync_soon_not_threadsafe=loop.call_soon,
        done_callback=done.set_result,
    )
    return (await done).unwrap()


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        if message == "hang":
            await anyio.sleep_forever()
        return message


class Worker(Actor):
    """Answers through a goroutine and a select; cleans up under a shield."""

    def __init__(self, cleaned: list[str]) -> None:
        self.cleaned = cleaned
        self.requests: Channel[tuple[Any, Channel[Any]]] = Channel()

    async def on_start(self) -> None:
        self.context.go(self.serve)

    async def serve(self) -> None:
        async for message, reply in self.requests:
            await reply.send(("served", message))

    async def receive(self, message: Any) -> Any:
        reply: Channel[Any] = Channel(1)
        await self.requests.send((message, reply))
        return (await select(reply.receiving())).value

    async def on_stop(self) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.lowlevel.checkpoint()
            self.cleaned.append("cleaned")
        await anyio.sleep_forever()  # the kill lands here, after the shield


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_system_runs_in_trio_guest_mode_on_an_asyncio_host() -> None:
    host_channel: Channel[int] = Channel()
    host_backends: list[bool] = []

    async def host_side() -> None:
        # The host's own tasks keep using asyncio while the guest runs.
        async def producer() -> None:
            for i in range(100):
                host_backends.append(asyncio_loop() is asyncio.get_running_loop())
                await host_channel.send(i)
            host_channel.close()

        task = asyncio.get_running_loop().create_task(producer())
        assert [i async for i in host_channel] == list(range(100))
        await task

    async def guest_side() -> list[Any]:
        assert asyncio_loop() is None
        cleaned: list[str] = []
        async with ActorSystem() as system:
            echo = await system.spawn(Echo)
            worker = await system.spawn(Worker, cleaned, shutdown=0.05)
            got = [await echo.ask("ping"), await worker.ask(1), await worker.ask(2)]
            with pytest.raises(AskTimeout):
                await echo.ask("hang", timeout=0.01)
            await echo.kill()
            with pytest.raises(ActorStopped):
                await echo.ask("again")
            await worker.stop()  # on_stop ends in sleep_forever: the timed stop kills it
            got.append(cleaned)
        return got

    async with anyio.create_task_group() as tg:
        tg.start_soon(host_side)
        result = await in_guest(guest_side)
    assert result == ["ping", ("served", 1), ("served", 2), ["cleaned"]]
    assert host_backends == [True] * 100
