"""Names: register, whereis, unregister, release on stop, and the spawn
options that give a new incarnation its name and groups before its first
message (the seam supervisors restart children through)."""

from __future__ import annotations

from typing import Any

import pytest

from actors import (
    Actor,
    ActorRef,
    ActorsError,
    ActorStopped,
    ActorSystem,
    NameTaken,
    lowlevel,
)

pytestmark = pytest.mark.anyio


class Recorder(Actor):
    """Records every message; on start, notes what the registry said."""

    def __init__(self, log: list[Any], name: str | None = None) -> None:
        self.log = log
        self.name = name

    async def on_start(self) -> None:
        registry = self.context.system.registry
        if self.name is not None:
            self.log.append(("whereis", registry.whereis(self.name) == self.ref))
        self.log.append(("subscriptions", registry.subscriptions(self.ref)))

    async def receive(self, message: Any) -> Any:
        if message == "log?":
            return list(self.log)
        self.log.append(message)
        return None


async def spawn_with(
    system: ActorSystem, options: dict[str, Any], *args: Any, name: str | None = None
) -> ActorRef:
    """Spawn through the low-level seam, as ``ChildSpec`` does for restarts."""
    return await lowlevel.spawn(system, Recorder, args, name=name, **options)


# -- names --------------------------------------------------------------------


async def test_register_whereis_unregister(actor_system: ActorSystem) -> None:
    registry = actor_system.registry
    ref = await actor_system.spawn(Actor, name="a")
    assert registry.whereis("db") is None
    registry.register("db", ref)
    assert registry.whereis("db") == ref
    assert registry.names() == {"db": ref}
    assert registry.unregister("db") == ref
    assert registry.whereis("db") is None
    assert registry.unregister("db") is None  # releasing twice is fine


async def test_a_taken_name_is_refused_with_a_clear_error(actor_system: ActorSystem) -> None:
    registry = actor_system.registry
    first = await actor_system.spawn(Actor, name="first")
    second = await actor_system.spawn(Actor, name="second")
    registry.register("db", first)
    registry.register("db", first)  # the same actor again: nothing happens
    with pytest.raises(NameTaken, match=r"'db' is already registered to /user/first"):
        registry.register("db", second)
    assert registry.whereis("db") == first
    registry.unregister("db")
    registry.register("db", second)
    assert registry.whereis("db") == second


async def test_an_actor_may_have_several_names(actor_system: ActorSystem) -> None:
    registry = actor_system.registry
    ref = await actor_system.spawn(Actor, name="a")
    registry.register("db", ref)
    registry.register("store", ref)
    assert registry.names() == {"db": ref, "store": ref}
    await ref.stop()
    assert registry.names() == {}


async def test_names_are_released_when_the_actor_stops(actor_system: ActorSystem) -> None:
    registry = actor_system.registry
    ref = await actor_system.spawn(Actor, name="a")
    registry.register("db", ref)
    await ref.stop()
    assert registry.whereis("db") is None
    successor = await actor_system.spawn(Actor, name="a")
    registry.register("db", successor)
    assert registry.whereis("db") == successor


async def test_names_are_released_when_the_actor_is_killed(actor_system: ActorSystem) -> None:
    registry = actor_system.registry
    ref = await actor_system.spawn(Actor)
    registry.register("db", ref)
    await ref.kill()
    assert registry.whereis("db") is None


async def test_names_of_children_are_released_with_their_parent(
    actor_system: ActorSystem,
) -> None:
    class Parent(Actor):
        async def on_start(self) -> None:
            child = await self.context.spawn(Actor, name="child")
            self.context.system.registry.register("child", child)

    parent = await actor_system.spawn(Parent, name="p")
    assert actor_system.registry.whereis("child") is not None
    await parent.stop()
    assert actor_system.registry.names() == {}


async def test_a_stopped_actor_cannot_be_registered(actor_system: ActorSystem) -> None:
    ref = await actor_system.spawn(Actor, name="gone")
    await ref.stop()
    with pytest.raises(ActorStopped, match=r"cannot register 'db' for /user/gone: it is stopped"):
        actor_system.registry.register("db", ref)


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("", ValueError, "invalid registered name"),
        ("has space", ValueError, "invalid registered name"),
        (".lead", ValueError, "not first or last"),
        ("trail.", ValueError, "not first or last"),
        ("ünïcode", ValueError, "letters, digits"),
        (42, TypeError, "must be a str"),
    ],
)
async def test_bad_names_get_clear_errors(
    actor_system: ActorSystem, name: Any, error: type[Exception], words: str
) -> None:
    ref = await actor_system.spawn(Actor)
    with pytest.raises(error, match=words):
        actor_system.registry.register(name, ref)


async def test_good_names(actor_system: ActorSystem) -> None:
    ref = await actor_system.spawn(Actor)
    for name in ("db", "orders.store", "a/b", "x=1", "under_score-dash"):
        actor_system.registry.register(name, ref)
    assert len(actor_system.registry.names()) == 5
    with pytest.raises(TypeError):
        actor_system.registry.whereis(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        actor_system.registry.unregister(None)  # type: ignore[arg-type]


async def test_refs_of_another_system_are_refused(actor_system: ActorSystem) -> None:
    async with ActorSystem("other") as other:
        foreign = await other.spawn(Actor)
        with pytest.raises(ActorsError, match="belongs to actor system 'other'"):
            actor_system.registry.register("db", foreign)
        with pytest.raises(TypeError, match="needs an ActorRef"):
            actor_system.registry.register("db", "not a ref")  # type: ignore[arg-type]


# -- spawn options: names and groups before the first message ------------------


async def test_spawn_options_apply_before_on_start(actor_system: ActorSystem) -> None:
    log: list[Any] = []
    options = {"register_as": "db", "subscriptions": ["news.>", ("jobs", "workers")]}
    ref = await spawn_with(actor_system, options, log, "db", name="db-1")
    assert log[:2] == [
        ("whereis", True),
        ("subscriptions", [("news.>", None), ("jobs", "workers")]),
    ]
    assert actor_system.registry.whereis("db") == ref
    assert await actor_system.publish("jobs", "job") == 1
    assert await actor_system.publish("news.sport", "goal") == 1
    assert await ref.ask("log?") == [*log[:2], "job", "goal"]


async def test_a_new_incarnation_gets_name_and_groups_back(actor_system: ActorSystem) -> None:
    registry = actor_system.registry
    options = {"register_as": "worker", "subscriptions": [("jobs", "workers")]}
    other_log: list[Any] = []
    other = await actor_system.spawn(Recorder, other_log, name="other")
    registry.subscribe("jobs", other, group="workers")
    for incarnation in range(3):
        log: list[Any] = []
        ref = await spawn_with(actor_system, options, log, "worker", name="worker")
        # Before its first message it already had its name and its group.
        assert log[:2] == [("whereis", True), ("subscriptions", [("jobs", "workers")])]
        assert registry.whereis("worker") == ref
        groups = registry.topics()[0].groups
        assert groups[0].members == ("/user/other", "/user/worker")
        # Round-robin still alternates between the two live members.
        delivered = [await actor_system.publish("jobs", (incarnation, i)) for i in range(4)]
        assert delivered == [1, 1, 1, 1]
        got = [m for m in await ref.ask("log?") if isinstance(m, tuple) and m[0] == incarnation]
        assert len(got) == 2
        await ref.stop()
        assert registry.whereis("worker") is None
        assert registry.topics()[0].groups[0].members == ("/user/other",)
    handled = [m for m in await other.ask("log?") if isinstance(m, tuple) and len(m) == 2]
    assert len([m for m in handled if isinstance(m[0], int)]) == 6


async def test_options_are_not_shared_between_incarnations(actor_system: ActorSystem) -> None:
    options: dict[str, Any] = {
        "register_as": "db",
        "subscriptions": ["a"],
        "details": {"restart": "permanent"},
    }
    ref = await spawn_with(actor_system, options, [], name="db")
    actor_system.subscribe("b", ref)
    assert options["details"] == {"restart": "permanent"}
    await ref.stop()
    ref = await spawn_with(actor_system, options, [], name="db")
    info = actor_system.tree().find("/user/db")
    assert info is not None
    assert dict(info.details) == {"restart": "permanent", "registered": "db", "subscribed": "a"}


async def test_bad_spawn_options_fail_the_spawn_and_leave_nothing(
    actor_system: ActorSystem,
) -> None:
    holder = await actor_system.spawn(Actor, name="holder")
    actor_system.registry.register("db", holder)
    before = actor_system.statistics().actors
    with pytest.raises(NameTaken, match=r"register_as='db'.*registered to /user/holder"):
        await spawn_with(actor_system, {"register_as": "db"}, [], name="x")
    with pytest.raises(TypeError, match="list of patterns"):
        await spawn_with(actor_system, {"subscriptions": "jobs"}, [], name="x")
    with pytest.raises(TypeError, match="neither a pattern nor"):
        await spawn_with(actor_system, {"subscriptions": [("jobs",)]}, [], name="x")
    with pytest.raises(ValueError, match="must be the last token"):
        await spawn_with(actor_system, {"subscriptions": ["a.>.b"]}, [], name="x")
    with pytest.raises(ValueError, match="invalid group name"):
        await spawn_with(actor_system, {"subscriptions": [("jobs", "")]}, [], name="x")
    with pytest.raises(ValueError, match="invalid registered name"):
        await spawn_with(actor_system, {"register_as": "a b"}, [], name="x")
    assert actor_system.statistics().actors == before
    assert actor_system.registry.topics() == []
    await spawn_with(actor_system, {}, [], name="x")  # the name "x" is still free


async def test_a_failed_start_releases_what_the_options_took(actor_system: ActorSystem) -> None:
    class Broken(Actor):
        async def on_start(self) -> None:
            raise RuntimeError("no")

    with pytest.raises(Exception, match="failed to start"):
        await lowlevel.spawn(
            actor_system, Broken, name="b", register_as="db", subscriptions=["jobs"]
        )
    assert actor_system.registry.names() == {}
    assert actor_system.registry.topics() == []


# -- the tree -----------------------------------------------------------------


async def test_the_tree_shows_names_and_subscriptions(actor_system: ActorSystem) -> None:
    ref = await actor_system.spawn(Actor, name="w")
    actor_system.registry.register("worker", ref)
    actor_system.subscribe("jobs", ref, group="workers")
    actor_system.subscribe("news.>", ref)
    info = actor_system.tree().find("/user/w")
    assert info is not None
    assert dict(info.details) == {
        "registered": "worker",
        "subscribed": "jobs [workers], news.>",
    }
    assert "registered worker  subscribed jobs [workers], news.>" in str(actor_system.tree())
    actor_system.unsubscribe("jobs", ref, group="workers")
    actor_system.registry.unregister("worker")
    info = actor_system.tree().find("/user/w")
    assert info is not None
    assert dict(info.details) == {"subscribed": "news.>"}


async def test_registry_works_on_a_plain_system() -> None:
    async with ActorSystem("plain") as system:
        ref = await system.spawn(Actor)
        system.registry.register("x", ref)
        assert repr(system.registry) == "<Registry of 'plain': 1 names>"
    with pytest.raises(ActorsError, match="not running"):
        await system.publish("a", 1)
