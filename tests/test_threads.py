"""Plain threads: refused on the unsafe calls, served by system.from_thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

import actors
from actors import ActorFailed, ActorsError, ActorStopped, ActorSystem

pytestmark = pytest.mark.anyio


class Counter(actors.Actor):
    """Counts tells per sender and checks each sender's order."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.out_of_order = 0

    async def receive(self, message: Any) -> Any:
        match message:
            case (sender, n):
                if n != self.seen.get(sender, 0):
                    self.out_of_order += 1
                self.seen[sender] = n + 1
            case "total":
                return sum(self.seen.values())
            case "out_of_order":
                return self.out_of_order
            case "crash":
                raise RuntimeError("asked to crash")
            case other:
                return other


async def in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a plain thread (not one of anyio's) and return its result
    or raise its exception here."""
    result: list[Any] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    await anyio.to_thread.run_sync(thread.join, 10)
    assert not thread.is_alive()
    if error:
        raise error[0]
    return result[0]


async def test_unsafe_calls_from_a_thread_raise_before_touching_anything() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Counter, name="counter")
        assert await ref.ask("ready") == "ready"  # parked on its mailbox now
        with pytest.raises(ActorsError, match=r"tell_nowait\(\) was called from thread"):
            await in_thread(lambda: ref.tell_nowait(("t", 0)))
        with pytest.raises(ActorsError, match="from_thread"):
            await in_thread(ref.stop_nowait)
        with pytest.raises(ActorsError, match="spawn was called from thread"):
            await in_thread(lambda: system.spawn_nowait(Counter))
        with pytest.raises(ActorsError, match="register was called from thread"):
            await in_thread(lambda: system.registry.register("c", ref))
        with pytest.raises(ActorsError, match="subscribe was called from thread"):
            await in_thread(lambda: system.registry.subscribe("a.b", ref))
        # Nothing was delivered, and the actor still answers.
        assert await ref.ask("total") == 0
        assert system.registry.whereis("c") is None
        assert [a.path for a in system.tree().actors] == ["/user/counter"]


async def test_many_threads_tell_and_ask_through_the_portal() -> None:
    threads, tells, asks = 8, 200, 20
    async with ActorSystem() as system:
        ref = await system.spawn(Counter, name="counter")
        replies: dict[str, list[Any]] = {}

        def work(sender: str) -> None:
            got = replies.setdefault(sender, [])
            for n in range(tells):
                system.from_thread.tell(ref, (sender, n))
                if n % (tells // asks) == 0:
                    got.append(system.from_thread.ask(ref, sender))

        workers = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            await anyio.to_thread.run_sync(worker.join, 30)
            assert not worker.is_alive()
        assert await ref.ask("total") == threads * tells
        assert await ref.ask("out_of_order") == 0
        assert replies == {f"t{i}": [f"t{i}"] * asks for i in range(threads)}


async def test_portal_publishes() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Counter, name="counter")
        system.registry.subscribe("counts", ref)
        assert await in_thread(lambda: system.from_thread.publish("counts", ("p", 0))) == 1
        assert await in_thread(lambda: system.from_thread.publish("nobody.here", 1)) == 0
        await in_thread(lambda: system.from_thread.stop(ref))
        assert system.tree().actors == ()


async def test_a_crash_reached_through_the_portal_fails_the_system_as_usual() -> None:
    with pytest.raises(RuntimeError, match="asked to crash"):
        async with ActorSystem() as system:
            ref = await system.spawn(Counter, name="counter")
            with pytest.raises(ActorFailed) as info:
                await in_thread(lambda: system.from_thread.ask(ref, "crash"))
            assert isinstance(info.value.__cause__, RuntimeError)
            await anyio.sleep_forever()  # cancelled by the failure


async def test_portal_from_the_loop_thread_raises() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Counter, name="counter")
        with pytest.raises(ActorsError, match="would wait for itself"):
            system.from_thread.tell(ref, ("main", 0))
        assert await ref.ask("total") == 0


async def test_portal_before_and_after_the_system_runs() -> None:
    system = ActorSystem()
    with pytest.raises(ActorsError, match="has not started"):
        system.from_thread  # noqa: B018
    async with system:
        ref = await system.spawn(Counter, name="counter")
        portal = system.from_thread
    with pytest.raises(ActorsError, match="is not running"):
        await in_thread(lambda: portal.tell(ref, ("late", 0)))


class Stuck(actors.Actor):
    def __init__(self, entered: anyio.Event) -> None:
        self.entered = entered

    async def receive(self, message: Any) -> Any:
        self.entered.set()
        await anyio.sleep_forever()


async def test_a_call_in_flight_when_the_system_shuts_down_is_answered() -> None:
    entered = anyio.Event()
    outcome: list[BaseException] = []

    def ask(ref: actors.ActorRef, portal: actors.ThreadPortal) -> None:
        try:
            portal.ask(ref, "hang", timeout=None)
        except BaseException as exc:
            outcome.append(exc)

    async with ActorSystem(shutdown=0.01) as system:
        ref = await system.spawn(Stuck, entered, name="stuck")
        thread = threading.Thread(target=ask, args=(ref, system.from_thread))
        thread.start()
        await entered.wait()
    # Leaving the block killed the stuck actor (its shutdown timeout), which
    # answered the ask; the thread is not left waiting.
    await anyio.to_thread.run_sync(thread.join, 10)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ActorStopped)
