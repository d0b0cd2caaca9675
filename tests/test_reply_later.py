"""Deferred replies and pipe_to_self: an actor answers later and keeps
handling messages meanwhile (issue 12)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

import actors
from actors import ActorsError, ActorStopped, ActorSystem, AskTimeout, Reply

pytestmark = pytest.mark.anyio


async def slow_lookup(gate: anyio.Event, key: str) -> str:
    await gate.wait()
    if key == "bad":
        raise LookupError(key)
    return key.upper()


class Cache(actors.Actor):
    def __init__(self, gate: anyio.Event) -> None:
        self.gate = gate
        self.waiting: dict[str, list[Reply]] = {}

    async def receive(self, message: Any) -> Any:
        match message:
            case ("get", key):
                first = key not in self.waiting
                self.waiting.setdefault(key, []).append(self.context.reply_later())
                if first:
                    self.context.pipe_to_self(
                        slow_lookup,
                        self.gate,
                        key,
                        message=lambda value: ("found", key, value),
                        on_error=lambda exc: ("failed", key, exc),
                    )
            case ("found", key, value):
                for reply in self.waiting.pop(key):
                    reply.send(value)
            case ("failed", key, exc):
                for reply in self.waiting.pop(key):
                    reply.fail(exc)
            case "in flight":
                return sum(len(r) for r in self.waiting.values())
            case "reply twice":
                reply = self.context.reply_later()
                reply.send(1)
                try:
                    reply.send(2)
                except ActorsError as exc:
                    return exc  # answers nothing: the reply was taken
            case "reply_later in a tell":
                try:
                    self.context.reply_later()
                except ActorsError as exc:
                    self.error = exc
            case "error?":
                return self.error
            case "take and drop":
                self.context.reply_later()  # never answered


async def test_asks_answered_later_while_other_messages_are_handled() -> None:
    gate = anyio.Event()
    async with ActorSystem() as system:
        cache = await system.spawn(Cache, gate)
        results: dict[str, Any] = {}

        async def get(key: str, slot: str) -> None:
            try:
                results[slot] = await cache.ask(("get", key))
            except LookupError as exc:
                results[slot] = exc

        async with anyio.create_task_group() as tg:
            for key, slot in [("a", "a1"), ("b", "b1"), ("a", "a2"), ("bad", "bad")]:
                tg.start_soon(get, key, slot)
            while await cache.ask("in flight") < 4:  # it answers while waiting
                await anyio.lowlevel.checkpoint()
            assert results == {}
            gate.set()
        assert {k: v for k, v in results.items() if k != "bad"} == {
            "a1": "A",
            "a2": "A",
            "b1": "B",
        }
        assert isinstance(results["bad"], LookupError)  # Reply.fail: the error itself
        assert cache.alive


async def test_a_reply_is_given_once() -> None:
    async with ActorSystem() as system:
        cache = await system.spawn(Cache, anyio.Event())
        assert await cache.ask("reply twice") == 1


async def test_reply_later_outside_an_ask_raises() -> None:
    async with ActorSystem() as system:
        cache = await system.spawn(Cache, anyio.Event())
        await cache.tell("reply_later in a tell")
        assert "while handling an ask" in str(await cache.ask("error?"))


async def test_an_unanswered_reply_gives_actor_stopped_when_the_actor_ends() -> None:
    async with ActorSystem() as system:
        cache = await system.spawn(Cache, anyio.Event())
        async with anyio.create_task_group() as tg:
            outcome: list[BaseException] = []

            async def ask() -> None:
                try:
                    await cache.ask("take and drop", timeout=None)
                except ActorStopped as exc:
                    outcome.append(exc)

            tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()  # taken, and the actor idle
            await cache.stop()
        assert len(outcome) == 1


async def test_a_late_answer_after_the_asker_gave_up_is_counted() -> None:
    gate = anyio.Event()
    async with ActorSystem() as system:
        cache = await system.spawn(Cache, gate)
        with pytest.raises(AskTimeout):
            await cache.ask(("get", "k"), timeout=0.01)
        gate.set()
        while await cache.ask("in flight"):
            await anyio.lowlevel.checkpoint()
        assert system.statistics().late_replies == 1


async def test_a_piped_failure_without_on_error_fails_the_actor() -> None:
    class Piper(actors.Actor):
        async def receive(self, message: Any) -> Any:
            gate = anyio.Event()
            gate.set()
            self.context.pipe_to_self(slow_lookup, gate, "bad")

    with pytest.raises(LookupError):
        async with ActorSystem() as system:
            piper = await system.spawn(Piper)
            await piper.tell("go")
            await piper.join()


async def test_pipe_to_self_needs_a_callable() -> None:
    class Wrong(actors.Actor):
        async def receive(self, message: Any) -> Any:
            try:
                self.context.pipe_to_self(message)
            except TypeError as exc:
                return str(exc)

    async with ActorSystem() as system:
        ref = await system.spawn(Wrong)
        assert "needs an async function" in await ref.ask(42)
