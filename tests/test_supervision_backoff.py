"""Backoff between restarts, and what the outside world sees meanwhile: the
registry name, topic subscriptions and messages of a supervised child."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from supervision_kit import Worker, child, expect_events, ref_of, worker

import actors
from actors import ActorRef, ActorSystem
from actors.testing import TestProbe
from supervision import Backoff, ChildSpec, Supervisor, terminate_child

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


async def spawn_sup(system: ActorSystem, specs: list[ChildSpec], **options: Any) -> ActorRef:
    options.setdefault("max_restarts", 100)
    return await system.spawn(Supervisor, specs, name="sup", shutdown=math.inf, **options)


async def crash_and_time_restart(probe: TestProbe, sup: ActorRef, name: str) -> float:
    """Crash ``name`` now; return how long its restart took."""
    crashed = anyio.current_time()
    await (await ref_of(sup, name)).tell("crash")
    stop = await probe.receive()
    assert stop[:2] == ("stop", name)
    start = await probe.receive(timeout=60)
    assert start[:2] == ("start", name)
    return float(start[2]) - crashed


async def test_delays_grow_exponentially_up_to_max(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    backoff = Backoff(min=1.0, max=8.0, jitter=0)
    sup = await spawn_sup(actor_system, [worker(probe, "a", timed=True)], backoff=backoff)
    await probe.receive()
    delays = [await crash_and_time_restart(probe, sup, "a") for _ in range(6)]
    assert delays == pytest.approx([1, 2, 4, 8, 8, 8])


async def test_jitter_stretches_each_delay(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    backoff = Backoff(min=1.0, max=4.0, jitter=0.5)
    sup = await spawn_sup(actor_system, [worker(probe, "a", timed=True)], backoff=backoff)
    await probe.receive()
    for base in (1, 2, 4, 4):
        delay = await crash_and_time_restart(probe, sup, "a")
        assert base <= delay < base * 1.5


async def test_the_delay_resets_after_a_stable_run(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    backoff = Backoff(min=1.0, max=60.0, jitter=0, reset_after=10.0)
    sup = await spawn_sup(actor_system, [worker(probe, "a", timed=True)], backoff=backoff)
    await probe.receive()
    assert [await crash_and_time_restart(probe, sup, "a") for _ in range(3)] == [1, 2, 4]
    await anyio.sleep(9.9)  # not yet stable
    assert await crash_and_time_restart(probe, sup, "a") == pytest.approx(8)
    await anyio.sleep(10.0)  # stable now
    assert await crash_and_time_restart(probe, sup, "a") == pytest.approx(1)


async def test_a_child_backoff_overrides_the_supervisor_backoff(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [
        worker(probe, "a", timed=True),
        worker(probe, "b", timed=True, backoff=Backoff(min=5, max=5, jitter=0)),
    ]
    sup = await spawn_sup(actor_system, specs, backoff=Backoff(min=1, max=1, jitter=0))
    await probe.receive_n(2)
    assert await crash_and_time_restart(probe, sup, "a") == pytest.approx(1)
    assert await crash_and_time_restart(probe, sup, "b") == pytest.approx(5)


async def test_while_waiting_the_child_is_restarting_and_messages_are_dead_letters(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    backoff = Backoff(min=10, max=10, jitter=0)
    sup = await spawn_sup(actor_system, [worker(probe, "a")], backoff=backoff)
    await probe.receive()
    old = await ref_of(sup, "a")
    await old.tell("crash")
    await expect_events(probe, ("stop", "a"))
    info = await child(sup, "a")
    assert (info.state, info.ref, info.restarts) == ("restarting", None, 0)
    async with actor_system.dead_letters() as letters:
        await old.tell("ping")
        assert (await letters.receive()).message == "ping"
    await expect_events(probe, ("start", "a"), timeout=60)
    assert (await child(sup, "a")).state == "running"


async def test_terminate_child_cancels_a_pending_restart(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await spawn_sup(
        actor_system, [worker(probe, "a")], backoff=Backoff(min=10, max=10, jitter=0)
    )
    await probe.receive()
    await (await ref_of(sup, "a")).tell("crash")
    await expect_events(probe, ("stop", "a"))
    await terminate_child(sup, "a")
    await probe.expect_no_message(within=60)
    assert (await child(sup, "a")).state == "terminated"


async def test_group_restarts_wait_for_the_failed_childs_backoff(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [worker(probe, x, timed=True) for x in "abc"]
    sup = await spawn_sup(
        actor_system, specs, strategy="rest_for_one", backoff=Backoff(min=3, max=3, jitter=0)
    )
    await probe.receive_n(3)
    crashed = anyio.current_time()
    await (await ref_of(sup, "b")).tell("crash")
    events = await probe.receive_n(4, timeout=60)
    assert [e[:2] for e in events] == [("stop", "b"), ("stop", "c"), ("start", "b"), ("start", "c")]
    assert events[1][2] == pytest.approx(crashed)  # c is stopped at once ...
    assert events[2][2] == pytest.approx(crashed + 3)  # ... and restarted after the delay
    await probe.expect_no_message(within=10)  # a is left alone


# -- the registry follows restarts ----------------------------------------------


class Named(Worker):
    async def receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "news":
            self.probe.tell_nowait(("got", self.label, message[1]))
            return None
        return await super().receive(message)


async def test_the_registered_name_follows_restarts(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    spec = ChildSpec(Named, probe.ref, "db", name="db", register_as="db")
    sup = await spawn_sup(actor_system, [spec])
    await probe.receive()
    first = actor_system.registry.whereis("db")
    assert first == await ref_of(sup, "db")
    await first.tell("crash")
    await expect_events(probe, ("stop", "db"), ("start", "db"))
    second = actor_system.registry.whereis("db")
    assert second is not None and second != first
    assert second == await ref_of(sup, "db")
    assert await second.ask("ping") == ("pong", "db")


async def test_the_name_is_unregistered_during_a_backoff(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    spec = ChildSpec(Named, probe.ref, "db", name="db", register_as="db")
    sup = await spawn_sup(actor_system, [spec], backoff=Backoff(min=5, max=5, jitter=0))
    await probe.receive()
    await (await ref_of(sup, "db")).tell("crash")
    await expect_events(probe, ("stop", "db"))
    assert actor_system.registry.whereis("db") is None
    await expect_events(probe, ("start", "db"), timeout=60)
    assert actor_system.registry.whereis("db") == await ref_of(sup, "db")


async def test_subscriptions_are_restored_on_restart(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    spec = ChildSpec(
        Named, probe.ref, "feed", name="feed", subscriptions=["news.*", ("alerts.>", "ops")]
    )
    sup = await spawn_sup(actor_system, [spec])
    await probe.receive()
    assert await actor_system.publish("news.sport", ("news", 1)) == 1
    await expect_events(probe, ("got", "feed", 1))
    await (await ref_of(sup, "feed")).tell("crash")
    await expect_events(probe, ("stop", "feed"), ("start", "feed"))
    assert await actor_system.publish("news.sport", ("news", 2)) == 1
    assert await actor_system.publish("alerts.disk.full", ("news", 3)) == 1
    await expect_events(probe, ("got", "feed", 2), ("got", "feed", 3))
