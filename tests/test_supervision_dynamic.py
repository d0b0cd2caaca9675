"""DynamicSupervisor: children on demand, max_children, removal, restarts."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from supervision_kit import Worker, child, expect_events, ref_of, worker

import actors
from actors import ActorSystem, SupervisorGaveUp
from actors.testing import TestProbe
from supervision import (
    ChildCounts,
    ChildSpec,
    DynamicSupervisor,
    TooManyChildren,
    count_children,
    start_child,
    terminate_child,
    which_children,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


async def test_start_child_returns_the_ref_and_names_children(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await actor_system.spawn(DynamicSupervisor, name="dyn")
    assert await which_children(sup) == []
    first = await start_child(sup, ChildSpec(Worker, probe.ref, "x"))
    second = await start_child(sup, ChildSpec(Worker, probe.ref, "y"))
    named = await start_child(sup, worker(probe, "z"))
    await expect_events(probe, ("start", "x"), ("start", "y"), ("start", "z"))
    assert [first.path, second.path, named.path] == [
        "/user/dyn/worker-1",
        "/user/dyn/worker-2",
        "/user/dyn/z",
    ]
    assert await first.ask("ping") == ("pong", "x")


async def test_children_restart_under_their_name(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await actor_system.spawn(DynamicSupervisor, name="dyn")
    ref = await start_child(sup, ChildSpec(Worker, probe.ref, "x"))
    await probe.receive()
    await ref.tell("crash")
    await expect_events(probe, ("stop", "x"), ("start", "x"))
    info = await child(sup, "worker-1")
    assert (info.state, info.restarts) == ("running", 1)
    assert actor_system.tree().find("/user/dyn/worker-1").restarts == 1  # type: ignore[union-attr]


async def test_max_children_is_enforced(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await actor_system.spawn(DynamicSupervisor, max_children=2, name="dyn")
    await start_child(sup, worker(probe, "a"))
    await start_child(sup, worker(probe, "b"))
    with pytest.raises(TooManyChildren, match="already has max_children=2 children"):
        await start_child(sup, worker(probe, "c"))
    await probe.receive_n(2)
    await probe.expect_no_message(within=1)  # c never started
    await terminate_child(sup, "a")
    await start_child(sup, worker(probe, "c"))  # room again
    assert [c.name for c in await which_children(sup)] == ["b", "c"]


async def test_ended_or_terminated_children_are_removed(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await actor_system.spawn(DynamicSupervisor, name="dyn")
    await start_child(sup, worker(probe, "p"))
    await start_child(sup, worker(probe, "t", restart="transient"))
    await start_child(sup, worker(probe, "x", restart="temporary"))
    await probe.receive_n(3)
    await (await ref_of(sup, "t")).tell("stop")
    await (await ref_of(sup, "x")).tell("crash")
    await expect_events(probe, ("stop", "t"), ("stop", "x"))
    assert [c.name for c in await which_children(sup)] == ["p"]
    await terminate_child(sup, await ref_of(sup, "p"))
    assert await count_children(sup) == ChildCounts(0, 0, 0, 0)


async def test_children_stop_concurrently(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await actor_system.spawn(DynamicSupervisor, name="dyn", shutdown=math.inf)
    for label in "abc":
        await start_child(sup, worker(probe, label, stop_for=4, shutdown=10))
    await probe.receive_n(3)
    began = anyio.current_time()
    await sup.stop()
    assert anyio.current_time() - began == pytest.approx(4)  # not 12
    events = await probe.receive_n(6)
    assert sorted(events) == sorted([(e, x) for e in ("stop", "stopped") for x in "abc"])


async def test_the_intensity_applies() -> None:
    with pytest.raises(SupervisorGaveUp, match="/user/dyn gave up: more than 1 restarts"):
        async with ActorSystem() as system:
            probe = await TestProbe.start(system)
            sup = await system.spawn(DynamicSupervisor, max_restarts=1, name="dyn")
            await start_child(sup, worker(probe, "a"))
            await start_child(sup, worker(probe, "b"))
            await probe.receive_n(2)
            await (await ref_of(sup, "a")).tell("crash")
            await expect_events(probe, ("stop", "a"), ("start", "a"))
            await (await ref_of(sup, "b")).tell("crash")
            await anyio.sleep_forever()


async def test_bad_arguments(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    with pytest.raises(ValueError, match="max_children must be >= 0"):
        await actor_system.spawn(DynamicSupervisor, max_children=-1)
    sup = await actor_system.spawn(DynamicSupervisor)
    with pytest.raises(ValueError, match="DynamicSupervisor has no auto_shutdown"):
        await start_child(sup, worker(probe, "s", restart="temporary", significant=True))
