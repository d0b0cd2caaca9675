"""Topics across processes: the parent keeps one set of topics for the
system, and actors in child processes subscribe and publish as in-process."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from process_kit import Member
from supervision_kit import child
from wire_kit import handshake_pair, tcp_pair

import actors
from actors import ActorsError, ConnectionLost, DeadLetter, ProcessExited, Subprocess, Terminated
from actors._peer import Peer
from actors._remote_names import forward_names, serve_names
from actors._remote_topics import forward_topics, serve_topics
from actors._wire import WireConnection
from actors.testing import TestProbe
from supervision import ChildSpec, Supervisor

#: Seconds any one expectation may take on a loaded machine (not a speed test).
WAIT = 20.0

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.usefixtures("no_orphans"),
    pytest.mark.skipif(sys.platform != "linux", reason="Linux /proc"),
]

PLACEMENT = Subprocess(heartbeat=0.5)
DEAD_LETTERS_TOPIC = "actors.dead_letters"


async def _members(
    system: actors.ActorSystem,
    probe: TestProbe,
    patterns: Any,
    *,
    local: int = 1,
    remote: int = 2,
    placement: Subprocess = PLACEMENT,
) -> dict[str, actors.ActorRef]:
    """``local`` members in the parent (p0, p1 ...) and ``remote`` in child
    processes (c0, c1 ...), each subscribed to ``patterns`` when spawn returns."""
    refs = {}
    for i in range(local):
        refs[f"p{i}"] = await system.spawn(Member, f"p{i}", probe.ref, patterns, name=f"p{i}")
    for i in range(remote):
        refs[f"c{i}"] = await system.spawn(
            Member, f"c{i}", probe.ref, patterns, name=f"c{i}", placement=placement
        )
    started = await probe.receive_n(local + remote)
    assert {tag for _, tag, _ in started} == set(refs)
    return refs


@pytest.mark.parametrize("child_backend", ["same", "other"])
async def test_a_publish_in_the_parent_reaches_subscribers_in_every_process(
    child_backend: str, anyio_backend: Any
) -> None:
    placement = PLACEMENT
    if child_backend == "other":
        placement = Subprocess(backend="trio" if anyio_backend[0] == "asyncio" else "asyncio")
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        await _members(system, probe, ["news.>"], placement=placement)
        assert await system.publish("news.eu", "goal") == 3
        got = await probe.receive_n(3)
        assert sorted(got) == [("c0", "goal"), ("c1", "goal"), ("p0", "goal")]
        # Each subscriber gets one publisher's messages in publish order.
        for i in range(50):
            await system.publish("news.eu", i)
        got = await probe.receive_n(150)
        for tag in ("p0", "c0", "c1"):
            assert [m for t, m in got if t == tag] == list(range(50))
        assert await system.publish("sport.eu", "nobody") == 0


async def test_a_publish_in_a_child_reaches_the_parent_and_the_other_children() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        refs = await _members(system, probe, ["news.*"])
        async with system.subscription("news.*") as news:
            # The publisher gets its own message too, as in-process.
            assert await refs["c0"].ask(("publish", "news.eu", "from c0")) == 4
            assert await news.receive() == "from c0"
        got = await probe.receive_n(3)
        assert sorted(got) == [("c0", "from c0"), ("c1", "from c0"), ("p0", "from c0")]
        # Nobody: 0, and a dead letter in the parent, which keeps the topics.
        async with system.dead_letters() as letters:
            assert await refs["c1"].ask(("publish", "sport.eu", "lost")) == 0
            letter = await letters.receive()
        assert (letter.message, letter.reason, letter.topic) == (
            "lost",
            "no subscribers",
            "sport.eu",
        )
        # Bad topics fail in the publisher, as in-process.
        assert isinstance(await refs["c1"].ask(("publish", "news.*", "wildcard")), ValueError)


# --8<-- [start:group]
async def test_a_group_across_processes_gets_each_message_once_in_turn() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        # p0 here, c0 and c1 each in a child process: one group "workers".
        refs = await _members(system, probe, [("jobs.*", "workers")])
        info = system.registry.topics()
        assert [g.members for g in info[0].groups] == [("/user/p0", "/user/c0", "/user/c1")]
        for i in range(30):
            assert await system.publish("jobs.a", i) == 1
        got = await probe.receive_n(30)
        assert sorted(m for _, m in got) == list(range(30))  # each once
        assert Counter(tag for tag, _ in got) == {"p0": 10, "c0": 10, "c1": 10}  # in turn
        # A publish from a child goes to one member too.
        for i in range(30, 36):
            assert await refs["c1"].ask(("publish", "jobs.b", i)) == 1
        got = await probe.receive_n(6)
        assert sorted(m for _, m in got) == list(range(30, 36))
        assert Counter(tag for tag, _ in got) == {"p0": 2, "c0": 2, "c1": 2}
        await probe.expect_no_message(0.05)


# --8<-- [end:group]


async def test_a_group_on_a_process_pool_shares_the_work_of_one_worker() -> None:
    async with actors.ActorSystem() as system:
        await system.process_pool("topics", size=1, placement=PLACEMENT)
        probe = await TestProbe.start(system)
        pooled = Subprocess(pool="topics")
        refs = [
            await system.spawn(Member, f"w{i}", probe.ref, [("jobs", "w")], placement=pooled)
            for i in range(3)
        ]
        pids = {pid for _, _, pid in await probe.receive_n(3)}
        assert len(pids) == 1 and pids != {os.getpid()}  # one worker hosts them all
        for i in range(9):
            assert await system.publish("jobs", i) == 1
        assert Counter(t for t, _ in await probe.receive_n(9)) == {"w0": 3, "w1": 3, "w2": 3}
        # One of them stops: the others share the work; the worker lives on.
        await refs[0].stop()
        for i in range(4):
            assert await refs[1].ask(("publish", "jobs", i)) == 1
        assert Counter(t for t, _ in await probe.receive_n(4)) == {"w1": 2, "w2": 2}


async def test_subscribe_and_unsubscribe_from_a_child() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        refs = await _members(system, probe, [], local=0, remote=1)
        c0 = refs["c0"]
        assert await c0.ask(("subscribe", "a.b", None)) is True
        assert await c0.ask(("subscribe", "a.b", None)) is False  # already
        assert await c0.ask(("subscribe", "a.*", "g")) is True
        assert await c0.ask("subscriptions") == [("a.b", None), ("a.*", "g")]
        assert system.registry.subscriptions(c0) == [("a.b", None), ("a.*", "g")]
        assert await system.publish("a.b", 1) == 1  # one copy: group and plain
        await probe.expect(("c0", 1), timeout=WAIT)
        assert await c0.ask(("unsubscribe", "a.b", None)) is True
        assert await c0.ask(("unsubscribe", "a.b", None)) is False
        assert await c0.ask(("unsubscribe", "a.*", "g")) is True
        assert system.registry.subscriptions(c0) == []
        assert await system.publish("a.b", 2) == 0
        assert isinstance(await c0.ask(("subscribe", "a..b", None)), ValueError)
        # One the parent ended is made again by the child's next subscribe
        # (it sent nothing, since the child still held it).
        assert await c0.ask(("subscribe", "news", None)) is True
        assert system.registry.unsubscribe("news", c0)
        assert await system.publish("news", 3) == 0
        assert await c0.ask(("subscribe", "news", None)) is False  # held there
        assert system.registry.subscriptions(c0) == [("news", None)]
        assert await system.publish("news", 4) == 1
        await probe.expect(("c0", 4), timeout=WAIT)


async def test_spawn_options_subscribe_a_process_actor_and_it_can_unsubscribe() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await actors.lowlevel.spawn(
            system,
            Member,
            ("c0", probe.ref),
            name="c0",
            subscriptions=["orders.>", ("jobs", "workers")],
            placement=PLACEMENT,
        )
        await probe.receive()  # started
        assert await ref.ask("subscriptions") == [("orders.>", None), ("jobs", "workers")]
        assert await system.publish("orders.eu", "o1") == 1
        assert await system.publish("jobs", "j1") == 1
        assert await probe.receive_n(2) == [("c0", "o1"), ("c0", "j1")]
        assert await ref.ask(("unsubscribe", "orders.>", None)) is True
        assert system.registry.subscriptions(ref) == [("jobs", "workers")]


async def test_an_actor_a_process_actor_spawns_there_subscribes_too() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        refs = await _members(system, probe, ["news"], local=0, remote=1)
        inner = await refs["c0"].ask(("spawn", "inner", ["news", ("jobs", "w")]))
        assert await probe.receive() == ("started", "inner", await refs["c0"].ask("pid"))
        assert await system.publish("news", "n1") == 2
        assert sorted(await probe.receive_n(2)) == [("c0", "n1"), ("inner", "n1")]
        assert await system.publish("jobs", "j1") == 1
        await probe.expect(("inner", "j1"), timeout=WAIT)
        assert await inner.ask(("unsubscribe", "jobs", "w")) is True
        assert await system.publish("jobs", "j2") == 0
        # Its subscriptions end with it.
        await inner.stop()
        with anyio.fail_after(5):
            while await system.publish("news", "n2") != 1:
                await probe.expect(("c0", "n2"), timeout=WAIT)
        await probe.expect(("c0", "n2"), timeout=WAIT)


async def test_a_process_actor_of_a_process_actor_subscribes_and_registers_too() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        refs = await _members(system, probe, ["news"], local=1, remote=1)
        grandchild = await refs["c0"].ask(("spawn process", "g", ["news", ("jobs", "w")]))
        _, tag, pid = await probe.receive()
        assert tag == "g" and pid != await refs["c0"].ask("pid")
        assert await system.publish("news", 1) == 3
        assert sorted(await probe.receive_n(3)) == [("c0", 1), ("g", 1), ("p0", 1)]
        assert await grandchild.ask(("publish", "jobs", 2)) == 1
        await probe.expect(("g", 2), timeout=WAIT)
        assert await grandchild.ask(("register", "g")) is None
        assert system.registry.whereis("g") == grandchild
        assert await refs["c0"].ask(("whereis", "g")) == grandchild
        await grandchild.stop()
        assert await refs["c0"].ask(("publish", "news", 3)) == 2
        assert sorted(await probe.receive_n(2)) == [("c0", 3), ("p0", 3)]
        assert system.registry.whereis("g") is None


async def test_dead_letters_in_a_child_reach_subscribers_in_the_parent() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        refs = await _members(system, probe, [], local=0, remote=1)
        inner = await refs["c0"].ask(("spawn", "inner", []))
        await probe.receive()  # started
        await inner.stop()
        async with system.subscription(DEAD_LETTERS_TOPIC) as letters:
            await inner.tell("anyone?")  # a dead letter over there
            with anyio.fail_after(5):
                letter: DeadLetter = await letters.receive()
        assert (letter.message, letter.recipient) == ("anyone?", inner)
        assert letter.reason == f"stopped (in {inner._system_name})"


async def test_a_publish_from_a_child_waits_for_room_and_its_cancel_delivers_nothing() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        refs = await _members(system, probe, [], local=0, remote=1)
        async with system.subscription("slow", capacity=1) as slow:
            assert await system.publish("slow", "first") == 1  # full now
            # The publish waits in the parent for room; the asker gives up,
            # which cancels the handler there, which cancels the publish here.
            with pytest.raises(actors.AskTimeout):
                await refs["c0"].ask(("publish", "slow", "cancelled"), timeout=0.5)
            # Its next answer comes after the cancel has reached us.
            assert await refs["c0"].ask("pid") != os.getpid()
            assert await slow.receive() == "first"
            assert await system.publish("slow", "after") == 1
            # And one that waits until there is room.
            async with anyio.create_task_group() as tg:

                async def publish() -> None:
                    assert await refs["c0"].ask(("publish", "slow", "waited")) == 1

                tg.start_soon(publish)
                assert await slow.receive() == "after"
                assert await slow.receive() == "waited"


async def test_a_pull_subscription_in_a_child_is_refused_clearly() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        refs = await _members(system, probe, [], local=0, remote=1)
        error = await refs["c0"].ask(("pull", "news"))
        assert isinstance(error, ActorsError) and "subscribe an actor" in str(error)


async def test_kill_9_removes_a_childs_members_and_nothing_vanishes() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        patterns = [("jobs", "workers"), "news"]
        p0 = await system.spawn(Member, "p0", probe.ref, patterns, name="p0")
        specs = [
            ChildSpec(
                Member, tag, probe.ref, patterns, name=tag, restart="temporary", placement=PLACEMENT
            )
            for tag in ("c0", "c1")
        ]
        sup = await system.spawn(Supervisor, specs, name="sup")
        await probe.receive_n(3)
        c0, c1 = await _running(sup, "c0"), await _running(sup, "c1")
        watcher = await TestProbe.start(system)
        async with system.dead_letters() as letters:
            pid = await c0.ask("pid")
            watcher.watch(c0)
            os.kill(pid, signal.SIGKILL)
            ended = await watcher.expect(lambda m: isinstance(m, Terminated), timeout=WAIT)
            assert isinstance(ended.reason, ProcessExited)
            members = system.registry.topics()[0].groups[0].members
            assert members == ("/user/p0", "/user/sup/c1")
            for i in range(20):
                assert await system.publish("jobs", i) == 1
                assert await system.publish("news", i) == 2
            got = await probe.receive_n(60)
            assert sorted(m for _, m in got) == sorted([*range(20)] * 3)
            assert Counter(t for t, _ in got) == {"p0": 30, "c1": 30}
            with pytest.raises(anyio.WouldBlock):
                letters.receive_nowait()
            # With the last member gone too, a message is a dead letter.
            pid = await c1.ask("pid")
            watcher.watch(c1)
            os.kill(pid, signal.SIGKILL)
            await watcher.expect(lambda m: isinstance(m, Terminated), timeout=WAIT)
            await p0.stop()
            assert system.registry.topics() == []
            assert await system.publish("jobs", "late") == 0
            letter: DeadLetter = await letters.receive()
            assert (letter.message, letter.reason) == ("late", "no subscribers")


async def _running(sup: actors.ActorRef, name: str, not_: Any = None) -> actors.ActorRef:
    with anyio.fail_after(10):
        while True:
            info = await child(sup, name)
            if info.ref is not None and info.ref != not_ and info.state == "running":
                return info.ref
            await anyio.sleep(0.01)


@pytest.mark.parametrize("how", ["on_start", "spawn option"])
async def test_a_supervised_child_restarted_after_kill_9_rejoins(how: str) -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        await system.spawn(Member, "p0", probe.ref, [("jobs", "workers")], name="p0")
        if how == "on_start":
            spec = ChildSpec(
                Member, "c0", probe.ref, [("jobs", "workers")], name="c0", placement=PLACEMENT
            )
        else:
            spec = ChildSpec(
                Member,
                "c0",
                probe.ref,
                name="c0",
                subscriptions=[("jobs", "workers")],
                placement=PLACEMENT,
            )
        sup = await system.spawn(Supervisor, [spec], name="sup")
        first = await probe.receive_n(2)
        pid = dict((tag, p) for _, tag, p in first)["c0"]
        old = await _running(sup, "c0")
        os.kill(pid, signal.SIGKILL)
        restarted = await probe.expect(lambda m: m[0] == "started", timeout=WAIT)
        assert restarted[1] == "c0" and restarted[2] != pid
        new = await _running(sup, "c0", not_=old)
        assert system.registry.subscriptions(new) == [("jobs", "workers")]
        members = system.registry.topics()[0].groups[0].members
        assert sorted(members) == ["/user/p0", "/user/sup/c0"]
        for i in range(10):
            assert await system.publish("jobs", i) == 1
        got = await probe.receive_n(10)
        assert Counter(tag for tag, _ in got) == {"p0": 5, "c0": 5}


# -- over any connection: two systems joined by a Peer --------------------------


@asynccontextmanager
async def _joined(hub: actors.ActorSystem, member: actors.ActorSystem) -> AsyncIterator[Peer]:
    """``member`` joins ``hub`` over loopback TCP and forwards its topics and names there
    (as a system joined over TCP would); yields the hub's end."""
    a, b = await tcp_pair()
    session_a, session_b = await handshake_pair(a, b)
    at_hub = Peer(hub, WireConnection(a, session_a), member.name)
    at_member = Peer(member, WireConnection(b, session_b), hub.name)
    serve_topics(at_hub)
    serve_names(at_hub)
    forward_topics(member, at_member)
    forward_names(member, at_member)
    for system, peer in ((hub, at_hub), (member, at_member)):
        system._peers[peer.node] = peer

        async def serve(peer: Peer = peer) -> None:
            with contextlib.suppress(ConnectionLost):
                await peer.run()

        system._start(serve, name=f"{system.name} to {peer.node}")
    try:
        yield at_hub
    finally:
        at_hub.close()
        at_member.close()


async def test_topics_over_any_peer_reach_actors_without_a_stand_in() -> None:
    async with (
        actors.ActorSystem("hub") as hub,
        actors.ActorSystem("member") as member,
        _joined(hub, member) as peer,
    ):
        probe = await TestProbe.start(hub)
        local = await hub.spawn(Member, "h", probe.ref, ["news", ("jobs", "w")])
        remote = await member.spawn(Member, "m", probe.ref, ["news", ("jobs", "w")])
        await probe.receive_n(2)  # started
        # (The member's report ref never crossed: it is the hub's own. So
        # sync on a publish from there, which comes after its subscriptions.)
        assert await member.publish("news", 0) == 2
        assert sorted(await probe.receive_n(2)) == [("h", 0), ("m", 0)]
        info = hub.registry.topics()
        assert [t.pattern for t in info] == ["jobs", "news"]
        assert info[0].groups[0].members == ("/user/member-1", "/user/member-1 on member")
        # Fan-out and a group across the two systems, from either side.
        assert await hub.publish("news", 1) == 2
        assert await remote.ask(("publish", "news", 2)) == 2
        assert sorted(await probe.receive_n(4)) == [("h", 1), ("h", 2), ("m", 1), ("m", 2)]
        for i in range(10):
            assert await hub.publish("jobs", i) == 1
        assert Counter(t for t, _ in await probe.receive_n(10)) == {"h": 5, "m": 5}
        assert await remote.ask(("unsubscribe", "news", None)) is True
        assert await remote.ask(("publish", "news", 3)) == 1
        await probe.expect(("h", 3), timeout=WAIT)
        # Its end ends its subscriptions there.
        await remote.stop()
        # A publish from there comes after the news of its end.
        assert await member.publish("jobs", "j") == 1
        await probe.expect(("h", "j"), timeout=WAIT)
        assert hub.registry.topics()[0].groups[0].members == ("/user/member-1",)
        # The connection's end ends the subscriptions of everything over there.
        await member.spawn(Member, "m2", probe.ref, ["news"])
        await probe.receive()
        assert await member.publish("news", 4) == 2
        await probe.receive_n(2)
        peer.close()
        await peer.closed.wait()
        assert await hub.publish("news", 5) == 1
        await probe.expect(("h", 5), timeout=WAIT)
        await local.stop()


# -- names --------------------------------------------------------------------


async def test_a_child_sees_the_names_of_the_system() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        db = await system.spawn(Member, "db", probe.ref, name="db")
        await probe.receive()  # started
        system.registry.register("db", db)
        refs = await _members(system, probe, [], local=0, remote=2)
        c0, c1 = refs["c0"], refs["c1"]
        assert await c0.ask(("whereis", "db")) == db  # registered before it started
        system.registry.register("later", db)
        assert await c0.ask(("whereis", "later")) == db  # and after
        # A name registered in a child is the system's.
        assert await c0.ask(("register", "svc")) is None
        assert system.registry.whereis("svc") == c0
        assert await c1.ask(("whereis", "svc")) == c0
        assert await c1.ask(("register", "svc")) == "taken"
        assert await c1.ask("names") == ["db", "later", "svc"]
        assert await c0.ask(("unregister", "svc")) == c0
        assert system.registry.whereis("svc") is None
        assert await c1.ask(("whereis", "svc")) is None
        system.registry.unregister("later")
        assert await c0.ask(("whereis", "later")) is None
        assert await c0.ask(("whereis", "db")) == db


async def test_a_killed_processs_names_are_released_everywhere() -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        specs = [
            ChildSpec(Member, "c0", probe.ref, name="c0", restart="temporary", placement=PLACEMENT),
            ChildSpec(Member, "c1", probe.ref, name="c1", placement=PLACEMENT, register_as="one"),
        ]
        sup = await system.spawn(Supervisor, specs, name="sup")
        await probe.receive_n(2)
        c0, c1 = await _running(sup, "c0"), await _running(sup, "c1")
        assert await c1.ask(("whereis", "one")) == c1  # a spawn option: known there too
        await c0.ask(("register", "zero"))
        assert await c1.ask(("whereis", "zero")) == c0
        watcher = await TestProbe.start(system)
        watcher.watch(c0)
        os.kill(await c0.ask("pid"), signal.SIGKILL)
        await watcher.expect(lambda m: isinstance(m, Terminated), timeout=WAIT)
        assert system.registry.whereis("zero") is None
        assert await c1.ask(("whereis", "zero")) is None
        # A restarted child gets its spawn option's name back, everywhere.
        watcher.watch(c1)
        os.kill(await c1.ask("pid"), signal.SIGKILL)
        await watcher.expect(lambda m: isinstance(m, Terminated), timeout=WAIT)
        new = await _running(sup, "c1", not_=c1)
        assert system.registry.whereis("one") == new
        assert await new.ask(("whereis", "one")) == new


async def test_names_over_any_peer(caplog: pytest.LogCaptureFixture) -> None:
    async with (
        actors.ActorSystem("hub") as hub,
        actors.ActorSystem("member") as member,
        _joined(hub, member) as peer,
    ):
        probe = await TestProbe.start(hub)
        here = await hub.spawn(Member, "h", probe.ref)
        there = await member.spawn(Member, "m", probe.ref)
        await probe.receive_n(2)
        hub.registry.register("h", here)
        assert await there.ask(("register", "m")) is None
        assert await member.publish("sync", 0) == 0  # a round trip: after the news
        assert hub.registry.whereis("m") == there
        assert member.registry.whereis("h") == here
        # Taken at the same moment on both sides: the keeper keeps the first,
        # and the other side learns it lost.
        hub.registry.register("x", here)
        member.registry.register("x", there)  # the news of "x" is not there yet
        assert member.registry.whereis("x") == there
        assert await member.publish("sync", 0) == 0
        assert hub.registry.whereis("x") == here
        assert member.registry.whereis("x") == here
        refused = [r for r in caplog.records if r.name == "actors.registry"]
        assert len(refused) == 1 and "registering 'x' for /user/member-1 was refused" in (
            refused[0].getMessage()
        )
        # Names of actors over there end with them, and with the connection.
        await there.stop()
        assert await member.publish("sync", 0) == 0
        assert hub.registry.whereis("m") is None
        other = await member.spawn(Member, "m2", probe.ref)
        await probe.receive()
        member.registry.register("m2", other)
        assert await member.publish("sync", 0) == 0
        assert hub.registry.whereis("m2") == other
        peer.close()
        await peer.closed.wait()
        assert hub.registry.whereis("m2") is None
        assert hub.registry.names() == {"h": here, "x": here}
