"""``actors.lowlevel``, the API for library authors: spawning with options,
resolving a ref, watching on behalf of others, dead letters, and the
``on_stop_children`` hook; and the guide page documents every name."""

from __future__ import annotations

import math
import pathlib
import re
from typing import Any

import anyio
import pytest

import actors.lowlevel
from actors import Actor, ActorFailed, ActorRef, ActorsError, ActorSystem, Terminated, lowlevel
from actors.testing import TestProbe

pytestmark = pytest.mark.anyio

DOCS = pathlib.Path(__file__).parent.parent / "docs"


# --8<-- [start:keeper]
class Keeper(Actor):
    """A tiny supervisor: keeps one child running under the name "kept",
    restarting it whenever it ends, at most ``limit`` times."""

    def __init__(self, factory: type[Actor], *args: Any, limit: int = 3) -> None:
        self.factory, self.args, self.limit = factory, args, limit
        self.restarts = 0
        self.current: ActorRef | None = None
        self.started: set[ActorRef] = set()  # every incarnation it started

    async def on_start(self) -> None:
        me = lowlevel.resolve(self.ref)
        assert me is not None
        me.details["keeps"] = self.factory.__name__  # shown by system.tree()
        await self.start_child()

    async def start_child(self) -> None:
        # Name and registry name before the child's on_start; the restart
        # count goes to system.tree().
        self.current = await lowlevel.spawn(
            self.context,
            self.factory,
            self.args,
            name="kept",
            register_as="kept",
            restarts=self.restarts,
        )
        self.started.add(self.current)
        self.context.watch(self.current)

    async def receive(self, message: Any) -> None:
        match message:
            case Terminated(ref, reason) if ref == self.current:
                if self.restarts == self.limit:
                    raise RuntimeError(f"kept child ended {self.limit + 1} times") from reason
                self.restarts += 1
                await self.start_child()

    async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
        if child not in self.started:  # a child it did not start: fail, as usual
            raise error
        # Its own children's failures were handled through Terminated.

    async def on_stop_children(self) -> None:
        # Stop the kept child itself, at once (the default would stop it
        # gracefully); no Terminated is wanted for it any more.
        if self.current is not None:
            self.context.unwatch(self.current)
            await self.current.kill()


# --8<-- [end:keeper]


class Crashy(Actor):
    def __init__(self, probe: ActorRef) -> None:
        self.probe = probe

    async def on_start(self) -> None:
        await self.probe.tell(("started", self.ref))

    async def receive(self, message: Any) -> None:
        if message == "crash":
            raise RuntimeError("crash")

    async def on_stop(self) -> None:
        await self.probe.tell("on_stop")


async def test_a_library_supervisor_built_on_the_low_level_api(
    actor_system: ActorSystem,
) -> None:
    probe = await TestProbe.start(actor_system)
    keeper = await actor_system.spawn(Keeper, Crashy, probe.ref, limit=2, name="keeper")
    first = (await probe.expect(lambda m: m[0] == "started"))[1]
    assert actor_system.registry.whereis("kept") == first
    await first.tell("crash")
    await probe.expect("on_stop")  # it runs after a failure too
    second = (await probe.expect(lambda m: m[0] == "started"))[1]
    assert second != first
    assert actor_system.registry.whereis("kept") == second
    tree = actor_system.tree()
    kept = tree.find("/user/keeper/kept")
    owner = tree.find("/user/keeper")
    assert kept is not None and owner is not None
    assert (kept.restarts, dict(kept.details)) == (1, {"registered": "kept"})
    assert dict(owner.details) == {"keeps": "Crashy"}
    await keeper.stop()
    await probe.expect_no_message(within=0.01)  # killed: no on_stop
    assert actor_system.registry.whereis("kept") is None


async def test_spawn_with_a_context_owner_makes_a_child(actor_system: ActorSystem) -> None:
    class Parent(Actor):
        async def receive(self, message: Any) -> Any:
            ref = await lowlevel.spawn(self.context, Actor, name="c", subscriptions=["a.*"])
            return ref.path, self.context.children == [ref]

    parent = await actor_system.spawn(Parent, name="p")
    assert await parent.ask("spawn") == ("/user/p/c", True)
    assert await actor_system.publish("a.b", "hi") == 1


async def test_spawn_passes_args_and_kwargs_without_clashes(actor_system: ActorSystem) -> None:
    class Named(Actor):
        def __init__(self, first: int, *, name: str, shutdown: str) -> None:
            self.got = (first, name, shutdown)

        async def receive(self, message: Any) -> Any:
            return self.got

    ref = await lowlevel.spawn(
        actor_system, Named, [1], {"name": "n", "shutdown": "s"}, name="x", shutdown=math.inf
    )
    assert await ref.ask("?") == (1, "n", "s")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"restarts": -1}, ValueError, "restarts must be >= 0"),
        ({"restarts": True}, TypeError, "restarts must be an int"),
        ({"details": {"a": 1}}, TypeError, "details must map str to str"),
        ({"details": ["a"]}, TypeError, "details must be a mapping"),
        ({"register_as": "a b"}, ValueError, "invalid registered name"),
        ({"subscriptions": "jobs"}, TypeError, "list of patterns"),
    ],
)
async def test_bad_spawn_options_are_refused_before_anything_starts(
    actor_system: ActorSystem, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        await lowlevel.spawn(actor_system, Actor, name="x", **kwargs)
    assert actor_system.statistics().actors == 0


async def test_spawn_needs_a_system_or_a_context(actor_system: ActorSystem) -> None:
    with pytest.raises(TypeError, match="ActorSystem or the parent actor's Context"):
        await lowlevel.spawn("system", Actor)  # type: ignore[arg-type]


async def test_resolve_and_the_incarnation(actor_system: ActorSystem) -> None:
    class Failing(Actor):
        async def receive(self, message: Any) -> None:
            raise KeyError("boom")

        async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
            pass

    class Parent(Actor):
        async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
            pass  # tolerate the failing child

        async def receive(self, message: Any) -> ActorRef:
            return await self.context.spawn(Failing, name="f")

    parent = await actor_system.spawn(Parent, name="p")
    ref = await parent.ask("spawn")
    incarnation = lowlevel.resolve(ref)
    assert incarnation is not None
    assert (incarnation.ref, incarnation.path, incarnation.state) == (ref, "/user/p/f", "running")
    assert incarnation.system is actor_system
    assert repr(incarnation) == "<Incarnation /user/p/f running>"
    incarnation.restarts = 4
    incarnation.details["k"] = "v"
    info = actor_system.tree().find("/user/p/f")
    assert info is not None and (info.restarts, dict(info.details)) == (4, {"k": "v"})
    with pytest.raises(ActorFailed):
        await ref.ask("fail")
    await ref.join()
    assert incarnation.state == "failed"
    assert isinstance(incarnation.reason, KeyError)
    with pytest.raises(ValueError, match=">= 0"):
        incarnation.restarts = -1
    with pytest.raises(TypeError, match="needs an ActorRef"):
        lowlevel.resolve("ref")  # type: ignore[arg-type]


async def test_watch_on_behalf_of_another_actor(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    target = await actor_system.spawn(Actor)
    other = await actor_system.spawn(Actor)
    lowlevel.watch(target, probe.ref)
    lowlevel.watch(other, probe.ref)
    lowlevel.unwatch(other, probe.ref)
    await other.stop()
    await target.stop()
    await probe.expect(Terminated(target, None))
    await probe.expect_no_message(within=0.01)
    with pytest.raises(TypeError, match="watcher must be an ActorRef"):
        lowlevel.watch(target, "probe")  # type: ignore[arg-type]


async def test_watch_across_systems_is_refused() -> None:
    async with ActorSystem("one") as one, ActorSystem("two") as two:
        a = await one.spawn(Actor)
        b = await two.spawn(Actor)
        with pytest.raises(ActorsError, match="only works within one system"):
            lowlevel.watch(a, b)


async def test_dead_letter(actor_system: ActorSystem) -> None:
    ref = await actor_system.spawn(Actor)
    async with actor_system.dead_letters() as letters:
        lowlevel.dead_letter(actor_system, "what?", ref, "not understood")
        letter = await letters.receive()
    assert (letter.message, letter.recipient, letter.reason) == ("what?", ref, "not understood")
    assert actor_system.statistics().dead_letters == 1
    with pytest.raises(TypeError, match="needs the ActorSystem"):
        lowlevel.dead_letter(None, "x", None, "r")  # type: ignore[arg-type]


# -- the on_stop_children hook --------------------------------------------------


class Parent(Actor):
    """Spawns children a, b, c; records the order they stop in."""

    def __init__(self, probe: ActorRef) -> None:
        self.probe = probe

    async def on_start(self) -> None:
        for name in "abc":
            await self.context.spawn(Child, self.probe, name=name)

    async def on_stop(self) -> None:
        await self.probe.tell("parent on_stop")


class Child(Actor):
    def __init__(self, probe: ActorRef) -> None:
        self.probe = probe

    async def on_stop(self) -> None:
        await self.probe.tell(self.ref.name)


async def test_children_stop_in_reverse_spawn_order_by_default(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    parent = await actor_system.spawn(Parent, probe.ref)
    await parent.stop()
    for expected in ["c", "b", "a", "parent on_stop"]:
        await probe.expect(expected)


async def test_an_override_stops_children_in_its_own_order(actor_system: ActorSystem) -> None:
    class Forward(Parent):
        async def on_stop_children(self) -> None:
            for child in self.context.children[:2]:  # c is left to the runtime
                await child.stop()

    probe = await TestProbe.start(actor_system)
    parent = await actor_system.spawn(Forward, probe.ref)
    await parent.stop()
    for expected in ["a", "b", "c", "parent on_stop"]:
        await probe.expect(expected)


async def test_an_override_that_raises_fails_the_actor(actor_system: ActorSystem) -> None:
    class Broken(Parent):
        async def on_stop_children(self) -> None:
            raise KeyError("no")

    class Host(Actor):
        def __init__(self, probe: ActorRef) -> None:
            self.probe = probe

        async def on_start(self) -> None:
            await self.context.spawn(Broken, self.probe, name="broken")

        async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
            await self.probe.tell(("failed", child.name, type(error).__name__))

        async def receive(self, message: Any) -> Any:
            return self.context.children

    probe = await TestProbe.start(actor_system)
    host = await actor_system.spawn(Host, probe.ref)
    [broken] = await host.ask("children?")
    await broken.stop()
    # Its children were still stopped (by the runtime), and its on_stop ran.
    for expected in ["c", "b", "a", "parent on_stop", ("failed", "broken", "KeyError")]:
        await probe.expect(expected)


# -- the guide page -------------------------------------------------------------


def test_the_guide_page_covers_every_name() -> None:
    page = (DOCS / "lowlevel.md").read_text()
    for name in actors.lowlevel.__all__:
        assert f"`{name}" in page or f"lowlevel.{name}" in page, f"docs/lowlevel.md: {name}"
    assert "::: actors.lowlevel" in page
    assert "on_stop_children" in page


def test_every_name_has_a_docstring_with_an_example() -> None:
    assert actors.lowlevel.__doc__
    for name in actors.lowlevel.__all__:
        doc = getattr(actors.lowlevel, name).__doc__ or ""
        assert ">>>" in doc, f"actors.lowlevel.{name} has no example"
        if name == "Incarnation":
            for member in ("ref", "path", "system", "state", "reason", "restarts", "details"):
                assert getattr(actors.lowlevel.Incarnation, member).__doc__, member


def test_the_guide_is_in_the_navigation() -> None:
    nav = (DOCS.parent / "mkdocs.yml").read_text()
    assert re.search(r"^\s+- Low-level API: lowlevel\.md$", nav, re.MULTILINE)


async def test_spawn_nowait_returns_before_on_start(actor_system: ActorSystem) -> None:
    gate = anyio.Event()

    class Slow(Actor):
        async def on_start(self) -> None:
            await gate.wait()

    ref = lowlevel.spawn_nowait(
        actor_system, Slow, name="slow", register_as="slow", details={"a": "b"}
    )
    incarnation = lowlevel.resolve(ref)
    assert incarnation is not None and incarnation.state == "starting"
    assert actor_system.registry.whereis("slow") == ref  # options before on_start
    await ref.kill()  # a start that hangs can be cancelled
    assert (await ref.join()).killed
    assert actor_system.registry.whereis("slow") is None


async def test_spawn_nowait_start_failure_goes_to_the_parent(actor_system: ActorSystem) -> None:
    class Broken(Actor):
        async def on_start(self) -> None:
            raise KeyError("no")

    class Parent(Actor):
        def __init__(self, probe: ActorRef) -> None:
            self.probe = probe

        async def receive(self, message: Any) -> None:
            lowlevel.spawn_nowait(self.context, Broken, name="b")

        async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
            await self.probe.tell((child.path, type(error).__name__))

    probe = await TestProbe.start(actor_system)
    parent = await actor_system.spawn(Parent, probe.ref, name="p")
    await parent.tell("go")
    await probe.expect(("/user/p/b", "KeyError"))
    with pytest.raises(TypeError, match=r"lowlevel\.spawn_nowait\(\) needs the ActorSystem"):
        lowlevel.spawn_nowait(None, Actor)  # type: ignore[arg-type]
