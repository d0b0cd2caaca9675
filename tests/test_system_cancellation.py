"""Cancelling an actor system's block at every stage, on both backends.

Wherever the cancellation lands (a spawn, an ``on_start``, the body, the
graceful stop of any one actor, a kill, or a second cancellation on top of the
first), the block is left at the deadline (on the virtual clock: exactly
then), unless a shielded cleanup is still running, which it waits for. Every
actor not yet stopped is cancelled rather than stopped, nothing of the system
runs afterwards, and the scope that fired catches its cancellation.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from actors import Actor, ActorSystem
from actors.testing import virtual_time

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return virtual_time(request.param)


class Log:
    """Events as ``"<seconds since the test began> <what>"``."""

    def __init__(self) -> None:
        self.t0 = anyio.current_time()
        self.events: list[str] = []

    def now(self) -> float:
        return round(anyio.current_time() - self.t0, 6)  # the clocks' float sums

    def note(self, what: str) -> None:
        self.events.append(f"{self.now():g} {what}")

    def __eq__(self, expected: object) -> bool:
        assert isinstance(expected, list)
        return sorted(self.events) == sorted(expected)

    def __repr__(self) -> str:
        return repr(sorted(self.events))


class Life(Actor):
    """Logs its life: how long ``on_start`` and ``on_stop`` take (``inf``:
    forever), when either is cancelled, when a cleanup after that (shielded,
    ``cleanup`` seconds) ends, and when its goroutine ends. Spawns
    ``children`` (name to keyword arguments) from ``on_start``."""

    def __init__(
        self,
        log: Log,
        *,
        start: float = 0,
        stop: float = 0,
        cleanup: float = 0,
        children: dict[str, dict[str, Any]] | None = None,
        how: str = "spawn",
    ) -> None:
        self.log = log
        self.start, self.stop, self.cleanup = start, stop, cleanup
        self.children = children or {}
        self.how = how

    async def on_start(self) -> None:
        self.context.go(self.goroutine)
        for name, kwargs in self.children.items():
            if self.how == "spawn":
                await self.context.spawn(Life, self.log, name=name, **kwargs)
            else:
                self.context.spawn_nowait(Life, self.log, name=name, **kwargs)
        await self.take("start", self.start)

    async def on_stop(self) -> None:
        await self.take("stop", self.stop)

    async def take(self, what: str, seconds: float) -> None:
        if not seconds:
            return
        self.log.note(f"{what} {self.ref.name}")
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            self.log.note(f"{what} {self.ref.name} cancelled")
            if self.cleanup:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(self.cleanup)
                self.log.note(f"{self.ref.name} cleaned up")
            raise
        self.log.note(f"{what} {self.ref.name} done")

    async def goroutine(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.log.note(f"goroutine {self.ref.name} ended")


def assert_all_gone(system: ActorSystem) -> None:
    assert system.statistics().actors == 0
    assert system.tree().actors == ()


# -- during spawn and on_start ------------------------------------------------


async def test_cancelled_during_spawn() -> None:
    log = Log()
    with anyio.move_on_after(5) as scope:
        async with ActorSystem() as system:
            await system.spawn(Life, log, name="a")
            await system.spawn(Life, log, name="b", start=math.inf)
            pytest.fail("spawn returned")
    assert scope.cancelled_caught
    assert log.now() == 5
    assert log == ["0 start b", "5 start b cancelled", "5 goroutine a ended", "5 goroutine b ended"]
    assert_all_gone(system)


@pytest.mark.parametrize("how", ["spawn", "spawn_nowait"])
async def test_cancelled_during_a_childs_on_start(how: str) -> None:
    log = Log()
    children = {"c": {"start": math.inf}}
    with anyio.move_on_after(5) as scope:
        async with ActorSystem() as system:
            if how == "spawn":
                await system.spawn(Life, log, name="p", children=children, how=how)
            else:
                system.spawn_nowait(Life, log, name="p", children=children, how=how)
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert log.now() == 5
    assert log == ["0 start c", "5 start c cancelled", "5 goroutine p ended", "5 goroutine c ended"]
    assert_all_gone(system)


# -- in the body --------------------------------------------------------------


async def test_cancelled_in_the_body_cancels_every_actor_and_skips_on_stop() -> None:
    log = Log()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(5):
            async with ActorSystem() as system:
                await system.spawn(Life, log, name="a", stop=1)
                await system.spawn(Life, log, name="b", stop=1, children={"c": {"stop": 1}})
                await anyio.sleep_forever()
    assert log.now() == 5
    assert log == ["5 goroutine a ended", "5 goroutine b ended", "5 goroutine c ended"]
    assert_all_gone(system)


# -- during the graceful stop -------------------------------------------------


@pytest.mark.parametrize("during", ["c", "b", "a"])
async def test_cancelled_during_the_graceful_stop_of_each_actor_in_turn(during: str) -> None:
    # c, b, a stop in turn (reverse spawn order), each on_stop taking 10 s;
    # the deadline lands 5 s into the one of ``during``.
    turn = "cba".index(during)
    log = Log()
    with anyio.move_on_after(10 * turn + 5) as scope:
        async with ActorSystem(shutdown=100) as system:
            for name in "abc":
                await system.spawn(Life, log, name=name, stop=10)
    assert scope.cancelled_caught
    deadline = 10 * turn + 5
    assert log.now() == deadline
    expected = []
    for i, name in enumerate("cba"):
        if i < turn:  # stopped in full
            expected += [f"{10 * i} goroutine {name} ended", f"{10 * i} stop {name}"]
            expected += [f"{10 * i + 10} stop {name} done"]
        elif i == turn:  # its on_stop is cancelled
            expected += [f"{10 * i} goroutine {name} ended", f"{10 * i} stop {name}"]
            expected += [f"{deadline} stop {name} cancelled"]
        else:  # never asked to stop: cancelled
            expected += [f"{deadline} goroutine {name} ended"]
    assert log == expected
    assert_all_gone(system)


async def test_cancelled_while_one_slow_actor_stops_leaves_at_the_deadline() -> None:
    # Not after the actor's shutdown timeout (5 s).
    log = Log()
    with anyio.move_on_after(1) as scope:
        async with ActorSystem() as system:
            await system.spawn(Life, log, name="slow", stop=math.inf)
    assert scope.cancelled_caught
    assert log.now() == 1
    assert log == ["0 goroutine slow ended", "0 stop slow", "1 stop slow cancelled"]
    assert_all_gone(system)


# -- during kill --------------------------------------------------------------


async def test_cancelled_while_awaiting_a_kill_waits_for_the_killed_actors_cleanup() -> None:
    log = Log()
    with anyio.move_on_after(1) as scope:
        async with ActorSystem() as system:
            await system.spawn(Life, log, name="a")
            victim = await system.spawn(Life, log, name="b", stop=math.inf, cleanup=2)
            victim.stop_nowait()
            await anyio.sleep(0.5)  # b is in its on_stop now
            await victim.kill()
            pytest.fail("kill returned before the cleanup")
    # The kill cancelled b's on_stop at 0.5; its shielded cleanup ends at 2.5,
    # and the block (cancelled at 1) waits for it.
    assert scope.cancelled_caught
    assert log.now() == 2.5
    assert log == [
        "0 goroutine b ended",
        "0 stop b",
        "0.5 stop b cancelled",
        "2.5 b cleaned up",
        "1 goroutine a ended",
    ]
    assert_all_gone(system)


async def test_cancelled_while_the_system_kills_after_a_keyboard_interrupt() -> None:
    log = Log()
    with anyio.move_on_after(1) as scope:
        with pytest.raises(KeyboardInterrupt):
            async with ActorSystem(shutdown=100) as system:
                ref = await system.spawn(Life, log, name="a", stop=math.inf, cleanup=2)
                await system.spawn(Life, log, name="b")
                ref.stop_nowait()
                await anyio.sleep(0.5)  # a is in its on_stop now
                raise KeyboardInterrupt
        assert log.now() == 2.5  # the deadline (1) did not cut the cleanup short
        await anyio.lowlevel.checkpoint()
        pytest.fail("the deadline was lost")
    assert scope.cancelled_caught
    assert log == [
        "0 goroutine a ended",
        "0 stop a",
        "0.5 stop a cancelled",
        "2.5 a cleaned up",
        "0.5 goroutine b ended",
    ]
    assert_all_gone(system)


async def test_an_actor_spawned_while_the_system_is_cancelled_is_cancelled_too() -> None:
    log = Log()

    class LateSpawner(Actor):
        async def on_start(self) -> None:
            self.context.go(self.goroutine)

        async def goroutine(self) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                system.spawn_nowait(Life, log, name="late", start=math.inf)

    with anyio.move_on_after(1) as scope:
        async with ActorSystem() as system:
            await system.spawn(LateSpawner)
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert log.now() == 1
    # Born cancelled: its on_start is cancelled at its first checkpoint.
    assert log == ["1 start late", "1 start late cancelled", "1 goroutine late ended"]
    assert_all_gone(system)


# -- a second cancellation on top of the first --------------------------------


async def test_a_second_cancellation_during_the_first_waits_for_what_is_shielded() -> None:
    log = Log()
    with anyio.move_on_after(6) as outer:
        with anyio.move_on_after(5) as inner:
            async with ActorSystem(shutdown=100) as system:
                await system.spawn(Life, log, name="a", stop=10)
                await system.spawn(Life, log, name="b", stop=10, cleanup=2)
        assert inner.cancelled_caught
        assert log.now() == 7
        await anyio.lowlevel.checkpoint()
        pytest.fail("the outer deadline was lost")
    assert outer.cancelled_caught
    assert log == [
        "0 goroutine b ended",
        "0 stop b",
        "5 stop b cancelled",
        "7 b cleaned up",
        "5 goroutine a ended",
    ]
    assert_all_gone(system)


async def test_a_second_cancellation_of_the_same_scope_changes_nothing() -> None:
    log = Log()
    with anyio.CancelScope() as scope:

        class Canceller(Actor):
            async def on_stop(self) -> None:
                scope.cancel()
                await anyio.lowlevel.checkpoint()
                scope.cancel()
                await anyio.sleep(1)

        async with ActorSystem() as system:
            await system.spawn(Life, log, name="a", stop=1)
            await system.spawn(Canceller, name="c")
    assert scope.cancelled_caught
    assert log.now() == 0
    assert log == ["0 goroutine a ended"]
    assert_all_gone(system)
