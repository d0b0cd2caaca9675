"""spawn_nowait and stop_nowait: starting and stopping without waiting.

On the virtual clock (trio's ``MockClock`` and the asyncio twin), so shutdown
timeouts cost no real time and can be checked to the second.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

import actors
from actors import Actor, ActorRef, ActorsError, ActorSystem, NameTaken, Terminated
from actors.testing import TestProbe

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


class Recorder(Actor):
    """Logs its start, every message and its stop."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def on_start(self) -> None:
        self.log.append("start")

    async def receive(self, message: Any) -> Any:
        self.log.append(f"got {message}")
        return message

    async def on_stop(self) -> None:
        self.log.append("stop")


class FailsToStart(Actor):
    async def on_start(self) -> None:
        raise ValueError("no database")


class Parent(Actor):
    """Spawns a failing child without waiting; reports what it is told."""

    def __init__(self, probe: ActorRef) -> None:
        self.probe = probe

    async def on_start(self) -> None:
        self.context.spawn_nowait(FailsToStart, name="kid")

    async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
        await self.probe.tell((child.path, repr(error)))


class SlowStop(Actor):
    """Its on_stop never ends; ``"self"`` makes it stop itself."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def receive(self, message: Any) -> Any:
        if message == "self":
            await self.context.stop()

    async def on_stop(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.log.append(f"cancelled at {anyio.current_time():g}")


async def test_spawn_nowait_returns_before_the_actor_starts_and_keeps_early_messages() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        ref = system.spawn_nowait(Recorder, log, name="rec")
        assert log == [] and ref.path == "/user/rec"
        await ref.tell(1)
        ref.tell_nowait(2)
        assert await ref.ask(3) == 3
        assert log == ["start", "got 1", "got 2", "got 3"]


async def test_a_start_failure_after_spawn_nowait_is_raised_from_the_system() -> None:
    with pytest.raises(ValueError, match="no database"):
        async with ActorSystem() as system:
            system.spawn_nowait(FailsToStart)
            await anyio.sleep_forever()  # the failure cancels the body


async def test_a_childs_start_failure_after_spawn_nowait_goes_to_its_parent() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        await system.spawn(Parent, probe.ref, name="p")
        assert await probe.expect(lambda m: m[0] == "/user/p/kid") == (
            "/user/p/kid",
            "ValueError('no database')",
        )


async def test_spawn_nowait_checks_its_arguments_at_once() -> None:
    async with ActorSystem() as system:
        system.spawn_nowait(Actor, name="taken")
        with pytest.raises(NameTaken, match="/user/taken"):
            system.spawn_nowait(Actor, name="taken")
        with pytest.raises(TypeError, match="not an Actor"):
            system.spawn_nowait(int)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="without '/'"):
            system.spawn_nowait(Actor, name="a/b")
    with pytest.raises(ActorsError, match="not running"):
        system.spawn_nowait(Actor)


async def test_stop_nowait_returns_at_once_and_the_actor_stops_gracefully() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Recorder, log)
        probe.watch(ref)
        await ref.tell("last")
        ref.stop_nowait()
        ref.stop_nowait()  # twice is harmless
        assert "stop" not in log
        await probe.expect(Terminated(ref, None))
        assert log == ["start", "got last", "stop"]
        await ref.stop()  # already gone: returns at once


async def test_stop_nowait_still_cancels_an_actor_that_overruns_its_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        ref = await system.spawn(SlowStop, log, shutdown=3)
        start = anyio.current_time()
        ref.stop_nowait()
        await ref.stop()
        assert log == [f"cancelled at {start + 3:g}"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("did not stop within its shutdown timeout of 3" in w for w in warnings)


async def test_a_stop_from_outside_times_an_actor_that_stopped_itself() -> None:
    # Stopping oneself sets no deadline (waiting on oneself would deadlock);
    # a later stop from outside does.
    log: list[str] = []
    async with ActorSystem() as system:
        ref = await system.spawn(SlowStop, log, shutdown=4)
        await ref.tell("self")
        await anyio.wait_all_tasks_blocked()
        start = anyio.current_time()
        await ref.stop()
        assert log == [f"cancelled at {start + 4:g}"]


async def test_many_actors_spawned_and_stopped_without_waiting() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        refs = [system.spawn_nowait(Recorder, log) for _ in range(200)]
        for ref in refs:
            ref.stop_nowait()
        for ref in refs:
            await ref.stop()
        assert system.statistics().actors == 0
        assert log.count("start") == 200 and log.count("stop") == 200
