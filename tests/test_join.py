"""ref.join() and ref.alive: waiting for an actor from any task (issue 12)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

import actors
from actors import Actor, ActorsError, ActorSystem, Terminated

pytestmark = pytest.mark.anyio


class Worker(Actor):
    async def receive(self, message: Any) -> Any:
        match message:
            case "crash":
                raise ValueError("crashed")
            case ("hang", anyio.Event() as entered):
                entered.set()
                await anyio.sleep_forever()
            case "join self":
                try:
                    return await self.ref.join()
                except ActorsError as exc:
                    return exc
            case "join self from a goroutine":
                result: list[BaseException] = []

                async def join() -> None:
                    try:
                        await self.ref.join()
                    except ActorsError as exc:
                        result.append(exc)

                self.context.go(join)
                return result
            case ("join", ref):
                return await ref.join()


class Tolerant(Actor):
    """A parent that handles its children's failures."""

    async def on_child_failed(self, child: actors.ActorRef, error: BaseException) -> None:
        pass

    async def receive(self, message: Any) -> Any:
        match message:
            case ("spawn", name):
                return await self.context.spawn(Worker, name=name)
            case ("join", ref):
                return await ref.join()


def alive(ref: actors.ActorRef) -> bool:
    return ref.alive  # (a call, so that mypy does not keep an earlier reading)


async def test_join_reports_a_normal_stop() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Worker)
        assert ref.alive
        async with anyio.create_task_group() as tg:
            ended: list[Terminated] = []

            async def join() -> None:
                ended.append(await ref.join())

            tg.start_soon(join)
            await anyio.wait_all_tasks_blocked()
            assert not ended
            await ref.stop()
        assert ended == [Terminated(ref, None, False)]
        assert not alive(ref)
        assert await ref.join() == Terminated(ref, None, False)  # at once, again


async def test_join_reports_a_failure_with_its_exception() -> None:
    async with ActorSystem() as system:
        parent = await system.spawn(Tolerant)
        child = await parent.ask(("spawn", "c"))
        await child.tell("crash")
        ended = await child.join()
        assert isinstance(ended.reason, ValueError) and not ended.killed
        assert not child.alive and parent.alive


async def test_join_reports_a_kill() -> None:
    async with ActorSystem(shutdown=0.01) as system:
        ref = await system.spawn(Worker)
        entered = anyio.Event()
        await ref.tell(("hang", entered))
        await entered.wait()
        await ref.kill()
        assert (await ref.join()).killed
        hung = await system.spawn(Worker)
        entered = anyio.Event()
        await hung.tell(("hang", entered))
        await entered.wait()
        await hung.stop()  # outlasts its shutdown timeout: cancelled
        assert (await hung.join()).killed


async def test_a_stop_right_after_a_message_was_handed_over_still_times_out() -> None:
    # The tell hands "hang" to the parked actor, which has not run yet when
    # the stop arrives: the stop must still start the shutdown timer.
    async with ActorSystem(shutdown=0.01) as system:
        hung = await system.spawn(Worker)
        await hung.tell(("hang", anyio.Event()))
        await hung.stop()
        assert (await hung.join()).killed


async def test_one_actor_joins_another() -> None:
    async with ActorSystem() as system:
        a = await system.spawn(Worker)
        b = await system.spawn(Worker)
        async with anyio.create_task_group() as tg:
            tg.start_soon(b.stop)
            assert await a.ask(("join", b)) == Terminated(b, None, False)


async def test_joining_oneself_raises() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Worker)
        assert "cannot be joined from itself" in str(await ref.ask("join self"))


async def test_joining_oneself_from_a_goroutine_or_a_child_raises() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Worker)
        errors = await ref.ask("join self from a goroutine")
        while not errors:
            await anyio.lowlevel.checkpoint()
        assert "cannot be joined from itself" in str(errors[0])
        parent = await system.spawn(Tolerant)
        child = await parent.ask(("spawn", "c"))
        with pytest.raises(actors.ActorFailed) as info:
            await child.ask(("join", parent))
        assert "cannot be joined from itself" in str(info.value.__cause__)
