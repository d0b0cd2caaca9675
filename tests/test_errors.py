"""Errors that say what happened (issue 12): mistakes found where they are made,
messages that show the message, names that count per class."""

from __future__ import annotations

from typing import Any

import pytest

from actors import Actor, ActorFailed, ActorSystem
from actors._messages import describe

pytestmark = pytest.mark.anyio


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        return message


class Crash(Actor):
    async def receive(self, message: Any) -> Any:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    "hook", ["on_start", "receive", "on_stop", "on_stop_children", "on_child_failed"]
)
def test_a_plain_def_hook_is_refused_where_the_class_is_defined(hook: str) -> None:
    def plain(self: Any, *args: Any) -> None:
        pass

    with pytest.raises(TypeError, match=rf"Sync\.{hook} is a plain function.*async def {hook}"):
        type("Sync", (Actor,), {hook: plain})


def test_async_and_decorated_hooks_are_accepted() -> None:
    import functools

    def traced(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            return fn(*args)

        return wrapper

    class Traced(Actor):
        @traced
        async def receive(self, message: Any) -> Any:
            return message

    assert Traced.receive.__wrapped__


@pytest.mark.parametrize("timeout", ["5", b"5", [5], True])
async def test_an_ask_timeout_of_the_wrong_type(timeout: Any) -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Echo)
        with pytest.raises(TypeError, match="timeout must be a number of seconds or None"):
            await ref.ask("hi", timeout=timeout)


async def test_errors_show_a_short_repr_of_the_message() -> None:
    with pytest.raises(RuntimeError):
        async with ActorSystem() as system:
            ref = await system.spawn(Crash, name="crash")
            with pytest.raises(ActorFailed, match=r"failed handling str 'x{10}.*\.\.\.'") as info:
                await ref.ask("x" * 1000)
            assert len(str(info.value)) < 200


def test_describe_truncates_and_survives_a_broken_repr() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    assert describe("hi") == "str 'hi'"
    assert len(describe(list(range(10_000)))) < 100
    assert describe(Broken()).startswith("Broken <")


async def test_anonymous_actors_are_numbered_per_class_and_skip_taken_names() -> None:
    async with ActorSystem() as system:
        first = await system.spawn(Echo)
        await system.spawn(Crash, name="crash-x")
        taken = await system.spawn(Echo, name="echo-2")
        second = await system.spawn(Echo)
        other = await system.spawn(Crash)
        assert [first.name, taken.name, second.name, other.name] == [
            "echo-1",
            "echo-2",
            "echo-3",
            "crash-1",
        ]
