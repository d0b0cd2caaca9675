"""Runtime control through the supervisor's ref: start, terminate, restart,
delete, which and count children, with OTP's answers as exceptions."""

from __future__ import annotations

import math
from typing import Any

import pytest
from supervision_kit import Worker, child, expect_events, ref_of, worker

import actors
import supervision._base
from actors import ActorFailed, ActorRef, ActorStopped, ActorSystem, NameTaken
from actors.testing import TestProbe
from supervision import (
    ChildCounts,
    ChildInfo,
    ChildRunning,
    ChildSpec,
    ChildStartFailed,
    NoSuchChild,
    Supervisor,
    count_children,
    delete_child,
    restart_child,
    start_child,
    terminate_child,
    which_children,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


async def started(system: ActorSystem, probe: TestProbe, *labels: str, **options: Any) -> ActorRef:
    sup = await system.spawn(
        Supervisor, [worker(probe, x) for x in labels], name="sup", shutdown=math.inf, **options
    )
    await probe.receive_n(len(labels))
    return sup


async def test_start_child_appends_and_returns_the_ref(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await started(actor_system, probe, "a")
    ref = await start_child(sup, worker(probe, "b"))
    await expect_events(probe, ("start", "b"))
    assert ref.path == "/user/sup/b"
    assert await ref.ask("ping") == ("pong", "b")
    assert [c.name for c in await which_children(sup)] == ["a", "b"]
    await sup.stop()
    await expect_events(probe, ("stop", "b"), ("stop", "a"))  # added last, stops first


async def test_start_child_rejects_a_name_in_use(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await started(actor_system, probe, "a", "t")
    with pytest.raises(NameTaken, match="already has a child named 'a' \\(running\\)"):
        await start_child(sup, worker(probe, "a"))
    await terminate_child(sup, "t")
    with pytest.raises(NameTaken, match="restart_child it, or delete_child it first"):
        await start_child(sup, worker(probe, "t"))


async def test_a_child_that_fails_to_start_is_not_kept(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await started(actor_system, probe, "a")
    with pytest.raises(ChildStartFailed) as caught:
        await start_child(sup, worker(probe, "b", fail_start={"b": 1}))
    assert caught.value.child == "b"
    assert "could not start its child 'b': Boom: b cannot start" in str(caught.value)
    assert [c.name for c in await which_children(sup)] == ["a"]


async def test_start_child_checks_significant_against_auto_shutdown(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await started(actor_system, probe)
    with pytest.raises(ValueError, match="auto_shutdown is 'never'"):
        await start_child(sup, worker(probe, "s", restart="temporary", significant=True))


async def test_terminate_child_by_name_keeps_the_spec(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await started(actor_system, probe, "a", "b")
    await terminate_child(sup, "a")
    await expect_events(probe, ("stop", "a"))
    await probe.expect_no_message(within=1)  # not restarted
    infos = await which_children(sup)
    first = infos[0]
    assert (first.name, first.state, first.ref) == ("a", "terminated", None)
    await terminate_child(sup, "a")  # terminating a terminated child does nothing


async def test_terminate_child_by_ref(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await started(actor_system, probe, "a")
    ref = await ref_of(sup, "a")
    await terminate_child(sup, ref)
    await expect_events(probe, ("stop", "a"))
    with pytest.raises(NoSuchChild, match="not a running child"):
        await terminate_child(sup, ref)  # no longer the current incarnation


async def test_terminating_a_temporary_child_drops_it(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await actor_system.spawn(Supervisor, [worker(probe, "t", restart="temporary")])
    await probe.receive()
    await terminate_child(sup, "t")
    assert await which_children(sup) == []


async def test_restart_child_starts_a_terminated_child(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await started(actor_system, probe, "a", max_restarts=0)
    for round in range(1, 4):  # never counts toward the intensity
        await terminate_child(sup, "a")
        ref = await restart_child(sup, "a")
        await expect_events(probe, ("stop", "a"), ("start", "a"))
        assert ref == (await child(sup, "a")).ref
        assert (await child(sup, "a")).restarts == round


async def test_restart_child_refuses_a_running_child(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await started(actor_system, probe, "a")
    with pytest.raises(ChildRunning, match="cannot restart child 'a': it is running"):
        await restart_child(sup, "a")


async def test_restart_child_that_fails_keeps_the_spec(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    failures: dict[str, int] = {}
    sup = await actor_system.spawn(Supervisor, [worker(probe, "a", fail_start=failures)])
    await probe.receive()
    await terminate_child(sup, "a")
    failures["a"] = 1
    with pytest.raises(ChildStartFailed):
        await restart_child(sup, "a")
    assert (await child(sup, "a")).state == "terminated"
    await restart_child(sup, "a")
    assert (await child(sup, "a")).state == "running"


async def test_delete_child(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await started(actor_system, probe, "a", "b")
    with pytest.raises(ChildRunning, match="terminate_child it first"):
        await delete_child(sup, "a")
    await terminate_child(sup, "a")
    await delete_child(sup, "a")
    assert [c.name for c in await which_children(sup)] == ["b"]
    await start_child(sup, worker(probe, "a"))  # the name is free again
    assert [c.name for c in await which_children(sup)] == ["b", "a"]


@pytest.mark.parametrize(
    "call",
    [
        lambda sup: terminate_child(sup, "nope"),
        lambda sup: restart_child(sup, "nope"),
        lambda sup: delete_child(sup, "nope"),
    ],
)
async def test_unknown_children(actor_system: ActorSystem, call: Any) -> None:
    probe = await TestProbe.start(actor_system)
    sup = await started(actor_system, probe, "a")
    with pytest.raises(NoSuchChild, match="has no child named 'nope'; its children are \\['a'\\]"):
        await call(sup)


async def test_which_children_describes_each_child(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [
        worker(probe, "a"),
        worker(probe, "t", restart="transient"),
        ChildSpec(Supervisor, [], name="inner"),
    ]
    sup = await actor_system.spawn(Supervisor, specs, name="sup")
    await probe.receive_n(2)
    await terminate_child(sup, "t")
    a, t, inner = await which_children(sup)
    assert a == ChildInfo("a", a.ref, "running", 0, "permanent", "worker", False)
    assert a.ref is not None and a.ref.path == "/user/sup/a"
    assert t == ChildInfo("t", None, "terminated", 0, "transient", "worker", False)
    assert (inner.kind, inner.running) == ("supervisor", True)


async def test_count_children(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    specs = [worker(probe, "a"), worker(probe, "b"), ChildSpec(Supervisor, [], name="inner")]
    sup = await actor_system.spawn(Supervisor, specs)
    await probe.receive_n(2)
    await terminate_child(sup, "b")
    assert await count_children(sup) == ChildCounts(specs=3, active=2, supervisors=1, workers=2)


async def test_control_of_something_that_is_not_a_supervisor(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    plain = await actor_system.spawn(Worker, probe.ref, "w", name="plain")
    with pytest.raises(TypeError, match="/user/plain is not a supervisor"):
        await which_children(plain)
    with pytest.raises(TypeError, match="needs the supervisor's ActorRef"):
        await which_children("sup")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"needs a supervision\.ChildSpec"):
        await start_child(plain, Worker)  # type: ignore[arg-type]


async def test_control_of_a_stopped_supervisor(actor_system: ActorSystem) -> None:
    sup = await actor_system.spawn(Supervisor, [])
    await sup.stop()
    with pytest.raises(ActorStopped):
        await which_children(sup)


async def test_start_child_refuses_a_spec_without_a_usable_name(
    actor_system: ActorSystem,
) -> None:
    sup = await actor_system.spawn(Supervisor, [], name="sup", shutdown=math.inf)
    with pytest.raises(ValueError, match="needs a name="):
        await start_child(sup, ChildSpec(lambda: actors.Actor()))
    assert await which_children(sup) == []  # refused, and still serving


@pytest.mark.parametrize("bug", [KeyError("bug"), TypeError("bug")], ids=type)
async def test_a_bug_in_the_supervisor_crashes_it_instead_of_answering(
    monkeypatch: pytest.MonkeyPatch, bug: Exception
) -> None:
    # A LookupError or TypeError of the supervisor's own making is not a
    # refusal of the request: let it crash, and the caller learns it failed.
    def broken(child: object) -> ChildInfo:
        raise bug

    monkeypatch.setattr(supervision._base, "_info", broken)
    answer: BaseException | None = None
    with pytest.raises(type(bug), match="bug"):
        async with ActorSystem() as system:
            sup = await system.spawn(
                Supervisor, [ChildSpec(actors.Actor, name="w")], name="sup", shutdown=math.inf
            )
            try:
                await which_children(sup)
            except Exception as exc:
                answer = exc
    assert isinstance(answer, ActorFailed), answer
    assert answer.__cause__ is bug
