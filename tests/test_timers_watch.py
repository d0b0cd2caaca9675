"""Timers, goroutines and watches: all die with their actor.

Runs on the virtual clock: a 30-second schedule takes milliseconds.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

import actors
from actors import Actor, ActorRef, ActorSystem, Terminated, Timer
from actors.testing import TestProbe

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


class Scheduler(Actor):
    """Does what it is told with its timers; reports ``(message, time)`` of
    every other message to ``to``."""

    def __init__(self, to: ActorRef) -> None:
        self.to = to
        self.timers: dict[str, Timer] = {}

    async def receive(self, message: Any) -> Any:
        match message:
            case ("once", float() | int() as delay, what):
                self.timers[what] = self.context.schedule_once(delay, what)
            case ("every", float() | int() as interval, what):
                self.timers[what] = self.context.schedule_every(interval, what)
            case ("every", float() | int() as interval, what, float() | int() as first):
                self.timers[what] = self.context.schedule_every(interval, what, initial_delay=first)
            case ("cancel", what):
                self.timers[what].cancel()
                return self.timers[what].cancelled
            case _:
                await self.to.tell((message, anyio.current_time()))
        return None


async def start(system: ActorSystem) -> tuple[TestProbe, ActorRef]:
    probe = await TestProbe.start(system)
    return probe, await system.spawn(Scheduler, probe.ref, name="s")


# -- timers -------------------------------------------------------------------


async def test_schedule_once_fires_once_after_the_delay() -> None:
    async with ActorSystem() as system:
        probe, ref = await start(system)
        t0 = anyio.current_time()
        await ref.ask(("once", 30, "ding"))
        _, at = await probe.expect(lambda m: m[0] == "ding", timeout=60)
        assert at - t0 == pytest.approx(30)
        await probe.expect_no_message(within=100)


async def test_a_30_second_schedule_takes_milliseconds_of_real_time() -> None:
    real = time.perf_counter()
    async with ActorSystem() as system:
        probe, ref = await start(system)
        t0 = anyio.current_time()
        await ref.ask(("every", 1, "tick"))
        ticks = await probe.receive_n(30, timeout=60)
        assert [round(at - t0, 6) for _, at in ticks] == [float(i) for i in range(1, 31)]
    assert time.perf_counter() - real < 2  # milliseconds in practice


async def test_schedule_every_honours_initial_delay() -> None:
    async with ActorSystem() as system:
        probe, ref = await start(system)
        t0 = anyio.current_time()
        await ref.ask(("every", 10, "tick", 0))
        ticks = await probe.receive_n(3, timeout=60)
        assert [round(at - t0, 6) for _, at in ticks] == [0, 10, 20]


async def test_cancel_stops_a_timer() -> None:
    async with ActorSystem() as system:
        probe, ref = await start(system)
        await ref.ask(("once", 5, "never"))
        assert await ref.ask(("cancel", "never")) is True
        await ref.ask(("every", 2, "tick"))
        await probe.receive_n(2, timeout=10)
        assert await ref.ask(("cancel", "tick")) is True
        await probe.expect_no_message(within=60)


async def test_a_new_timer_is_not_cancelled() -> None:
    assert not Timer().cancelled


async def test_timers_die_with_their_actor() -> None:
    async with ActorSystem() as system:
        probe, ref = await start(system)
        await ref.ask(("every", 1, "tick"))
        await ref.ask(("once", 5, "later"))
        await probe.receive_n(2, timeout=10)
        async with system.dead_letters() as letters:
            await ref.stop()
            await probe.expect_no_message(within=60)
            assert len(letters) == 0  # no tick even reached the stopped mailbox


async def test_goroutines_die_with_their_actor() -> None:
    ended: list[str] = []
    started = anyio.Event()

    class Worker(Actor):
        async def on_start(self) -> None:
            self.context.go(self.loop, "a")
            actors.go(self.loop, "b")  # go() inside an actor is owned by it too

        async def loop(self, name: str) -> None:
            try:
                started.set()
                await anyio.sleep_forever()
            finally:
                ended.append(name)

    async with ActorSystem() as system:
        ref = await system.spawn(Worker)
        await started.wait()
        await ref.stop()
        assert sorted(ended) == ["a", "b"]  # before stop() returned


async def test_an_actor_can_stop_itself_from_a_timer_or_a_goroutine() -> None:
    class SelfStopping(Actor):
        async def on_start(self) -> None:
            self.context.go(self.later)

        async def later(self) -> None:
            await anyio.sleep(3)
            await self.context.stop()

    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(SelfStopping)
        probe.watch(ref)
        t0 = anyio.current_time()
        await probe.expect(Terminated(ref, None), timeout=10)
        assert anyio.current_time() - t0 == pytest.approx(3)


# -- watch --------------------------------------------------------------------


async def test_watch_delivers_terminated_once_even_when_watching_twice() -> None:
    async with ActorSystem() as system:
        probe, ref = await start(system)
        probe.watch(ref)
        probe.watch(ref)
        await ref.stop()
        assert await probe.expect(Terminated) == Terminated(ref, None)
        await probe.expect_no_message(within=10)


async def test_an_actor_watches_with_its_context() -> None:
    class Watcher(Actor):
        def __init__(self, to: ActorRef) -> None:
            self.to = to

        async def receive(self, message: Any) -> Any:
            match message:
                case ActorRef() as ref:
                    self.context.watch(ref)
                    self.context.watch(ref)
                case Terminated() as notice:
                    await self.to.tell(notice)

    async with ActorSystem() as system:
        probe, ref = await start(system)
        watcher = await system.spawn(Watcher, probe.ref)
        await watcher.ask(ref)
        await ref.stop()
        await probe.expect(Terminated(ref, None))
        await probe.expect_no_message(within=10)


class Tolerant(Actor):
    async def receive(self, message: Any) -> Any:
        return await self.context.spawn(message)

    async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
        pass


class Crash(Actor):
    async def receive(self, message: Any) -> Any:
        raise ValueError(message)


async def test_terminated_carries_the_exception_of_a_failure() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        parent = await system.spawn(Tolerant)
        child = await parent.ask(Crash)
        probe.watch(child)
        await child.tell("boom")
        notice = await probe.expect(Terminated)
        assert notice.ref == child
        assert isinstance(notice.reason, ValueError)
        assert notice.reason.args == ("boom",)
        # Watching it after the fact gives the same notice at once.
        probe.watch(child)
        late = await probe.expect(Terminated, timeout=0.001)
        assert late.reason is notice.reason


async def test_watching_a_stopped_actor_delivers_terminated_at_once() -> None:
    async with ActorSystem() as system:
        probe, ref = await start(system)
        await ref.stop()
        probe.watch(ref)
        assert await probe.expect(Terminated, timeout=0.001) == Terminated(ref, None)
        await probe.expect_no_message(within=10)


async def test_unwatch_cancels_the_notice() -> None:
    class Watcher(Actor):
        def __init__(self, to: ActorRef) -> None:
            self.to = to

        async def receive(self, message: Any) -> Any:
            match message:
                case ("watch", ActorRef() as ref):
                    self.context.watch(ref)
                case ("unwatch", ActorRef() as ref):
                    self.context.unwatch(ref)
                case other:
                    await self.to.tell(other)

    async with ActorSystem() as system:
        probe, ref = await start(system)
        watcher = await system.spawn(Watcher, probe.ref)
        await watcher.ask(("watch", ref))
        await watcher.ask(("unwatch", ref))
        await watcher.ask(("unwatch", ref))  # unwatching twice is harmless
        await ref.stop()
        await watcher.ask(("unwatch", ref))  # and so is unwatching a stopped actor
        await probe.expect_no_message(within=10)


async def test_a_stopped_watcher_gets_nothing_and_nothing_fails() -> None:
    async with ActorSystem() as system:
        probe, ref = await start(system)
        other = await TestProbe.start(system)
        other.watch(ref)
        await other.ref.stop()
        async with system.dead_letters() as letters:
            await ref.stop()
            assert len(letters) == 0
        await probe.expect_no_message(within=1)


async def test_watching_a_stopped_actor_twice_delivers_one_terminated() -> None:
    # Regression: each watch of an actor already gone sent its own notice.
    async with ActorSystem() as system:
        probe, ref = await start(system)
        await ref.stop()
        probe.watch(ref)
        probe.watch(ref)  # before the first notice is handled
        await probe.ref.tell("after")  # system messages overtake it
        assert await probe.receive_n(2) == [Terminated(ref, None), "after"]


class ShortLived(Actor):
    """Watches ``target`` from ``on_start``; fails on "crash"."""

    def __init__(self, target: ActorRef) -> None:
        self.target = target

    async def on_start(self) -> None:
        self.context.watch(self.target)

    async def receive(self, message: Any) -> Any:
        raise ValueError(message)


def watchers_of(ref: ActorRef) -> int:
    assert ref._cell is not None
    return len(ref._cell.watchers or ())


def watching_of(ref: ActorRef) -> int:
    assert ref._cell is not None
    return len(ref._cell.watching or ())


async def test_watchers_that_end_leave_the_watched_actor() -> None:
    # Regression: a watcher that ended stayed in its target's watchers until
    # the target ended, holding the dead watcher: 100,000 short-lived watchers
    # of one long-lived actor cost 181 MB. Erlang drops a monitor when either
    # side ends; so do we, however the watcher ends.
    async with ActorSystem() as system:
        probe, target = await start(system)
        parent = await system.spawn(Tolerant)
        for i in range(300):
            watcher = await parent.ask(lambda: ShortLived(target))
            match i % 3:
                case 0:
                    await watcher.stop()
                case 1:
                    await watcher.kill()
                case _:
                    await watcher.tell("crash")
                    await watcher.join()
        other = await TestProbe.start(system)
        other.watch(target)
        await other.ref.stop()
        assert watchers_of(target) == 0
        probe.watch(target)
        assert watchers_of(target) == 1  # a live watcher still counts
        await target.stop()
        await probe.expect(Terminated(target, None))


async def test_a_watcher_keeps_nothing_of_the_actors_it_was_told_about() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        targets = [await system.spawn(Actor) for _ in range(50)]
        for target in targets:
            probe.watch(target)
        assert watching_of(probe.ref) == 50
        for target in targets:
            await target.stop()
        notices = await probe.receive_n(50)
        assert {notice.ref for notice in notices} == set(targets)
        assert watching_of(probe.ref) == 0
