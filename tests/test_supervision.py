"""Supervisor: OTP's rules one by one (start and stop order, shutdown, restart
types, strategies, names, restart counts), on both backends and virtual time.

Restart intensity, escalation and auto shutdown are in
``test_supervision_intensity.py``; runtime control in
``test_supervision_control.py``.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import anyio
import pytest
from supervision_kit import Boom, Worker, child, expect_events, ref_of, worker

import actors
from actors import ActorFailed, ActorSystem, DeadLetter
from actors.testing import TestProbe
from supervision import ChildSpec, ChildStartFailed, Supervisor, which_children

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


async def supervise(system: ActorSystem, specs: list[ChildSpec], **options: Any) -> actors.ActorRef:
    return await system.spawn(Supervisor, specs, name="sup", shutdown=math.inf, **options)


# -- starting -------------------------------------------------------------------


async def test_children_start_in_list_order_before_spawn_returns(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, x) for x in "abc"])
    await expect_events(probe, ("start", "a"), ("start", "b"), ("start", "c"))
    assert [c.name for c in await which_children(sup)] == ["a", "b", "c"]
    assert all(c.state == "running" for c in await which_children(sup))


async def test_a_child_failing_to_start_stops_the_started_ones_in_reverse(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [worker(probe, x, fail_start={"c": 1}) for x in "abcd"]
    with pytest.raises(ActorFailed) as caught:
        await supervise(actor_system, specs)
    await expect_events(
        probe,
        ("start", "a"),
        ("start", "b"),
        ("start-failed", "c"),
        ("stop", "b"),
        ("stop", "a"),
    )
    await probe.expect_no_message(within=1)  # d never starts
    error = caught.value.__cause__
    assert isinstance(error, ChildStartFailed)
    assert (error.supervisor, error.child) == ("/user/sup", "c")
    assert "could not start child 'c' (child 3 of 4)" in str(error)
    assert "Boom: c cannot start" in str(error)
    assert actor_system.tree().find("/user/sup") is None


async def test_duplicate_names_are_rejected(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    with pytest.raises(ValueError, match="both named 'a'"):
        await supervise(actor_system, [worker(probe, "a"), worker(probe, "a")])


async def test_default_names_come_from_the_factory(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [ChildSpec(Worker, probe.ref, "w")])
    assert [c.name for c in await which_children(sup)] == ["worker"]


# -- stopping -------------------------------------------------------------------


async def test_children_stop_in_reverse_order_even_after_restarts(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, x) for x in "abc"])
    await probe.receive_n(3)
    await (await ref_of(sup, "a")).tell("crash")  # a restarted: spawned last
    await expect_events(probe, ("stop", "a"), ("start", "a"))
    await sup.stop()
    await expect_events(probe, ("stop", "c"), ("stop", "b"), ("stop", "a"))


async def test_shutdown_timeout_lets_on_stop_finish_within_it(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, "a", stop_for=3, shutdown=5)])
    await probe.receive()
    started = anyio.current_time()
    await sup.stop()
    assert anyio.current_time() - started == pytest.approx(3)
    await expect_events(probe, ("stop", "a"), ("stopped", "a"))


async def test_shutdown_timeout_cancels_a_slow_on_stop(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, "a", stop_for=60, shutdown=2)])
    await probe.receive()
    started = anyio.current_time()
    await sup.stop()
    assert anyio.current_time() - started == pytest.approx(2)
    await expect_events(probe, ("stop", "a"))
    await probe.expect_no_message(within=100)


async def test_brutal_kill_skips_on_stop(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [worker(probe, "a"), worker(probe, "b", shutdown="brutal_kill")]
    sup = await supervise(actor_system, specs)
    await probe.receive_n(2)
    await sup.stop()
    await expect_events(probe, ("stop", "a"))  # b was cancelled, its on_stop never ran


async def test_shutdown_infinity_waits_as_long_as_it_takes(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, "a", stop_for=3600, shutdown="infinity")])
    await probe.receive()
    await sup.stop()
    await expect_events(probe, ("stop", "a"), ("stopped", "a"))


async def test_default_shutdown_is_five_seconds_for_workers_infinity_for_supervisors(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    inner = ChildSpec(Supervisor, [worker(probe, "w", stop_for=60)], name="inner")
    sup = await supervise(actor_system, [inner])
    await probe.receive()
    started = anyio.current_time()
    await sup.stop()
    # The inner supervisor waits for its worker (infinity), the worker is
    # cancelled after the default 5 s.
    assert anyio.current_time() - started == pytest.approx(5)
    await expect_events(probe, ("stop", "w"))


# -- restart types --------------------------------------------------------------


@pytest.mark.parametrize("restart", ["permanent", "transient", "temporary"])
async def test_restart_types_after_a_failure(actor_system: ActorSystem, restart: str) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, "a", restart=restart)])
    await probe.receive()
    await (await ref_of(sup, "a")).tell("crash")
    if restart == "temporary":
        await expect_events(probe, ("stop", "a"))
        await probe.expect_no_message(within=1)
        assert await which_children(sup) == []  # its spec is gone
    else:
        await expect_events(probe, ("stop", "a"), ("start", "a"))
        assert (await child(sup, "a")).restarts == 1


@pytest.mark.parametrize("restart", ["permanent", "transient", "temporary"])
async def test_restart_types_after_a_normal_stop(actor_system: ActorSystem, restart: str) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, "a", restart=restart)])
    await probe.receive()
    await (await ref_of(sup, "a")).tell("stop")
    await expect_events(probe, ("stop", "a"))
    if restart == "permanent":
        await expect_events(probe, ("start", "a"))
        assert (await child(sup, "a")).state == "running"
        return
    await probe.expect_no_message(within=1)
    infos = await which_children(sup)
    if restart == "transient":
        assert [(c.name, c.state, c.ref) for c in infos] == [("a", "terminated", None)]
    else:
        assert infos == []


async def test_a_stop_from_outside_counts_as_a_normal_exit(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(
        actor_system, [worker(probe, "a"), worker(probe, "t", restart="transient")]
    )
    await probe.receive_n(2)
    await (await ref_of(sup, "a")).stop()
    await (await ref_of(sup, "t")).stop()
    await expect_events(probe, ("stop", "a"), ("start", "a"), ("stop", "t"))
    assert (await child(sup, "t")).state == "terminated"


# -- strategies -----------------------------------------------------------------


async def test_one_for_one_restarts_only_the_failed_child(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, x) for x in "abc"])
    await probe.receive_n(3)
    before = {c.name: c.ref for c in await which_children(sup)}
    await before["b"].tell("crash")  # type: ignore[union-attr]
    await expect_events(probe, ("stop", "b"), ("start", "b"))
    await probe.expect_no_message(within=1)
    after = {c.name: c.ref for c in await which_children(sup)}
    assert after["a"] == before["a"] and after["c"] == before["c"]
    assert after["b"] != before["b"]


async def test_one_for_all_stops_the_others_in_reverse_then_starts_all(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, x) for x in "abcd"], strategy="one_for_all")
    await probe.receive_n(4)
    await (await ref_of(sup, "b")).tell("crash")
    await expect_events(
        probe,
        ("stop", "b"),  # its own on_stop as it fails
        ("stop", "d"),
        ("stop", "c"),
        ("stop", "a"),
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
        ("start", "d"),
    )
    assert [c.restarts for c in await which_children(sup)] == [1, 1, 1, 1]


async def test_rest_for_one_restarts_the_failed_child_and_those_after_it(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, x) for x in "abcd"], strategy="rest_for_one")
    await probe.receive_n(4)
    await (await ref_of(sup, "b")).tell("crash")
    await expect_events(
        probe,
        ("stop", "b"),
        ("stop", "d"),
        ("stop", "c"),
        ("start", "b"),
        ("start", "c"),
        ("start", "d"),
    )
    await probe.expect_no_message(within=1)
    assert [c.restarts for c in await which_children(sup)] == [0, 1, 1, 1]


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
async def test_group_restarts_drop_temporary_siblings(
    actor_system: ActorSystem, strategy: str
) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [worker(probe, "a"), worker(probe, "t", restart="temporary"), worker(probe, "c")]
    sup = await supervise(actor_system, specs, strategy=strategy)
    await probe.receive_n(3)
    await (await ref_of(sup, "a")).tell("crash")
    await expect_events(
        probe, ("stop", "a"), ("stop", "c"), ("stop", "t"), ("start", "a"), ("start", "c")
    )
    assert [c.name for c in await which_children(sup)] == ["a", "c"]


async def test_group_restarts_start_terminated_siblings_too(actor_system: ActorSystem) -> None:
    # OTP's start_children starts every child of the group, also those that
    # were terminated by hand or ended normally.
    probe = await TestProbe.start(actor_system)
    specs = [worker(probe, "a"), worker(probe, "t", restart="transient")]
    sup = await supervise(actor_system, specs, strategy="one_for_all")
    await probe.receive_n(2)
    await (await ref_of(sup, "t")).tell("stop")
    await expect_events(probe, ("stop", "t"))
    assert (await child(sup, "t")).state == "terminated"
    await (await ref_of(sup, "a")).tell("crash")
    await expect_events(probe, ("stop", "a"), ("start", "a"), ("start", "t"))
    assert [c.state for c in await which_children(sup)] == ["running", "running"]


# -- names, counts, messages ----------------------------------------------------


async def test_a_restarted_child_keeps_its_name_and_path(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, "a")])
    await probe.receive()
    old = await ref_of(sup, "a")
    await old.tell("crash")
    await expect_events(probe, ("stop", "a"), ("start", "a"))
    new = await ref_of(sup, "a")
    assert new != old
    assert (new.name, new.path) == ("a", "/user/sup/a")
    assert await new.ask("ping") == ("pong", "a")


async def test_restart_counts_show_in_the_system_tree(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, "a"), worker(probe, "b")], max_restarts=10)
    await probe.receive_n(2)
    for _ in range(3):
        await (await ref_of(sup, "a")).tell("crash")
        await expect_events(probe, ("stop", "a"), ("start", "a"))
    tree = actor_system.tree()
    assert tree.find("/user/sup/a").restarts == 3  # type: ignore[union-attr]
    assert tree.find("/user/sup/b").restarts == 0  # type: ignore[union-attr]
    assert "restarts 3" in str(tree)
    assert "strategy one_for_one" in str(tree)


async def test_messages_to_a_dead_incarnation_become_dead_letters(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await supervise(actor_system, [worker(probe, "a")])
    await probe.receive()
    old = await ref_of(sup, "a")
    await old.tell("crash")
    await expect_events(probe, ("stop", "a"), ("start", "a"))
    async with actor_system.dead_letters() as letters:
        await old.tell("ping")
        letter = await letters.receive()
    assert isinstance(letter, DeadLetter)
    assert (letter.message, letter.recipient) == ("ping", old)


async def test_unexpected_messages_to_a_supervisor_become_dead_letters(
    actor_system: ActorSystem,
) -> None:
    sup = await supervise(actor_system, [])
    async with actor_system.dead_letters() as letters:
        await sup.tell("hello?")
        letter = await letters.receive()
    assert (letter.message, letter.recipient) == ("hello?", sup)


async def test_supervisors_nest(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    leaf = ChildSpec(Supervisor, [worker(probe, "w")], name="leaf")
    mid = ChildSpec(Supervisor, [leaf], name="mid")
    sup = await supervise(actor_system, [mid])
    await probe.receive()
    paths = [info.path for info in actor_system.tree().walk()]
    assert "/user/sup/mid/leaf/w" in paths
    mid_ref = await ref_of(sup, "mid")
    leaf_ref = await ref_of(mid_ref, "leaf")
    await (await ref_of(leaf_ref, "w")).tell("crash")
    await expect_events(probe, ("stop", "w"), ("start", "w"))
    assert (await child(leaf_ref, "w")).restarts == 1


class Stray(Worker):
    async def on_start(self) -> None:
        self.probe.tell_nowait(self.ref)


class WithStray(Supervisor):
    """A supervisor subclass that also spawns a child of its own, unsupervised."""

    def __init__(self, probe: actors.ActorRef) -> None:
        super().__init__([])
        self.probe = probe

    async def on_start(self) -> None:
        await super().on_start()
        await self.context.spawn(Stray, self.probe, "stray", name="stray")


async def test_a_failure_of_an_unsupervised_child_still_fails_the_supervisor() -> None:
    with pytest.raises(Boom, match="stray crashed"):
        async with ActorSystem() as system:
            probe = await TestProbe.start(system)
            await system.spawn(WithStray, probe.ref, name="odd")
            stray = await probe.receive()
            await stray.tell("crash")
            await anyio.sleep_forever()  # the failure reaches the root and cancels this


@pytest.mark.parametrize(
    ("args", "options", "match"),
    [
        ((), {"strategy": "simple_one_for_one"}, "use DynamicSupervisor"),
        ((), {"strategy": "one_for_some"}, "strategy must be one of one_for_one"),
        ((), {"auto_shutdown": "sometimes"}, "auto_shutdown must be one of never"),
        ((), {"max_restarts": -1}, "max_restarts must be >= 0"),
        ((), {"within": 0}, "within must be > 0"),
        ((), {"backoff": 3}, "backoff must be a supervision.Backoff"),
        (([Worker],), {}, "child 0 is <class"),
        ((ChildSpec(Worker),), {}, "must be a list of ChildSpec"),
    ],
)
async def test_bad_supervisor_arguments_are_refused_in_the_caller(
    actor_system: ActorSystem,
    args: tuple[Any, ...],
    options: dict[str, Any],
    match: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Raised by spawn itself (Actor.check_args), as ChildSpec does: nothing
    # starts, nothing is logged as a crash.
    with pytest.raises((TypeError, ValueError), match=re.escape(match)):
        await actor_system.spawn(Supervisor, *args, **options)
    with pytest.raises((TypeError, ValueError), match=re.escape(match)):
        actor_system.spawn_nowait(Supervisor, *args, **options)
    assert actor_system.tree().actors == ()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
