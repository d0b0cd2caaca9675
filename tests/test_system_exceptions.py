"""What comes out of ``async with ActorSystem()``, alike on both backends.

``KeyboardInterrupt`` and ``SystemExit``, raised in the body or in an actor,
come out as themselves (never in an exception group); a cancellation that is
not an actor's own is a failure of that actor; a factory that raises a
``TypeError`` is a failure to start, whatever its message says.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from actors import Actor, ActorFailed, ActorRef, ActorSystem, Terminated
from actors.testing import TestProbe

pytestmark = pytest.mark.anyio


class Noting(Actor):
    """Notes ``on_stop`` and its goroutine's end in ``log``; ``receive`` raises
    what it is sent (an exception instance), or calls it (a function)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def on_start(self) -> None:
        self.context.go(self.goroutine)

    async def goroutine(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.log.append(f"goroutine {self.ref.name} ended")

    async def receive(self, message: Any) -> Any:
        if isinstance(message, BaseException):
            raise message
        return await message()

    async def on_stop(self) -> None:
        self.log.append(f"on_stop {self.ref.name}")


# -- KeyboardInterrupt and SystemExit -----------------------------------------


async def test_system_exit_in_the_body_comes_out_as_itself_after_a_graceful_stop() -> None:
    log: list[str] = []
    with pytest.raises(SystemExit) as caught:
        async with ActorSystem() as system:
            await system.spawn(Noting, log, name="a")
            await system.spawn(Noting, log, name="b")
            raise SystemExit(3)
    assert type(caught.value) is SystemExit and caught.value.code == 3
    assert log == ["goroutine b ended", "on_stop b", "goroutine a ended", "on_stop a"]


async def test_keyboard_interrupt_in_the_body_comes_out_as_itself_and_cancels() -> None:
    log: list[str] = []
    with pytest.raises(KeyboardInterrupt) as caught:
        async with ActorSystem() as system:
            await system.spawn(Noting, log, name="a")
            raise KeyboardInterrupt
    assert type(caught.value) is KeyboardInterrupt
    assert log == ["goroutine a ended"]


@pytest.mark.parametrize("exit_type", [SystemExit, KeyboardInterrupt])
@pytest.mark.parametrize("where", ["receive", "goroutine", "on_start", "on_stop"])
async def test_an_exit_raised_in_an_actor_ends_the_system_and_comes_out_as_itself(
    exit_type: type[BaseException], where: str
) -> None:
    log: list[str] = []
    error = exit_type(4) if exit_type is SystemExit else exit_type()

    class Exiting(Actor):
        async def on_start(self) -> None:
            if where == "goroutine":
                self.context.go(self.raise_it)
            elif where == "on_start":
                raise error

        async def raise_it(self) -> None:
            raise error

        async def receive(self, message: Any) -> None:
            raise error

        async def on_stop(self) -> None:
            raise error

    with pytest.raises(exit_type) as caught:
        async with ActorSystem() as system:
            await system.spawn(Noting, log, name="bystander")
            if where == "on_start":
                system.spawn_nowait(Exiting, name="x")
            else:
                ref = await system.spawn(Exiting, name="x")
                if where == "receive":
                    await ref.tell("go")
                elif where == "on_stop":
                    await ref.stop()
            await anyio.sleep_forever()
    assert caught.value is error
    # The body was cancelled and so was every other actor (no on_stop).
    assert log == ["goroutine bystander ended"]
    assert system.statistics().actors == 0


# -- a cancellation that is not the actor's own --------------------------------


async def stray_cancellation() -> BaseException:
    """A real cancellation exception of the running backend, caught in a scope
    of its own: raised anywhere else, it is nobody's cancellation."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.lowlevel.checkpoint()
        except anyio.get_cancelled_exc_class() as exc:
            return exc
    raise AssertionError("the scope did not cancel")


async def test_a_stray_cancellation_in_receive_fails_the_actor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cancelled = await stray_cancellation()
    log: list[str] = []
    with pytest.raises(ActorFailed) as caught:
        async with ActorSystem() as system:
            bystander = await system.spawn(Noting, log, name="bystander")
            ref = await system.spawn(Noting, log, name="x")
            with pytest.raises(ActorFailed) as asked:
                await ref.ask(cancelled)
            await anyio.sleep_forever()
    assert caught.value is asked.value.__cause__
    assert caught.value.__cause__ is cancelled
    assert "/user/x" in str(caught.value) and "receive" in str(caught.value)
    # A failure like any other: logged, on_stop ran, the rest stopped gracefully.
    assert log == [
        "goroutine x ended",
        "on_stop x",
        "goroutine bystander ended",
        "on_stop bystander",
    ]
    errors = [r for r in caplog.records if r.name == "actors" and r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "/user/x" in errors[0].getMessage()
    assert bystander is not None


@pytest.mark.parametrize("where", ["receive", "goroutine", "on_stop"])
async def test_a_stray_cancellation_is_a_failure_its_parent_is_told_of(where: str) -> None:
    cancelled = await stray_cancellation()

    class Child(Actor):
        async def on_start(self) -> None:
            if where == "goroutine":
                self.context.go(self.raise_it)

        async def raise_it(self) -> None:
            raise cancelled

        async def receive(self, message: Any) -> None:
            raise cancelled

        async def on_stop(self) -> None:
            if where == "on_stop":
                raise cancelled

    class Parent(Actor):
        def __init__(self, probe: ActorRef) -> None:
            self.probe = probe

        async def on_start(self) -> None:
            child = await self.context.spawn(Child, name="child")
            self.context.watch(child)
            if where == "receive":
                await child.tell("go")
            elif where == "on_stop":
                await child.stop()

        async def receive(self, message: Any) -> None:
            await self.probe.tell(message)

        async def on_child_failed(self, ref: ActorRef, error: BaseException) -> None:
            await self.probe.tell(("failed", ref.name, type(error), error.__cause__))

    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        await system.spawn(Parent, probe.ref, name="parent")
        notice, told = await probe.receive_n(2)  # watchers are told first
        assert isinstance(notice, Terminated) and isinstance(notice.reason, ActorFailed)
        assert told == ("failed", "child", ActorFailed, cancelled)


# -- a factory's TypeError ----------------------------------------------------


async def test_a_type_error_from_the_factory_is_a_failure_to_start_whatever_it_says() -> None:
    def factory() -> Actor:
        raise TypeError("this is not an Actor problem, just a bug")

    async with ActorSystem() as system:
        with pytest.raises(ActorFailed) as caught:
            await system.spawn(factory, name="x")
        assert type(caught.value.__cause__) is TypeError

        # One shape for every failure to start: what the factory returned too.
        with pytest.raises(ActorFailed, match="while being built") as bad:
            await system.spawn(lambda: 42, name="y")  # type: ignore[arg-type, return-value]
        assert type(bad.value.__cause__) is TypeError
        assert "returned int, not an Actor" in str(bad.value.__cause__)
