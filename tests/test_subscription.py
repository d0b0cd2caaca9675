"""Pull subscriptions (a channel of published messages drained at one's own
pace) and the dead-letter topic."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from actors import DEAD_LETTERS_TOPIC, Actor, ActorsError, ActorSystem, WouldBlock

pytestmark = pytest.mark.anyio


class Recorder(Actor):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    async def receive(self, message: Any) -> Any:
        if message == "log?":
            return list(self.log)
        self.log.append(message)
        return None


# -- pull subscriptions -------------------------------------------------------


async def test_a_pull_subscription_is_drained_at_its_own_pace(
    actor_system: ActorSystem,
) -> None:
    async with actor_system.subscription("orders.>", capacity=10) as orders:
        assert orders.pattern == "orders.>" and orders.capacity == 10
        for i in range(5):
            assert await actor_system.publish(f"orders.{i}", i) == 1
        assert len(orders) == 5
        got = []
        async for message in orders:
            got.append(message)
            if len(got) == 5:
                break
        with pytest.raises(WouldBlock):
            orders.receive_nowait()
    assert got == [0, 1, 2, 3, 4]
    assert orders.closed
    assert [m async for m in orders] == []
    assert await actor_system.publish("orders.x", "late") == 0


async def test_pull_and_actor_members_share_a_group(actor_system: ActorSystem) -> None:
    ref = await actor_system.spawn(Recorder, [], name="actor")
    actor_system.subscribe("jobs", ref, group="w")
    async with actor_system.subscription("jobs", group="w") as pull:
        assert [await actor_system.publish("jobs", i) for i in range(6)] == [1] * 6
        assert [pull.receive_nowait() for _ in range(3)] == [1, 3, 5]
        members = actor_system.registry.topics()[0].groups[0].members
        assert members == ("/user/actor", pull.name)
    assert await ref.ask("log?") == [0, 2, 4]
    assert actor_system.registry.topics()[0].groups[0].members == ("/user/actor",)


async def test_a_full_pull_subscription_holds_the_publisher(actor_system: ActorSystem) -> None:
    published: list[int] = []
    async with actor_system.subscription("t", capacity=1) as sub:

        async def publisher() -> None:
            for i in range(3):
                published.append(await actor_system.publish("t", i))

        async with anyio.create_task_group() as tg:
            tg.start_soon(publisher)
            await anyio.wait_all_tasks_blocked()
            assert published == [1]
            assert [await sub.receive() for _ in range(3)] == [0, 1, 2]
    assert published == [1, 1, 1]


async def test_unread_messages_become_dead_letters_on_exit(actor_system: ActorSystem) -> None:
    async with actor_system.dead_letters() as letters:
        async with actor_system.subscription("t") as sub:
            await actor_system.publish("t", "unread")
        letter = letters.receive_nowait()
    assert (letter.message, letter.reason) == ("unread", "subscription closed")
    assert sub.closed
    with pytest.raises(ActorsError, match="already used"):
        async with sub:
            pass


async def test_a_subscription_needs_a_running_system() -> None:
    system = ActorSystem()
    with pytest.raises(ActorsError, match="not running"):
        async with system.subscription("t"):
            pass
    with pytest.raises(ValueError, match="must be the last token"):
        system.subscription("a.>.b")
    with pytest.raises(ValueError, match="Channel capacity must be >= 0"):
        system.subscription("a", capacity=-1)


# -- dead letters -------------------------------------------------------------


async def test_a_message_nobody_takes_is_a_dead_letter(actor_system: ActorSystem) -> None:
    async with actor_system.dead_letters() as letters:
        assert await actor_system.publish("nobody.home", {"id": 1}) == 0
        letter = letters.receive_nowait()
    assert letter.message == {"id": 1}
    assert letter.reason == "no subscribers"
    assert letter.topic == "nobody.home"
    assert letter.recipient is None


async def test_dead_letters_are_published_to_their_topic(actor_system: ActorSystem) -> None:
    gone = await actor_system.spawn(Actor, name="gone")
    await gone.stop()
    async with actor_system.subscription(DEAD_LETTERS_TOPIC) as letters:
        await gone.tell("hello?")
        await actor_system.publish("void", "anyone?")
        first, second = letters.receive_nowait(), letters.receive_nowait()
    assert (first.message, first.recipient, first.reason) == ("hello?", gone, "stopped")
    assert (second.message, second.reason, second.topic) == ("anyone?", "no subscribers", "void")
    assert actor_system.statistics().dead_letters_unobserved == 0


async def test_a_full_dead_letter_subscriber_does_not_block(actor_system: ActorSystem) -> None:
    async with actor_system.subscription(DEAD_LETTERS_TOPIC, capacity=1) as letters:
        for i in range(3):
            assert await actor_system.publish("void", i) == 0
        assert len(letters) == 1
    assert actor_system.statistics().dead_letters >= 3
