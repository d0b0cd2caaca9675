"""Bad input, tried as a new user would (issue 3, section 4).

Each mistake gets a clear error naming the actor and what to do, never a hang
or a silent failure.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import anyio
import pytest

import actors
from actors import Actor, ActorRef, ActorsError, ActorSystem, Mailbox, Terminated
from actors.testing import TestProbe

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        return message


class Attempt(Actor):
    """Runs ``message(self)`` and answers its result or the exception it raised,
    so a test can see what a mistake inside an actor raises."""

    async def receive(self, message: Any) -> Any:
        try:
            return await message(self)
        except Exception as exc:
            return exc


async def attempt(system: ActorSystem, fn: Any) -> Any:
    ref = await system.spawn(Attempt)
    return await ref.ask(fn)


# -- spawning -----------------------------------------------------------------


class NotAnActor:
    pass


async def test_spawning_a_class_that_is_not_an_actor() -> None:
    async with ActorSystem() as system:
        with pytest.raises(TypeError, match=r"cannot spawn NotAnActor: .*subclass actors\.Actor"):
            await system.spawn(NotAnActor)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="cannot spawn 42: pass an Actor subclass"):
            await system.spawn(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"cannot spawn <.*Echo object"):
            await system.spawn(Echo())  # type: ignore[arg-type]
        assert system.statistics().actors == 0


async def test_spawning_a_factory_that_returns_something_else() -> None:
    def make_worker() -> Any:
        return NotAnActor()

    async with ActorSystem() as system:
        with pytest.raises(actors.ActorFailed, match="failed to start while being built") as info:
            await system.spawn(make_worker, name="w")
        assert isinstance(info.value.__cause__, TypeError)
        message = str(info.value.__cause__)
        assert "make_worker" in message
        assert "/user/w" in message
        assert "NotAnActor, not an Actor" in message
        assert system.statistics().actors == 0
        # The name is free, and the system carries on.
        assert await (await system.spawn(Echo, name="w")).ask(1) == 1


async def test_a_factory_that_raises_makes_spawn_raise_actor_failed() -> None:
    def broken() -> Actor:
        raise RuntimeError("no database")

    async with ActorSystem() as system:
        with pytest.raises(actors.ActorFailed, match="failed to start while being built") as info:
            await system.spawn(broken)
        assert isinstance(info.value.__cause__, RuntimeError)


async def test_spawning_outside_or_after_the_system() -> None:
    system = ActorSystem("closed")
    with pytest.raises(ActorsError, match="'closed' is not running: spawn actors inside"):
        await system.spawn(Echo)
    async with system:
        pass
    with pytest.raises(ActorsError, match="'closed' is not running"):
        await system.spawn(Echo)


async def test_spawning_from_a_stopping_actor() -> None:
    class SpawnsInOnStop(Actor):
        async def on_stop(self) -> None:
            with pytest.raises(ActorsError, match="/user/late is stopping: it cannot spawn"):
                await self.context.spawn(Echo)

    async with ActorSystem() as system:
        await (await system.spawn(SpawnsInOnStop, name="late")).stop()


@pytest.mark.parametrize("name", ["", "a/b", "/"])
async def test_bad_actor_names(name: str) -> None:
    async with ActorSystem() as system:
        with pytest.raises(ValueError, match="non-empty string without '/'"):
            await system.spawn(Echo, name=name)


async def test_a_name_that_is_not_a_string() -> None:
    async with ActorSystem() as system:
        with pytest.raises(ValueError, match="got 7"):
            await system.spawn(Echo, name=7)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a/b"])
def test_bad_system_names(name: str) -> None:
    with pytest.raises(ValueError, match="system name must be a non-empty string"):
        ActorSystem(name)


# -- mailboxes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"capacity": 0}, ValueError, "whole number >= 1"),
        ({"capacity": -5}, ValueError, "whole number >= 1"),
        ({"capacity": 2.5}, ValueError, "whole number >= 1"),
        ({"capacity": math.nan}, ValueError, "whole number >= 1"),
        ({"capacity": "10"}, TypeError, "int or math.inf"),
        ({"capacity": True}, TypeError, "int or math.inf"),
        ({"overflow": "drop"}, ValueError, "block, drop_newest, drop_oldest, fail; got 'drop'"),
    ],
)
def test_bad_mailbox_arguments(kwargs: dict[str, Any], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        Mailbox(**kwargs)


def test_good_mailbox_arguments() -> None:
    assert Mailbox(math.inf).capacity == math.inf
    assert Mailbox(1, "fail").overflow == "fail"


async def test_spawn_with_something_that_is_not_a_mailbox() -> None:
    async with ActorSystem() as system:
        with pytest.raises(TypeError, match=r"mailbox must be an actors\.Mailbox, got 10"):
            await system.spawn(Echo, mailbox=10)  # type: ignore[arg-type]


# -- asking -------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, -1, math.nan])
async def test_a_non_positive_ask_timeout(timeout: float) -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Echo)
        with pytest.raises(ValueError, match="positive number of seconds or None"):
            await ref.ask("hi", timeout=timeout)
        assert await ref.ask("hi", timeout=math.inf) == "hi"


async def test_unpicklable_messages_work_in_process() -> None:
    lock = threading.Lock()

    def function(x: int) -> int:
        return x + 1

    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Echo)
        for message in (lock, function, lambda: 1, (x for x in range(3))):
            assert await ref.ask(message) is message
            await probe.ref.tell(message)
            assert await probe.expect(lambda m: m is message) is message  # noqa: B023


async def test_ask_from_inside_receive_of_the_same_actor_raises_instead_of_hanging() -> None:
    async def ask_myself(actor: Actor) -> Any:
        return await actor.ref.ask("me?", timeout=60)

    async with ActorSystem() as system:
        start = anyio.current_time()
        error = await attempt(system, ask_myself)
        assert anyio.current_time() == start
        assert isinstance(error, ActorsError)
        message = str(error)
        assert "asked itself str" in message
        assert "/user/attempt-" in message
        assert "deadlock" in message
        assert "tell()" in message


async def test_a_goroutine_may_ask_its_own_actor() -> None:
    class AsksFromGoroutine(Actor):
        def __init__(self, to: ActorRef) -> None:
            self.to = to

        async def receive(self, message: Any) -> Any:
            if message == "go":
                self.context.go(self.ask_me)
            return f"answer to {message}"

        async def ask_me(self) -> None:
            await self.to.tell(await self.ref.ask("inner"))

    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(AsksFromGoroutine, probe.ref)
        await ref.tell("go")
        await probe.expect("answer to inner")


# -- refs of another system ---------------------------------------------------


async def test_watching_a_ref_of_another_system() -> None:
    async with ActorSystem("one") as one, ActorSystem("two") as two:
        foreign = await two.spawn(Echo, name="foreign")

        async def watch(actor: Actor) -> None:
            actor.context.watch(foreign)

        error = await attempt(one, watch)
        assert isinstance(error, ActorsError)
        assert "belongs to actor system 'two', not 'one'" in str(error)
        assert "/user/foreign" in str(error)


async def test_watching_a_ref_of_another_system_with_the_same_name() -> None:
    async with ActorSystem() as one, ActorSystem() as two:
        probe = await TestProbe.start(one)
        foreign = await two.spawn(Echo, name="foreign")
        with pytest.raises(ActorsError, match="another actor system"):
            probe.watch(foreign)
        await foreign.stop()
        await probe.expect_no_message(within=1)


async def test_watching_something_that_is_not_a_ref() -> None:
    async def watch(actor: Actor) -> None:
        actor.context.watch("/user/x")  # type: ignore[arg-type]

    async with ActorSystem() as system:
        error = await attempt(system, watch)
        assert isinstance(error, TypeError)
        assert "watch needs an ActorRef, got str" in str(error)


async def test_a_pickled_ref_used_in_another_system() -> None:
    import pickle

    async with ActorSystem("one") as one:
        data = pickle.dumps(await one.spawn(Echo, name="e"))
    async with ActorSystem("two"):
        ref = pickle.loads(data)
        with pytest.raises(ActorsError, match="belongs to actor system 'one', not 'two'"):
            await ref.tell("hi")


def test_a_ref_used_outside_any_system() -> None:
    import pickle

    async def make() -> bytes:
        async with ActorSystem("gone") as system:
            return pickle.dumps(await system.spawn(Echo))

    ref = pickle.loads(actors.run(make))

    async def use() -> None:
        await ref.tell("hi")

    with pytest.raises(ActorsError, match="outside its actor system 'gone'"):
        actors.run(use)


# -- timers and goroutines ----------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda c: c.schedule_once(-1, "x"), ValueError, "delay must be >= 0 and finite"),
        (lambda c: c.schedule_once(math.inf, "x"), ValueError, "finite"),
        (lambda c: c.schedule_once("1", "x"), TypeError, "delay must be a number"),
        (lambda c: c.schedule_every(0, "x"), ValueError, "interval must be > 0"),
        (lambda c: c.schedule_every(1, "x", initial_delay=-1), ValueError, "initial_delay"),
        (lambda c: c.go(42), TypeError, "go() needs an async function, got int"),
    ],
)
async def test_bad_timer_and_goroutine_arguments(
    call: Any, error: type[Exception], words: str
) -> None:
    async def run(actor: Actor) -> None:
        call(actor.context)

    async with ActorSystem() as system:
        got = await attempt(system, run)
        assert isinstance(got, error), got
        assert words in str(got)


def test_go_outside_an_actor_needs_a_group() -> None:
    async def noop() -> None:
        pass

    with pytest.raises(ActorsError, match="outside an actor has no owner: pass a task group"):
        actors.go(noop)


async def test_an_actor_stopping_itself_through_its_own_ref_does_not_deadlock() -> None:
    class Quitter(Actor):
        def __init__(self, to: ActorRef) -> None:
            self.to = to

        async def receive(self, message: Any) -> Any:
            await self.ref.stop()  # like context.stop(): stops after this message
            await self.to.tell(f"finished {message}")

        async def on_stop(self) -> None:
            await self.to.tell("on_stop")

    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Quitter, probe.ref)
        probe.watch(ref)
        start = anyio.current_time()
        await ref.tell("last")
        await ref.tell("never handled")
        got = await probe.receive_n(3)
        # The Terminated notice is a system message: it may overtake "on_stop".
        assert got[0] == "finished last"
        assert sorted(map(str, got[1:])) == sorted(map(str, ["on_stop", Terminated(ref, None)]))
        assert anyio.current_time() < start + 1  # no shutdown timeout (5 s) was needed
