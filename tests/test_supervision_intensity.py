"""Restart intensity, escalation, failed restarts and auto shutdown, as OTP.

Times are virtual: ``sleep_until(t)`` places a crash at time ``t`` exactly, and
a supervisor handles it at that same instant (the clock only moves when every
task is idle).
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from supervision_kit import child, expect_events, ref_of, worker

import actors
from actors import ActorRef, ActorSystem, SupervisorGaveUp, Terminated
from actors.testing import TestProbe
from supervision import ChildSpec, Supervisor, terminate_child, which_children

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


async def crash_at(t: float, sup: ActorRef, name: str) -> None:
    await anyio.sleep_until(t)
    await (await ref_of(sup, name)).tell("crash")


# -- intensity ------------------------------------------------------------------


async def test_max_restarts_within_the_window_are_allowed(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await actor_system.spawn(
        Supervisor, [worker(probe, "a")], max_restarts=3, within=5.0, name="sup"
    )
    await probe.receive()
    for t in (1.0, 2.0, 3.0):
        await crash_at(t, sup, "a")
        await expect_events(probe, ("stop", "a"), ("start", "a"))
    assert (await child(sup, "a")).restarts == 3


async def test_one_more_restart_gives_up_and_stops_the_children_in_reverse() -> None:
    with pytest.raises(SupervisorGaveUp) as caught:
        async with ActorSystem() as system:
            probe = await TestProbe.start(system)
            sup = await system.spawn(
                Supervisor,
                [worker(probe, x) for x in "abc"],
                max_restarts=3,
                within=5.0,
                name="sup",
            )
            await probe.receive_n(3)
            for t in (1.0, 2.0, 3.0):
                await crash_at(t, sup, "b")
                await expect_events(probe, ("stop", "b"), ("start", "b"))
            await crash_at(4.0, sup, "b")
            await expect_events(probe, ("stop", "b"), ("stop", "c"), ("stop", "a"))
            await anyio.sleep_forever()  # the failure reaches the root and cancels this
    error = caught.value
    assert "supervisor /user/sup gave up: more than 3 restarts within 5 s" in str(error)
    assert "child 'b' failed with Boom: b crashed" in str(error)
    assert type(error.__cause__).__name__ == "Boom"


@pytest.mark.parametrize(
    ("times", "gives_up"),
    [
        ((0.0, 1.0, 2.0, 5.5), False),  # 0.0 left the window [0.5, 5.5]
        ((0.0, 1.0, 2.0, 5.0), True),  # the window's edge is inside, as in OTP
        ((0.0, 1.0, 2.0, 5.5, 5.6), True),  # 1.0, 2.0, 5.5, 5.6 within 5 s
        ((0.0, 10.0, 20.0, 30.0, 40.0, 50.0), False),
    ],
)
async def test_the_window_slides(times: tuple[float, ...], gives_up: bool) -> None:
    gave_up = False
    try:
        async with ActorSystem() as system:
            probe = await TestProbe.start(system)
            sup = await system.spawn(
                Supervisor, [worker(probe, "a")], max_restarts=3, within=5.0, name="sup"
            )
            await probe.receive()
            for t in times[:-1]:
                await crash_at(t, sup, "a")
                await expect_events(probe, ("stop", "a"), ("start", "a"))
            await crash_at(times[-1], sup, "a")
            await expect_events(probe, ("stop", "a"))
            if gives_up:
                await anyio.sleep_forever()
            await expect_events(probe, ("start", "a"))
    except SupervisorGaveUp:
        gave_up = True
    assert gave_up == gives_up


async def test_max_restarts_zero_gives_up_at_the_first_exit() -> None:
    with pytest.raises(SupervisorGaveUp):
        async with ActorSystem() as system:
            probe = await TestProbe.start(system)
            sup = await system.spawn(Supervisor, [worker(probe, "a")], max_restarts=0)
            await probe.receive()
            await (await ref_of(sup, "a")).tell("stop")  # permanent: even a normal stop
            await anyio.sleep_forever()


async def test_a_group_restart_counts_once(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await actor_system.spawn(
        Supervisor,
        [worker(probe, x) for x in "abcde"],
        strategy="one_for_all",
        max_restarts=1,
        name="sup",
    )
    await probe.receive_n(5)
    await crash_at(1.0, sup, "c")
    await probe.receive_n(10)  # c's stop, the other four stops, five starts
    assert [c.restarts for c in await which_children(sup)] == [1] * 5
    assert [c.state for c in await which_children(sup)] == ["running"] * 5


async def test_exits_that_are_not_restarted_do_not_count(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [worker(probe, f"t{i}", restart="transient") for i in range(5)]
    specs += [worker(probe, f"x{i}", restart="temporary") for i in range(5)]
    sup = await actor_system.spawn(Supervisor, specs, max_restarts=0, name="sup")
    await probe.receive_n(10)
    for i in range(5):
        await (await ref_of(sup, f"t{i}")).tell("stop")
        await (await ref_of(sup, f"x{i}")).tell("crash")
    await probe.receive_n(10)
    assert [c.state for c in await which_children(sup)] == ["terminated"] * 5


# -- escalation -----------------------------------------------------------------


async def test_giving_up_escalates_to_the_parent_supervisor(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    inner = ChildSpec(Supervisor, [worker(probe, "w")], max_restarts=1, name="inner")
    top = await actor_system.spawn(
        Supervisor, [inner, worker(probe, "peer")], max_restarts=5, name="top"
    )
    await probe.receive_n(2)
    inner_ref = await ref_of(top, "inner")
    await crash_at(1.0, inner_ref, "w")
    await expect_events(probe, ("stop", "w"), ("start", "w"))
    await crash_at(2.0, inner_ref, "w")
    # inner gives up; top restarts it (one_for_one), and with it a fresh w.
    await expect_events(probe, ("stop", "w"), ("start", "w"))
    await probe.expect_no_message(within=1)
    assert (await child(top, "inner")).restarts == 1
    assert (await child(top, "peer")).restarts == 0
    new_inner = await ref_of(top, "inner")
    assert new_inner != inner_ref
    assert (await child(new_inner, "w")).restarts == 0


async def test_giving_up_fails_a_plain_parent_and_reaches_the_root() -> None:
    class Plain(actors.Actor):
        def __init__(self, probe: ActorRef) -> None:
            self.probe = probe

        async def on_start(self) -> None:
            sup = await self.context.spawn(
                Supervisor, [worker_of(self.probe)], max_restarts=0, name="sup"
            )
            await (await ref_of(sup, "w")).tell("crash")

    def worker_of(probe: ActorRef) -> ChildSpec:
        from supervision_kit import Worker

        return ChildSpec(Worker, probe, "w", name="w")

    with pytest.raises(SupervisorGaveUp, match="/user/plain/sup gave up"):
        async with ActorSystem() as system:
            probe = await TestProbe.start(system)
            await system.spawn(Plain, probe.ref, name="plain")
            await anyio.sleep_forever()


# -- failed restarts (OTP's try_again_restart) ----------------------------------


async def test_a_failed_restart_is_retried_and_counted(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    failures: dict[str, int] = {}
    sup = await actor_system.spawn(
        Supervisor, [worker(probe, "a", fail_start=failures)], max_restarts=3, name="sup"
    )
    await probe.receive()
    failures["a"] = 2
    await crash_at(1.0, sup, "a")
    await expect_events(
        probe, ("stop", "a"), ("start-failed", "a"), ("start-failed", "a"), ("start", "a")
    )
    info = await child(sup, "a")
    assert (info.state, info.restarts) == ("running", 1)


async def test_a_child_that_never_restarts_exhausts_the_intensity() -> None:
    with pytest.raises(SupervisorGaveUp):
        async with ActorSystem() as system:
            probe = await TestProbe.start(system)
            failures: dict[str, int] = {}
            sup = await system.spawn(
                Supervisor,
                [worker(probe, "a", fail_start=failures), worker(probe, "b")],
                max_restarts=3,
                name="sup",
            )
            await probe.receive_n(2)
            failures["a"] = 1000
            await crash_at(1.0, sup, "a")
            # 1 restart + 2 retries are allowed; the 3rd retry exceeds 3.
            await expect_events(
                probe,
                ("stop", "a"),
                ("start-failed", "a"),
                ("start-failed", "a"),
                ("start-failed", "a"),
                ("stop", "b"),
            )
            await anyio.sleep_forever()


async def test_a_retry_restarts_the_whole_group_again(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    failures: dict[str, int] = {}
    sup = await actor_system.spawn(
        Supervisor,
        [worker(probe, x, fail_start=failures) for x in "abc"],
        strategy="one_for_all",
        max_restarts=5,
        name="sup",
    )
    await probe.receive_n(3)
    failures["b"] = 1
    await crash_at(1.0, sup, "a")
    await expect_events(
        probe,
        ("stop", "a"),
        ("stop", "c"),
        ("stop", "b"),
        ("start", "a"),
        ("start-failed", "b"),
        # the retry: terminate what runs (a), start all again
        ("stop", "a"),
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
    )
    assert [c.state for c in await which_children(sup)] == ["running"] * 3


# -- auto shutdown --------------------------------------------------------------


async def spawn_watched(
    system: ActorSystem, probe: TestProbe, specs: list[ChildSpec], **options: Any
) -> ActorRef:
    sup = await system.spawn(Supervisor, specs, name="sup", shutdown=math.inf, **options)
    probe.watch(sup)
    return sup


async def test_any_significant_stops_when_a_significant_child_ends(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [
        worker(probe, "a"),
        worker(probe, "s", restart="transient", significant=True),
        worker(probe, "c"),
    ]
    sup = await spawn_watched(actor_system, probe, specs, auto_shutdown="any_significant")
    await probe.receive_n(3)
    await (await ref_of(sup, "s")).tell("stop")
    await expect_events(probe, ("stop", "s"), ("stop", "c"), ("stop", "a"), Terminated(sup, None))


async def test_a_significant_transient_child_that_fails_is_restarted(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [worker(probe, "s", restart="transient", significant=True)]
    sup = await spawn_watched(actor_system, probe, specs, auto_shutdown="any_significant")
    await probe.receive()
    await (await ref_of(sup, "s")).tell("crash")
    await expect_events(probe, ("stop", "s"), ("start", "s"))
    await probe.expect_no_message(within=1)


async def test_a_significant_temporary_child_that_fails_stops_the_supervisor(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [worker(probe, "s", restart="temporary", significant=True)]
    sup = await spawn_watched(actor_system, probe, specs, auto_shutdown="any_significant")
    await probe.receive()
    await (await ref_of(sup, "s")).tell("crash")
    await expect_events(probe, ("stop", "s"), Terminated(sup, None))


async def test_all_significant_waits_for_the_last_one(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [
        worker(probe, "s1", restart="transient", significant=True),
        worker(probe, "s2", restart="temporary", significant=True),
        worker(probe, "w"),
    ]
    sup = await spawn_watched(actor_system, probe, specs, auto_shutdown="all_significant")
    await probe.receive_n(3)
    await (await ref_of(sup, "s1")).tell("stop")
    await expect_events(probe, ("stop", "s1"))
    await probe.expect_no_message(within=1)
    await (await ref_of(sup, "s2")).tell("stop")
    await expect_events(probe, ("stop", "s2"), ("stop", "w"), Terminated(sup, None))


async def test_children_the_supervisor_stops_never_trigger_auto_shutdown(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [
        worker(probe, "a"),
        worker(probe, "s", restart="temporary", significant=True),
        worker(probe, "t", restart="transient", significant=True),
    ]
    sup = await spawn_watched(
        actor_system, probe, specs, auto_shutdown="any_significant", strategy="one_for_all"
    )
    await probe.receive_n(3)
    await terminate_child(sup, "t")
    await expect_events(probe, ("stop", "t"))
    await (await ref_of(sup, "a")).tell("crash")  # the group restart stops s
    await expect_events(probe, ("stop", "a"), ("stop", "s"), ("start", "a"), ("start", "t"))
    await probe.expect_no_message(within=1)
    assert [c.name for c in await which_children(sup)] == ["a", "t"]


async def test_an_auto_shutdown_is_a_normal_exit_for_the_parent(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    inner = ChildSpec(
        Supervisor,
        [worker(probe, "s", restart="transient", significant=True)],
        auto_shutdown="any_significant",
        restart="transient",
        name="inner",
    )
    top = await actor_system.spawn(Supervisor, [inner], name="top", max_restarts=0)
    await probe.receive()
    await (await ref_of(await ref_of(top, "inner"), "s")).tell("stop")
    await expect_events(probe, ("stop", "s"))
    await probe.expect_no_message(within=1)
    assert (await child(top, "inner")).state == "terminated"  # transient: not restarted


async def test_significant_children_need_auto_shutdown(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    with pytest.raises(ValueError, match="auto_shutdown is 'never'"):
        await actor_system.spawn(
            Supervisor, [worker(probe, "s", restart="transient", significant=True)]
        )
    with pytest.raises(ValueError, match="permanent child cannot be significant"):
        worker(probe, "s", significant=True)
