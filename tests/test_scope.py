"""The cancel scope around actor tasks: kill() and failing goroutines.

Actor-level tests run on both backends (trio's own scope on trio, TaskScope
on asyncio) and must behave the same; the TaskScope unit tests are
asyncio-only by nature.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import actors.testing
from actors import Actor, ActorFailed, ActorStopped, ActorSystem, _scope
from actors._scope import TaskScope, task_scope

pytestmark = pytest.mark.anyio

needs_uncancel = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="TaskScope needs Task.uncancel() (Python 3.11+)"
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


class Stubborn(Actor):
    """Swallows the first cancellation of its message, then waits again."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def receive(self, message: Any) -> Any:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.log.append("swallowed")
        self.log.append("waiting again")
        await anyio.sleep_forever()


async def test_kill_is_level_triggered_so_a_swallowed_cancel_does_not_save_the_actor() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        ref = await system.spawn(Stubborn, log)
        await ref.tell("go")
        await anyio.wait_all_tasks_blocked()
        await ref.kill()
        assert log == ["swallowed", "waiting again"]
        with pytest.raises(ActorStopped):
            await ref.ask("again")


class ShieldedCleanup(Actor):
    def __init__(self, entered: anyio.Event, release: anyio.Event, log: list[str]) -> None:
        self.entered, self.release, self.log = entered, release, log

    async def on_stop(self) -> None:
        with anyio.CancelScope(shield=True):
            self.entered.set()
            await self.release.wait()
            self.log.append("cleaned up")
        await anyio.sleep_forever()  # the kill lands here, after the shield


async def test_kill_waits_for_a_shielded_block_in_on_stop() -> None:
    await kill_during_shielded_on_stop()


async def kill_during_shielded_on_stop() -> None:
    entered, release = anyio.Event(), anyio.Event()
    log: list[str] = []
    async with ActorSystem() as system:
        ref = await system.spawn(ShieldedCleanup, entered, release, log, shutdown=60)
        async with anyio.create_task_group() as tg:
            tg.start_soon(ref.stop)
            await entered.wait()
            killed = anyio.Event()

            async def kill() -> None:
                await ref.kill()
                killed.set()

            tg.start_soon(kill)
            await anyio.wait_all_tasks_blocked()
            assert not killed.is_set() and log == []
            release.set()
            await killed.wait()
        assert log == ["cleaned up"]


class Nested(Actor):
    """Waits inside the user's own anyio scope with a deadline."""

    async def receive(self, message: Any) -> Any:
        with anyio.move_on_after(3600):
            await anyio.sleep_forever()
        return "inner scope swallowed the kill"


async def test_a_kill_passes_through_the_users_own_cancel_scopes() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Nested)
        async with anyio.create_task_group() as tg:

            async def ask() -> None:
                with pytest.raises(ActorStopped):
                    await ref.ask("wait", timeout=None)

            tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            await ref.kill()


class Boom(Exception):
    pass


class GoroutineFails(Actor):
    async def on_start(self) -> None:
        self.context.go(self.fail_later)

    async def fail_later(self) -> None:
        await anyio.lowlevel.checkpoint()
        raise Boom

    async def receive(self, message: Any) -> Any:
        with anyio.CancelScope():
            await anyio.sleep_forever()


async def test_a_failing_goroutine_cancels_its_actor_through_user_scopes() -> None:
    with pytest.raises(Boom):
        async with ActorSystem() as system:
            ref = await system.spawn(GoroutineFails)
            with pytest.raises(ActorFailed):
                await ref.ask("wait", timeout=None)


# -- Which scope asyncio actors get (asyncio only) ----------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@needs_uncancel
async def test_asyncio_actors_get_a_taskscope_when_anyio_reads_as_expected(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fails when an anyio release moves the internals that TaskScope reads:
    # then TaskScope must be taught the new ones (the fallback is slower).
    monkeypatch.setattr(_scope, "_native", None)
    assert isinstance(task_scope(), TaskScope)
    assert _scope._native is True
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_anyio_internals_gone_fall_back_to_anyio_scopes_that_keep_shields(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulates an anyio whose task states no longer read as TaskScope
    # expects: it would see no shields at all and cut through them.
    monkeypatch.setattr(_scope, "_native", None)
    monkeypatch.setattr(_scope, "_anyio_scopes", lambda task: iter(()))
    assert isinstance(task_scope(), anyio.CancelScope)
    assert isinstance(task_scope(), anyio.CancelScope)
    await kill_during_shielded_on_stop()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].name == "actors"
    assert "anyio.CancelScope instead" in warnings[0].getMessage()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.skipif(sys.version_info >= (3, 11), reason="Python 3.10 only")
async def test_python_310_gets_anyio_scopes_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert isinstance(task_scope(), anyio.CancelScope)
    await kill_during_shielded_on_stop()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- TaskScope itself (asyncio, Python 3.11+) ---------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@needs_uncancel
async def test_taskscope_cancelled_before_entry_cancels_the_first_await() -> None:
    scope = TaskScope()
    scope.cancel()
    reached = False
    with scope:
        await asyncio.sleep(0)
        reached = True  # pragma: no cover
    assert not reached
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@needs_uncancel
async def test_taskscope_lets_a_native_cancel_from_outside_through() -> None:
    entered = asyncio.Event()

    async def victim(scope: TaskScope) -> None:
        with scope:
            entered.set()
            await asyncio.sleep(3600)

    scope = TaskScope()
    task = asyncio.ensure_future(victim(scope))
    await entered.wait()
    scope.cancel()
    task.cancel()  # same loop pass: both land as one CancelledError
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@needs_uncancel
async def test_taskscope_never_loses_a_result_that_is_already_in() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    got: list[str] = []
    entered = asyncio.Event()

    async def waiter(scope: TaskScope) -> None:
        with scope:
            entered.set()
            got.append(await future)
            await asyncio.sleep(3600)

    scope = TaskScope()
    task = asyncio.ensure_future(waiter(scope))
    await entered.wait()
    future.set_result("kept")
    scope.cancel()  # the waiter's future is done: cancel at its next await
    await task
    assert got == ["kept"]
    assert not task.cancelled() and task.cancelling() == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@needs_uncancel
async def test_taskscope_raises_on_second_entry() -> None:
    scope = TaskScope()
    with scope:
        pass
    with pytest.raises(RuntimeError, match="only once"), scope:
        pass  # pragma: no cover


class Busy(Actor):
    """Works through random steps: plain sleeps, sleeps in a scope of its own
    with a deadline, and shielded sleeps that must always finish."""

    def __init__(self, rng_seed: int, log: dict[str, int]) -> None:
        self.rng = random.Random(rng_seed)
        self.log = log

    async def receive(self, message: Any) -> Any:
        for _ in range(self.rng.randint(1, 6)):
            step = self.rng.choice(("sleep", "scoped", "shielded"))
            seconds = self.rng.uniform(0, 2)
            if step == "sleep":
                await anyio.sleep(seconds)
            elif step == "scoped":
                with anyio.move_on_after(self.rng.uniform(0, 2)):
                    await anyio.sleep(seconds)
            else:
                self.log["shield entered"] += 1
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(seconds)
                self.log["shield left"] += 1
        return message


@pytest.mark.parametrize("seed", range(4))
async def test_random_kills_and_stops_of_busy_actors(seed: int) -> None:
    # 50 actors at random steps of their work are killed, stopped (with a
    # short shutdown timeout) or left alone: every one ends, no shielded
    # section is cut short, and the system leaves nothing running.
    rng = random.Random(seed)
    log = {"shield entered": 0, "shield left": 0}
    async with ActorSystem(shutdown=0.5) as system:
        refs = [await system.spawn(Busy, rng.randrange(2**32), log) for _ in range(50)]
        for ref in refs:
            for i in range(rng.randint(0, 3)):
                ref.tell_nowait(i)
        async with anyio.create_task_group() as tg:
            for ref in refs:
                action = rng.choice(("kill", "stop", "stop_nowait", "none"))
                await anyio.sleep(rng.uniform(0, 0.5))
                if action == "kill":
                    tg.start_soon(ref.kill)
                elif action == "stop":
                    tg.start_soon(ref.stop)
                elif action == "stop_nowait":
                    ref.stop_nowait()
    assert system.statistics().actors == 0
    assert log["shield entered"] == log["shield left"]
