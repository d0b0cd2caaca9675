"""Topics: publish-subscribe, groups (point-to-point), pull subscriptions,
delivery rules, backpressure, dead letters, and membership that follows life.

Synchronisation is by asks (a reply comes after every message the asker sent
before it), events and ``anyio.wait_all_tasks_blocked``; never by sleeping.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from actors import (
    Actor,
    ActorRef,
    ActorStopped,
    ActorSystem,
    DeadLetter,
    GroupInfo,
    Mailbox,
    TopicInfo,
)

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Sync:
    """Asks a Collector for a copy of its log, after everything before it."""


class Collector(Actor):
    """Appends every message to ``log``, first thing in ``receive``.

    Optionally waits at ``gate`` before handling each message, checkpoints
    ``slow`` times after recording it, and sets ``reached`` once the log has
    ``at`` entries.
    """

    def __init__(
        self,
        log: list[Any],
        gate: anyio.Event | None = None,
        slow: int = 0,
        reached: anyio.Event | None = None,
        at: int = 0,
    ) -> None:
        self.log = log
        self.gate = gate
        self.slow = slow
        self.reached = reached
        self.at = at

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Sync):
            return list(self.log)
        self.log.append(message)
        if self.reached is not None and len(self.log) == self.at:
            self.reached.set()
        for _ in range(self.slow):
            await anyio.lowlevel.checkpoint()
        if self.gate is not None:
            await self.gate.wait()
        return None


async def collector(
    system: ActorSystem, name: str, mailbox: Mailbox | None = None, **kwargs: Any
) -> tuple[ActorRef, list[Any]]:
    log: list[Any] = []
    ref = await system.spawn(Collector, log, name=name, mailbox=mailbox, **kwargs)
    return ref, log


# -- publish-subscribe --------------------------------------------------------


async def test_every_plain_subscriber_gets_every_message(actor_system: ActorSystem) -> None:
    refs = [await collector(actor_system, f"s{i}") for i in range(3)]
    for ref, _ in refs:
        actor_system.subscribe("news", ref)
    assert [await actor_system.publish("news", i) for i in range(5)] == [3] * 5
    for ref, _ in refs:
        assert await ref.ask(Sync()) == [0, 1, 2, 3, 4]


async def test_wildcards_pick_the_matching_subscribers(actor_system: ActorSystem) -> None:
    subscribers = {
        pattern: await collector(actor_system, name)
        for name, pattern in [
            ("one", "orders.*"),
            ("rest", "orders.>"),
            ("exact", "orders.eu.created"),
            ("middle", "orders.*.created"),
            ("all", ">"),
        ]
    }
    for pattern, (ref, _) in subscribers.items():
        actor_system.subscribe(pattern, ref)
    assert await actor_system.publish("orders.eu", "a") == 3  # one, rest, all
    assert await actor_system.publish("orders.eu.created", "b") == 4  # rest, exact, middle, all
    assert await actor_system.publish("orders.us.created", "c") == 3  # rest, middle, all
    assert await actor_system.publish("orders", "d") == 1  # all
    expected = {
        "orders.*": ["a"],
        "orders.>": ["a", "b", "c"],
        "orders.eu.created": ["b"],
        "orders.*.created": ["b", "c"],
        ">": ["a", "b", "c", "d"],
    }
    for pattern, (ref, _) in subscribers.items():
        assert await ref.ask(Sync()) == expected[pattern], pattern


async def test_a_subscriber_never_gets_a_message_twice(actor_system: ActorSystem) -> None:
    ref, _ = await collector(actor_system, "greedy")
    for pattern in ("a.*", "a.>", ">", "a.b", "*.b"):
        actor_system.subscribe(pattern, ref)
    assert actor_system.subscribe("a.*", ref) is False  # the same subscription again
    assert await actor_system.publish("a.b", 1) == 1
    assert await ref.ask(Sync()) == [1]


# -- groups: point-to-point ---------------------------------------------------


@pytest.mark.parametrize(("members", "messages"), [(4, 400), (3, 1000), (1, 50)])
async def test_each_message_goes_to_one_member_round_robin(
    actor_system: ActorSystem, members: int, messages: int
) -> None:
    group = [await collector(actor_system, f"w{i}") for i in range(members)]
    for ref, _ in group:
        actor_system.subscribe("jobs", ref, group="workers")
    delivered = [await actor_system.publish("jobs", i) for i in range(messages)]
    assert delivered == [1] * messages
    logs = [await ref.ask(Sync()) for ref, _ in group]
    handled = Counter(m for log in logs for m in log)
    assert handled == Counter(range(messages))  # each exactly once
    for index, log in enumerate(logs):  # an even spread, in turn
        assert log == list(range(index, messages, members))


async def test_a_full_member_is_skipped_while_another_has_room(
    actor_system: ActorSystem,
) -> None:
    gate = anyio.Event()
    slow, slow_log = await collector(actor_system, "slow", Mailbox(2), gate=gate)
    fast, _ = await collector(actor_system, "fast")
    actor_system.subscribe("jobs", slow, group="w")
    actor_system.subscribe("jobs", fast, group="w")
    with anyio.fail_after(5):
        for i in range(40):  # never waits: "fast" always has room
            assert await actor_system.publish("jobs", i) == 1
    cell = slow._resolve()
    assert cell is not None
    assert len(slow_log) + len(cell.mailbox) <= 3  # one in hand, two queued
    gate.set()
    logs = await slow.ask(Sync()) + await fast.ask(Sync())
    assert sorted(logs) == list(range(40))


async def test_a_group_waits_only_when_every_member_is_full(actor_system: ActorSystem) -> None:
    gates = [anyio.Event(), anyio.Event()]
    members = [await collector(actor_system, f"m{i}", Mailbox(1), gate=gates[i]) for i in range(2)]
    for ref, _ in members:
        actor_system.subscribe("jobs", ref, group="w")
    published: list[int] = []

    async def publisher() -> None:
        for i in range(8):
            await actor_system.publish("jobs", i)
            published.append(i)

    await anyio.wait_all_tasks_blocked()  # both members wait for messages
    async with anyio.create_task_group() as tg:
        tg.start_soon(publisher)
        await anyio.wait_all_tasks_blocked()
        # Each member holds one message in hand and one in its mailbox.
        assert published == [0, 1, 2, 3]
        gates[0].set()  # m0 has room again, m1 never: the rest goes to m0
        await anyio.wait_all_tasks_blocked()
        assert published == list(range(8))
        gates[1].set()
    assert await members[0][0].ask(Sync()) == [0, 2, 4, 5, 6, 7]
    assert await members[1][0].ask(Sync()) == [1, 3]


async def test_a_plain_subscriber_applies_backpressure(actor_system: ActorSystem) -> None:
    gate = anyio.Event()
    ref, _ = await collector(actor_system, "slow", Mailbox(1), gate=gate)
    actor_system.subscribe("t", ref)
    published: list[int] = []

    async def publisher() -> None:
        for i in range(4):
            await actor_system.publish("t", i)
            published.append(i)

    async with anyio.create_task_group() as tg:
        tg.start_soon(publisher)
        await anyio.wait_all_tasks_blocked()
        assert published == [0, 1]  # one in hand, one queued, the third waits
        gate.set()
    assert await ref.ask(Sync()) == [0, 1, 2, 3]


async def test_groups_and_plain_subscribers_mixed(actor_system: ActorSystem) -> None:
    plain = [await collector(actor_system, f"p{i}") for i in range(2)]
    workers = [await collector(actor_system, f"w{i}") for i in range(2)]
    audit = [await collector(actor_system, "a0")]
    for ref, _ in plain:
        actor_system.subscribe("orders.>", ref)
    for ref, _ in workers:
        actor_system.subscribe("orders.*", ref, group="workers")
    actor_system.subscribe("orders.>", audit[0][0], group="audit")
    assert [await actor_system.publish("orders.eu", i) for i in range(10)] == [4] * 10
    assert await actor_system.publish("orders.eu.late", 10) == 3  # not orders.*
    for ref, _ in plain + audit:
        assert await ref.ask(Sync()) == list(range(11))
    assert await workers[0][0].ask(Sync()) == [0, 2, 4, 6, 8]
    assert await workers[1][0].ask(Sync()) == [1, 3, 5, 7, 9]
    assert actor_system.registry.topics() == [
        TopicInfo("orders.*", (), (GroupInfo("workers", ("/user/w0", "/user/w1")),)),
        TopicInfo(
            "orders.>",
            ("/user/p0", "/user/p1"),
            (GroupInfo("audit", ("/user/a0",)),),
        ),
    ]


async def test_a_group_copy_that_falls_on_a_recipient_is_not_doubled(
    actor_system: ActorSystem,
) -> None:
    # a is a plain subscriber and a member; when the group's turn falls on a,
    # a's plain copy is the group's copy.
    a, _ = await collector(actor_system, "a")
    b, _ = await collector(actor_system, "b")
    actor_system.subscribe("x", a)
    actor_system.subscribe("x", a, group="g")
    actor_system.subscribe("x", b, group="g")
    assert [await actor_system.publish("x", i) for i in range(4)] == [1, 2, 1, 2]
    assert await a.ask(Sync()) == [0, 1, 2, 3]
    assert await b.ask(Sync()) == [1, 3]


async def test_a_member_of_two_groups_gets_one_copy(actor_system: ActorSystem) -> None:
    a, _ = await collector(actor_system, "a")
    b, _ = await collector(actor_system, "b")
    actor_system.subscribe("x.*", a, group="g1")
    actor_system.subscribe("x.>", a, group="g2")
    actor_system.subscribe("x.>", b, group="g2")
    assert [await actor_system.publish("x.y", i) for i in range(4)] == [1, 2, 1, 2]
    assert await a.ask(Sync()) == [0, 1, 2, 3]
    assert await b.ask(Sync()) == [1, 3]


async def test_each_publishers_messages_arrive_in_order(actor_system: ActorSystem) -> None:
    x, _ = await collector(actor_system, "x")
    y, _ = await collector(actor_system, "y", Mailbox(3))
    z, _ = await collector(actor_system, "z", Mailbox(2), slow=2)
    actor_system.subscribe("fifo.>", x)
    actor_system.subscribe("fifo.*", y, group="g")
    actor_system.subscribe("fifo.*", z, group="g")

    async def publisher(p: int) -> None:
        for i in range(300):
            await actor_system.publish(f"fifo.p{p}", (p, i))

    async with anyio.create_task_group() as tg:
        for p in range(3):
            tg.start_soon(publisher, p)
    logs = {name: await ref.ask(Sync()) for name, ref in (("x", x), ("y", y), ("z", z))}
    assert len(logs["x"]) == 900
    assert sorted(logs["y"] + logs["z"]) == sorted(logs["x"])
    for log in logs.values():
        for p in range(3):
            mine = [i for q, i in log if q == p]
            assert mine == sorted(mine)


# -- unsubscribing, and membership that follows life --------------------------


@pytest.mark.parametrize("grouped", [False, True], ids=["plain", "group"])
async def test_unsubscribe_during_a_publish_storm(actor_system: ActorSystem, grouped: bool) -> None:
    total = 2000
    group = "g" if grouped else None
    reached = anyio.Event()
    leaver, leaver_log = await collector(
        actor_system, "leaver", Mailbox(4), slow=3, reached=reached, at=150
    )
    # In a group the publisher waits only when both are full: make that common.
    keeper, _ = await collector(actor_system, "keeper", Mailbox(4), slow=3 if grouped else 1)
    actor_system.subscribe("storm", leaver, group=group)
    actor_system.subscribe("storm", keeper, group=group)
    cell = leaver._resolve()
    assert cell is not None
    seen = -1

    async def storm() -> None:
        for i in range(total):
            await actor_system.publish("storm", i)

    async with anyio.create_task_group() as tg:
        tg.start_soon(storm)
        await reached.wait()
        # What reached the leaver so far: handled, or waiting in its mailbox.
        seen = len(leaver_log) + len(cell.mailbox)
        assert actor_system.unsubscribe("storm", leaver, group=group)
    left = await leaver.ask(Sync())
    kept = await keeper.ask(Sync())
    assert len(left) == seen  # nothing after unsubscribe returned, nothing lost
    assert left == sorted(left)
    if grouped:
        assert sorted(left + kept) == list(range(total))  # each handled once
        assert kept[-1] == total - 1
    else:
        assert left == list(range(seen))
        assert kept == list(range(total))


async def test_unsubscribe_calls_off_a_waiting_publish(actor_system: ActorSystem) -> None:
    gates = [anyio.Event(), anyio.Event()]
    a, _ = await collector(actor_system, "a", Mailbox(1), gate=gates[0])
    b, _ = await collector(actor_system, "b", Mailbox(1), gate=gates[1])
    actor_system.subscribe("plain", a)
    actor_system.subscribe("jobs", a, group="g")
    actor_system.subscribe("jobs", b, group="g")
    await anyio.wait_all_tasks_blocked()
    results: list[int] = []

    async def publish(topic: str, message: str) -> None:
        results.append(await actor_system.publish(topic, message))

    async with actor_system.dead_letters() as letters, anyio.create_task_group() as tg:
        await actor_system.publish("jobs", "a1")  # a: in hand
        await actor_system.publish("jobs", "b1")  # b: in hand
        await actor_system.publish("jobs", "a2")  # a: queued
        await actor_system.publish("jobs", "b2")  # b: queued
        tg.start_soon(publish, "jobs", "either")  # waits for a or b
        tg.start_soon(publish, "plain", "a only")  # waits for a
        await anyio.wait_all_tasks_blocked()
        assert results == []
        assert actor_system.unsubscribe("plain", a)
        assert actor_system.unsubscribe("jobs", a, group="g")
        await anyio.wait_all_tasks_blocked()
        assert results == [0]  # the plain publish was called off: nobody took it
        gates[0].set()  # a has room now, but it left: nothing more reaches it
        await anyio.wait_all_tasks_blocked()
        assert results == [0]
        gates[1].set()
    assert results == [0, 1]
    assert await a.ask(Sync()) == ["a1", "a2"]
    assert await b.ask(Sync()) == ["b1", "b2", "either"]
    letter = letters.receive_nowait()
    assert (letter.message, letter.reason) == ("a only", "no subscribers")


async def test_a_publish_waiting_on_one_subscriber_skips_one_that_left(
    actor_system: ActorSystem,
) -> None:
    gate = anyio.Event()
    first, _ = await collector(actor_system, "first", Mailbox(1), gate=gate)
    second, _ = await collector(actor_system, "second")
    actor_system.subscribe("t", first)  # delivered to first, then second
    actor_system.subscribe("t", second)
    await anyio.wait_all_tasks_blocked()
    results: list[int] = []

    async def publish(message: int) -> None:
        results.append(await actor_system.publish("t", message))

    async with anyio.create_task_group() as tg:
        await publish(0)  # first: in hand
        await publish(1)  # first: queued
        tg.start_soon(publish, 2)  # waits for room in first
        await anyio.wait_all_tasks_blocked()
        assert actor_system.unsubscribe("t", second)
        gate.set()
    assert results == [2, 2, 1]
    assert await first.ask(Sync()) == [0, 1, 2]
    assert await second.ask(Sync()) == [0, 1]  # 2 came after it left


async def test_a_stopped_actor_leaves_every_group(actor_system: ActorSystem) -> None:
    a, _ = await collector(actor_system, "a")
    b, _ = await collector(actor_system, "b")
    for ref in (a, b):
        actor_system.subscribe("jobs", ref, group="w")
        actor_system.subscribe("news.>", ref)
    await a.stop()
    assert actor_system.registry.topics() == [
        TopicInfo("jobs", (), (GroupInfo("w", ("/user/b",)),)),
        TopicInfo("news.>", ("/user/b",), ()),
    ]
    assert [await actor_system.publish("jobs", i) for i in range(3)] == [1, 1, 1]
    assert await b.ask(Sync()) == [0, 1, 2]
    await b.stop()
    assert actor_system.registry.topics() == []
    async with actor_system.dead_letters() as letters:
        assert await actor_system.publish("jobs", "late") == 0
        letter = letters.receive_nowait()
    assert letter == DeadLetter("late", None, "no subscribers", "jobs")


async def test_a_publisher_waiting_on_a_stopping_member_moves_on(
    actor_system: ActorSystem,
) -> None:
    gates = [anyio.Event(), anyio.Event()]
    a, _ = await collector(actor_system, "a", Mailbox(1), gate=gates[0])
    b, _ = await collector(actor_system, "b", Mailbox(1), gate=gates[1])
    actor_system.subscribe("jobs", a, group="w")
    actor_system.subscribe("jobs", b, group="w")
    await anyio.wait_all_tasks_blocked()  # both members wait for messages
    async with actor_system.dead_letters() as letters, anyio.create_task_group() as tg:
        published: list[int] = []

        async def publisher() -> None:
            for i in range(5):
                published.append(await actor_system.publish("jobs", i))

        tg.start_soon(publisher)
        await anyio.wait_all_tasks_blocked()
        assert published == [1, 1, 1, 1]
        tg.start_soon(a.kill)  # its queued message becomes a dead letter
        await anyio.wait_all_tasks_blocked()
        gates[1].set()
    assert published == [1] * 5
    assert await b.ask(Sync()) == [1, 3, 4]
    letter = letters.receive_nowait()
    assert (letter.message, letter.recipient, letter.reason) == (2, a, "stopped")


async def test_unsubscribe_reports_whether_it_removed(actor_system: ActorSystem) -> None:
    ref, _ = await collector(actor_system, "a")
    assert not actor_system.unsubscribe("x", ref)
    actor_system.subscribe("x", ref, group="g")
    assert not actor_system.unsubscribe("x", ref)  # not the plain one
    assert actor_system.unsubscribe("x", ref, group="g")
    assert actor_system.registry.subscriptions(ref) == []
    await ref.stop()
    assert not actor_system.unsubscribe("x", ref)


# -- the actor's own view -----------------------------------------------------


class Relay(Actor):
    """Subscribes in on_start; republishes what it gets to "out"."""

    async def on_start(self) -> None:
        assert self.context.subscribe("in.*", group="relays")

    async def receive(self, message: Any) -> Any:
        if message == "leave":
            return self.context.unsubscribe("in.*", group="relays")
        return await self.context.publish("out", message)


async def test_actors_subscribe_and_publish_through_their_context(
    actor_system: ActorSystem,
) -> None:
    relay = await actor_system.spawn(Relay, name="relay")
    async with actor_system.subscription("out") as out:
        assert await actor_system.publish("in.a", "hello") == 1
        assert await out.receive() == "hello"
        assert await relay.ask("leave") is True
        assert await actor_system.publish("in.a", "anyone?") == 0


# -- overflow policies ------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "results", "handled", "reason"),
    [
        ("drop_newest", [1, 1, 0, 0], [0, 1], "mailbox full: dropped newest"),
        ("drop_oldest", [1, 1, 1, 1], [0, 3], "mailbox full: dropped oldest"),
        ("fail", [1, 1, 0, 0], [0, 1], "mailbox full"),
    ],
)
async def test_overflow_policies_apply_without_raising(
    actor_system: ActorSystem, policy: Any, results: list[int], handled: list[int], reason: str
) -> None:
    gate = anyio.Event()
    ref, _ = await collector(actor_system, "small", Mailbox(1, policy), gate=gate)
    actor_system.subscribe("t", ref)
    await anyio.wait_all_tasks_blocked()  # the actor waits for a message
    async with actor_system.dead_letters() as letters:
        # 0 goes to the waiting actor, 1 fills the mailbox, 2 and 3 overflow.
        assert [await actor_system.publish("t", i) for i in range(4)] == results
        dropped = [letters.receive_nowait(), letters.receive_nowait()]
    assert {letter.reason for letter in dropped} == {reason}
    assert {letter.topic for letter in dropped} == {"t"}
    gate.set()
    await anyio.wait_all_tasks_blocked()
    assert await ref.ask(Sync()) == handled
    assert sorted(handled + [letter.message for letter in dropped]) == [0, 1, 2, 3]


# -- bad input ----------------------------------------------------------------


async def test_bad_input_gets_clear_errors(actor_system: ActorSystem) -> None:
    ref, _ = await collector(actor_system, "a")
    with pytest.raises(ValueError, match=r"cannot publish to 'orders\.\*'"):
        await actor_system.publish("orders.*", 1)
    with pytest.raises(ValueError, match="token 2 is empty"):
        await actor_system.publish("orders..eu", 1)
    with pytest.raises(ValueError, match="'>' must be the last token"):
        actor_system.subscribe("orders.>.eu", ref)
    with pytest.raises(ValueError, match="invalid group name"):
        actor_system.subscribe("orders", ref, group="two words")
    with pytest.raises(TypeError, match="group name must be a str"):
        actor_system.subscribe("orders", ref, group=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs an ActorRef"):
        actor_system.subscribe("orders", "a")  # type: ignore[arg-type]
    await ref.stop()
    with pytest.raises(ActorStopped, match="cannot subscribe to 'orders': /user/a"):
        actor_system.subscribe("orders", ref)
    assert actor_system.registry.topics() == []
