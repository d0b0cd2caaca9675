"""Unhandled messages: the asker sees an error, the system logs a dead letter,
the actor keeps running (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest

import actors
from actors import Actor, ActorSystem, UnhandledMessage

pytestmark = pytest.mark.anyio


class Strict(Actor):
    def __init__(self) -> None:
        self.handled = 0

    async def receive(self, message: Any) -> Any:
        match message:
            case "ping":
                self.handled += 1
                return "pong"
            case ("ask", ref, inner):
                return await ref.ask(inner)
            case _:
                return self.unhandled(message)


async def test_an_unhandled_ask_raises_and_the_actor_keeps_running() -> None:
    async with ActorSystem() as system, system.dead_letters() as letters:
        ref = await system.spawn(Strict, name="strict")
        with pytest.raises(UnhandledMessage, match=r"/user/strict did not handle int 42"):
            await ref.ask(42)
        letter = letters.receive_nowait()
        assert (letter.message, letter.recipient, letter.reason) == (42, ref, "unhandled")
        assert await ref.ask("ping") == "pong"
        assert ref.alive


async def test_an_unhandled_tell_becomes_a_dead_letter() -> None:
    async with ActorSystem() as system, system.dead_letters() as letters:
        ref = await system.spawn(Strict, name="strict")
        await ref.tell({"unknown": True})
        assert await ref.ask("ping") == "pong"
        letter = letters.receive_nowait()
        assert (letter.message, letter.reason) == ({"unknown": True}, "unhandled")
        assert system.statistics().dead_letters == 1


async def test_an_unhandled_reply_met_by_the_asker_is_its_own_failure() -> None:
    # B does not handle what A asks it; A does not catch that: A fails (with
    # UnhandledMessage), B does not.
    with pytest.raises(UnhandledMessage):
        async with ActorSystem() as system:
            a = await system.spawn(Strict, name="a")
            b = await system.spawn(Strict, name="b")
            with pytest.raises(actors.ActorFailed):
                await a.ask(("ask", b, 7))
            assert b.alive and not a.alive
            await b.ask("ping")
