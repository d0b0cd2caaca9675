"""Actors and refs: lifecycle, ask outcomes, mailboxes, ordering, names.

Runs on the virtual clock (trio's ``MockClock`` and the asyncio twin), so ask
timeouts cost no real time and "promptly" can be measured: an ask that ended
before its timeout did not wait for it.
"""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest

import actors
from actors import (
    Actor,
    ActorFailed,
    ActorRef,
    ActorsError,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    DeadLetter,
    Mailbox,
    MailboxFull,
    NameTaken,
    Terminated,
)
from actors._channel import YIELD_EVERY
from actors._mailbox import OverflowPolicy
from actors.testing import TestProbe

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


# -- actors used below --------------------------------------------------------


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        return message


class Forward(Actor):
    """Forwards every message to ``to``; ``("wait", event)`` blocks on the event
    first, ``("sleep", s)`` works for ``s`` seconds (of virtual time)."""

    def __init__(self, to: ActorRef) -> None:
        self.to = to

    async def receive(self, message: Any) -> Any:
        match message:
            case ("wait", anyio.Event() as event):
                await event.wait()
            case ("sleep", float() as seconds):
                await anyio.sleep(seconds)
            case _:
                await self.to.tell(message)
        return message


class Crash(Actor):
    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("boom")
        return message


class Tolerant(Actor):
    """A parent that reports its children's failures instead of failing."""

    def __init__(self, to: ActorRef) -> None:
        self.to = to

    async def receive(self, message: Any) -> Any:
        factory, name = message
        return await self.context.spawn(factory, name=name)

    async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
        await self.to.tell(("child failed", child, error))


async def blocked(system: ActorSystem, ref: ActorRef) -> anyio.Event:
    """Park ``ref`` (a ``Forward``) on an event in ``receive``; return it."""
    event = anyio.Event()
    await ref.tell(("wait", event))
    await anyio.wait_all_tasks_blocked()
    return event


async def letters_now(letters: actors.Channel[DeadLetter]) -> list[DeadLetter]:
    got = []
    while len(letters):
        got.append(letters.receive_nowait())
    return got


# -- lifecycle ----------------------------------------------------------------


class Lifecycle(Actor):
    def __init__(self, log: list[str]) -> None:
        self.log = log
        log.append("init")

    async def on_start(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.log.append("on_start")

    async def receive(self, message: Any) -> Any:
        self.log.append(f"receive {message}")
        return message

    async def on_stop(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.log.append("on_stop")


async def test_hooks_run_in_order_and_spawn_and_stop_wait_for_them() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        ref = await system.spawn(Lifecycle, log)
        assert log == ["init", "on_start"]
        await ref.tell("a")
        assert await ref.ask("b") == "b"
        await ref.stop()
        assert log == ["init", "on_start", "receive a", "receive b", "on_stop"]
        await ref.stop()  # already stopped: returns at once
    assert log.count("on_stop") == 1


class Recorded(Actor):
    instances: ClassVar[list[Recorded]] = []

    def __init__(self) -> None:
        self.count = 0
        self.built_in_task = anyio.get_current_task().name
        self.ref_in_init = self.ref
        Recorded.instances.append(self)

    async def receive(self, message: Any) -> Any:
        self.count += 1
        return self.count


async def test_every_spawn_builds_a_fresh_instance_inside_the_actor_task() -> None:
    Recorded.instances = []
    async with ActorSystem() as system:
        first = await system.spawn(Recorded, name="r")
        assert await first.ask("+") == 1
        assert await first.ask("+") == 2
        await first.stop()
        second = await system.spawn(Recorded, name="r")
        assert await second.ask("+") == 1  # fresh state
    one, two = Recorded.instances
    assert one is not two
    assert one.built_in_task == two.built_in_task == "/user/r"
    assert one.ref_in_init == first
    assert two.ref_in_init == second


class Concurrency(Actor):
    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.handled = 0

    async def receive(self, message: Any) -> Any:
        if message == "stats":
            return self.peak, self.handled
        self.active += 1
        self.peak = max(self.peak, self.active)
        await anyio.lowlevel.checkpoint()
        await anyio.sleep(0.01)
        self.active -= 1
        self.handled += 1
        return None


async def test_receive_handles_one_message_at_a_time() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Concurrency)
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(ref.tell, i)
                tg.start_soon(ref.ask, i)
        assert await ref.ask("stats") == (1, 40)


async def test_context_knows_system_parent_and_children() -> None:
    class Parent(Actor):
        async def on_start(self) -> None:
            await self.context.spawn(Echo, name="kid")
            await self.context.spawn(Echo, name="kid2")

        async def receive(self, message: Any) -> Any:
            ctx = self.context
            kid = ctx.child("kid")
            assert kid is not None
            assert ctx.child("nobody") is None
            return ctx.system, ctx.parent, ctx.self, [c.path for c in ctx.children], kid

    async with ActorSystem() as system:
        parent = await system.spawn(Parent, name="p")
        sys_, grandparent, me, children, kid = await parent.ask("?")
        assert sys_ is system
        assert grandparent is None
        assert me == parent
        assert children == ["/user/p/kid", "/user/p/kid2"]
        assert kid.path == "/user/p/kid"
        assert kid.name == "kid"
        assert await kid.ask("hi") == "hi"


async def test_an_actor_not_spawned_has_no_ref() -> None:
    with pytest.raises(ActorsError, match=r"not running.*spawn"):
        _ = Echo().ref


# -- ask ----------------------------------------------------------------------


async def test_ask_returns_what_receive_returned() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Echo)
        assert await ref.ask({"a": 1}) == {"a": 1}
        assert await ref.ask(None, timeout=None) is None


async def test_ask_times_out_with_ask_timeout_which_is_a_timeout_error() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref)
        release = await blocked(system, ref)
        start = anyio.current_time()
        with pytest.raises(AskTimeout, match=r"/user/.* did not answer str .* within 2") as info:
            await ref.ask("late", timeout=2)
        assert isinstance(info.value, TimeoutError)
        assert anyio.current_time() - start == pytest.approx(2)
        release.set()


async def test_each_pending_ask_times_out_at_its_own_deadline() -> None:
    # One timer per system keeps every ask's deadline: a shorter timeout
    # asked after longer ones must still fire first, and each on time.
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref)
        release = await blocked(system, ref)
        fired: dict[float, float] = {}

        async def ask(timeout: float) -> None:
            start = anyio.current_time()
            with pytest.raises(AskTimeout):
                await ref.ask("late", timeout=timeout)
            fired[timeout] = anyio.current_time() - start

        async with anyio.create_task_group() as tg:
            for timeout in (30.0, 10.0, 20.0, 1.0, 10.0):
                tg.start_soon(ask, timeout)
                await anyio.wait_all_tasks_blocked()  # the timer sleeps meanwhile
        assert fired == pytest.approx({30.0: 30.0, 10.0: 10.0, 20.0: 20.0, 1.0: 1.0})
        release.set()
        assert await ref.ask("after", timeout=5) == "after"


class Delayed(Actor):
    """Answers ``(i, seconds)`` with ``i`` after ``seconds`` of virtual time."""

    async def receive(self, message: Any) -> Any:
        i, seconds = message
        await anyio.sleep(seconds)
        return i


@pytest.mark.parametrize("seed", range(3))
async def test_many_asks_with_random_timeouts_each_end_on_time(seed: int) -> None:
    # 200 concurrent asks, each to an actor of its own, with timeouts and
    # answer delays drawn at random: each ask gets its answer if it comes
    # before its deadline and AskTimeout exactly at the deadline otherwise,
    # and no deadline is left registered.
    rng = random.Random(seed)
    async with ActorSystem() as system:
        plans = [(rng.uniform(0.1, 5), rng.uniform(0.1, 5)) for _ in range(200)]
        refs = [await system.spawn(Delayed) for _ in plans]
        start = anyio.current_time()
        got: list[tuple[str, float] | None] = [None] * len(plans)

        async def ask(k: int, timeout: float, delay: float) -> None:
            try:
                assert await refs[k].ask((k, delay), timeout=timeout) == k
                got[k] = ("answer", anyio.current_time() - start)
            except AskTimeout:
                got[k] = ("timeout", anyio.current_time() - start)

        async with anyio.create_task_group() as tg:
            for k, (timeout, delay) in enumerate(plans):
                tg.start_soon(ask, k, timeout, delay)
        for (timeout, delay), outcome in zip(plans, got, strict=True):
            expected = ("answer", delay) if delay < timeout else ("timeout", timeout)
            assert outcome is not None
            assert outcome[0] == expected[0]
            assert outcome[1] == pytest.approx(expected[1], abs=1e-6)
        assert system._deadlines.pending == {}


async def test_ask_raises_actor_stopped_promptly_when_the_target_stops_meanwhile() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref)
        await ref.tell(("sleep", 1.0))  # one second of work in hand
        outcome: list[BaseException] = []

        async def ask() -> None:
            try:
                await ref.ask("queued", timeout=10)
            except ActorStopped as exc:
                outcome.append(exc)

        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            await ref.stop()
        elapsed = anyio.current_time() - start
        assert len(outcome) == 1
        assert "/user/forward" in str(outcome[0])
        assert 0.9 < elapsed < 2  # the work in hand, not the 10 s timeout
        await probe.expect_no_message()


async def test_ask_raises_actor_stopped_at_once_when_the_target_is_already_stopped() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Echo)
        unpickled = pickle.loads(pickle.dumps(ref))
        await ref.stop()
        start = anyio.current_time()
        with pytest.raises(ActorStopped):
            await ref.ask("anyone?", timeout=10)
        with pytest.raises(ActorStopped):
            await unpickled.ask("anyone?", timeout=10)
        assert anyio.current_time() == start


async def test_ask_raises_actor_stopped_when_the_target_is_killed_mid_message() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref)
        async with anyio.create_task_group() as tg:

            async def ask() -> None:
                with pytest.raises(ActorStopped):
                    await ref.ask(("wait", anyio.Event()), timeout=10)

            tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            start = anyio.current_time()
            await ref.kill()
        assert anyio.current_time() == start


async def test_ask_raises_actor_failed_with_the_original_error_as_cause() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        parent = await system.spawn(Tolerant, probe.ref, name="parent")
        child = await parent.ask((Crash, "crash"))
        with pytest.raises(ActorFailed, match="/user/parent/crash failed handling str") as info:
            await child.ask("boom")
        cause = info.value.__cause__
        assert isinstance(cause, ValueError)
        assert str(cause) == "boom"
        _, who, error = await probe.expect(lambda m: m[0] == "child failed")
        assert who == child
        assert error is cause
        with pytest.raises(ActorStopped):  # the crashed actor is gone
            await child.ask("again")


async def test_a_late_reply_is_dropped_counted_and_not_a_dead_letter() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref)
        release = anyio.Event()
        async with system.dead_letters() as letters:
            with pytest.raises(AskTimeout):
                await ref.ask(("wait", release), timeout=1)
            assert system.statistics().late_replies == 0
            release.set()
            assert await ref.ask("sync") == "sync"  # the late reply came before
            assert system.statistics().late_replies == 1
            # A cancelled ask closes its slot just the same.
            release2 = anyio.Event()
            with anyio.move_on_after(1):
                await ref.ask(("wait", release2), timeout=None)
            release2.set()
            assert await ref.ask("sync") == "sync"
            stats = system.statistics()
            assert stats.late_replies == 2
            assert stats.dead_letters == 0
            assert await letters_now(letters) == []
        await probe.receive_n(2)  # the two "sync" messages were forwarded
        await probe.expect_no_message()


# -- mailboxes ----------------------------------------------------------------


async def test_tell_nowait_raises_mailbox_full_which_is_would_block() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref, mailbox=Mailbox(1), name="small")
        release = await blocked(system, ref)
        ref.tell_nowait(1)
        with pytest.raises(MailboxFull, match="/user/small is full") as info:
            ref.tell_nowait(2)
        assert isinstance(info.value, anyio.WouldBlock)
        release.set()
        await probe.expect(1)
        await probe.expect_no_message()


@dataclass(frozen=True)
class Overflow:
    policy: OverflowPolicy
    delivered: list[str]
    dead: list[tuple[str, str]]  # (message, words in the reason)
    raises: bool = False


OVERFLOWS = [
    Overflow("block", ["m1", "m2", "m3"], []),
    Overflow("drop_newest", ["m1", "m2"], [("m3", "newest")]),
    Overflow("drop_oldest", ["m2", "m3"], [("m1", "oldest")]),
    Overflow("fail", ["m1", "m2"], [], raises=True),
]


@pytest.mark.parametrize("case", OVERFLOWS, ids=lambda c: c.policy)
async def test_overflow_policies(case: Overflow) -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref, mailbox=Mailbox(2, case.policy))
        release = await blocked(system, ref)
        async with system.dead_letters() as letters, anyio.create_task_group() as tg:
            await ref.tell("m1")
            await ref.tell("m2")
            sent = anyio.Event()

            async def third() -> None:
                if case.raises:
                    with pytest.raises(MailboxFull, match="'fail'"):
                        await ref.tell("m3")
                else:
                    await ref.tell("m3")
                sent.set()

            tg.start_soon(third)
            await anyio.wait_all_tasks_blocked()
            # Only "block" waits for room; the others decide at once.
            assert sent.is_set() == (case.policy != "block")
            dead = await letters_now(letters)
            assert [(d.message, d.recipient) for d in dead] == [(m, ref) for m, _ in case.dead]
            for letter, (_, words) in zip(dead, case.dead, strict=True):
                assert words in letter.reason
            release.set()
        assert await probe.receive_n(len(case.delivered)) == case.delivered
        await probe.expect_no_message()
        assert system.statistics().dead_letters == len(case.dead)


async def test_an_ask_dropped_by_the_overflow_policy_raises_mailbox_full() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref, mailbox=Mailbox(1, "drop_newest"))
        release = await blocked(system, ref)
        await ref.tell("m1")
        start = anyio.current_time()
        async with system.dead_letters() as letters:
            with pytest.raises(MailboxFull, match="dropped str"):
                await ref.ask("m2", timeout=10)
            assert [d.message for d in await letters_now(letters)] == ["m2"]
        assert anyio.current_time() == start
        release.set()
        await probe.expect("m1")


async def test_drop_oldest_keeps_the_newest_message_while_a_system_message_waits() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        other = await system.spawn(Echo)
        ref = await system.spawn(Forward, probe.ref, mailbox=Mailbox(2, "drop_oldest"))
        system._watch(other, ref)  # a Terminated will wait in the system lane
        release = await blocked(system, ref)
        await ref.tell("m1")
        await ref.tell("m2")
        await other.stop()
        async with system.dead_letters() as letters:
            await ref.tell("m3")
            assert [d.message for d in await letters_now(letters)] == ["m1"]
        release.set()
        assert await probe.receive_n(3) == [Terminated(other, None), "m2", "m3"]


@pytest.mark.parametrize("policy", ["block", "drop_newest", "drop_oldest", "fail"])
async def test_a_system_message_takes_no_user_room_while_the_actor_wakes(
    policy: OverflowPolicy,
) -> None:
    # Regression: a system message arriving between the parked actor being
    # handed a message and running again queued a wake-up token in the user
    # buffer. With capacity 1 the next tell_nowait found the mailbox full:
    # drop_oldest raised WouldBlock("nothing to drop"), drop_newest dropped
    # the message, block and fail refused it.
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        gone = await system.spawn(Echo)
        await gone.stop()
        ref = await system.spawn(Forward, probe.ref, mailbox=Mailbox(1, policy))
        await anyio.wait_all_tasks_blocked()  # parked on its empty mailbox
        async with system.dead_letters() as letters:
            ref.tell_nowait("m1")  # handed to the parked actor, which has not run yet
            system._watch(gone, ref)  # Terminated arrives now
            ref.tell_nowait("m2")  # the one user slot is free
            assert await probe.receive_n(3) == ["m1", Terminated(gone, None), "m2"]
            assert await letters_now(letters) == []


async def test_the_default_mailbox_is_bounded_and_blocks() -> None:
    assert Mailbox() == Mailbox(actors.DEFAULT_MAILBOX_CAPACITY, "block")
    assert actors.DEFAULT_MAILBOX_CAPACITY == 1000
    async with ActorSystem() as system:
        ref = await system.spawn(Echo)
        assert system.tree().actors[0].mailbox_capacity == 1000
        await ref.stop()


# -- ordering -----------------------------------------------------------------


@pytest.mark.parametrize(
    "handled", [0, 1, YIELD_EVERY - 1, YIELD_EVERY, YIELD_EVERY + 1, 2 * YIELD_EVERY]
)
async def test_stop_reaches_an_actor_whatever_it_has_handled(handled: int) -> None:
    # Regression: a stop arriving while the mailbox loop sat at its fairness
    # checkpoint (every YIELD_EVERY receives, right after answering an ask)
    # got no wake-up and waited for the shutdown timeout (virtual time: the
    # deadline below fires at once if the stop is stuck).
    async with ActorSystem() as system:
        ref = await system.spawn(Echo, shutdown=10)
        for i in range(handled):
            assert await ref.ask(i) == i
        with anyio.fail_after(1):
            await ref.stop()


async def test_stop_overtakes_queued_messages_which_become_dead_letters() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref, name="busy")
        release = await blocked(system, ref)
        await ref.tell("u1")
        await ref.tell("u2")
        async with system.dead_letters() as letters, anyio.create_task_group() as tg:
            tg.start_soon(ref.stop)
            await anyio.wait_all_tasks_blocked()
            release.set()
        dead = await letters_now(letters)
        assert [(d.message, d.recipient, d.reason) for d in dead] == [
            ("u1", ref, "stopped"),
            ("u2", ref, "stopped"),
        ]
        await probe.expect_no_message()


async def test_terminated_overtakes_queued_user_messages() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        other = await system.spawn(Echo)
        ref = await system.spawn(Forward, probe.ref)
        system._watch(other, ref)
        release = await blocked(system, ref)
        await ref.tell("u1")
        await ref.tell("u2")
        await other.stop()
        release.set()
        assert await probe.receive_n(3) == [Terminated(other, None), "u1", "u2"]


async def test_messages_from_one_sender_arrive_in_send_order() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref, mailbox=Mailbox(3))

        async def sender(who: str) -> None:
            for i in range(50):
                if i % 3:
                    await ref.tell((who, i))
                else:
                    await ref.ask((who, i))

        async with anyio.create_task_group() as tg:
            for who in "abcd":
                tg.start_soon(sender, who)
        got = await probe.receive_n(200)
        for who in "abcd":
            assert [i for w, i in got if w == who] == list(range(50))


# -- refs ---------------------------------------------------------------------


async def test_refs_are_equal_and_hash_alike_per_incarnation() -> None:
    async with ActorSystem() as system:
        first = await system.spawn(Echo, name="a")
        again = pickle.loads(pickle.dumps(first))
        assert again == first
        assert hash(again) == hash(first)
        assert len({first, again}) == 1
        assert first != "a"
        await first.stop()
        second = await system.spawn(Echo, name="a")
        assert second.path == first.path == "/user/a"
        assert second.name == "a"
        assert second != first
        assert len({first, second}) == 2
        assert "/user/a" in repr(second)


async def test_a_pickled_ref_works_in_the_same_system() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Echo, name="echo")
        data = pickle.dumps(ref)
        assert b"Cell" not in data  # a plain address
        copy = pickle.loads(data)
        assert await copy.ask("hi") == "hi"
        await copy.tell("fire and forget")
        await copy.stop()
        with pytest.raises(ActorStopped):
            await ref.ask("gone")


async def test_a_ref_to_a_stopped_incarnation_never_reaches_its_successor() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        old = await system.spawn(Forward, probe.ref, name="w")
        old_bytes = pickle.dumps(old)
        await old.stop()
        new = await system.spawn(Forward, probe.ref, name="w")
        async with system.dead_letters() as letters:
            await old.tell("to old")
            pickle.loads(old_bytes).tell_nowait("to old, unpickled")
            with pytest.raises(ActorStopped):
                await pickle.loads(old_bytes).ask("ask old", timeout=10)
            dead = await letters_now(letters)
        assert [(d.message, d.recipient) for d in dead] == [
            ("to old", old),
            ("to old, unpickled", old),
            ("ask old", old),
        ]
        await new.tell("to new")
        await probe.expect("to new")
        await probe.expect_no_message()


async def test_tell_to_a_stopped_actor_never_raises() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Echo, mailbox=Mailbox(1, "fail"))
        await ref.stop()
        await ref.tell(1)
        ref.tell_nowait(2)
        assert system.statistics().dead_letters == 2


# -- names --------------------------------------------------------------------


async def test_names_are_unique_among_siblings() -> None:
    class Parent(Actor):
        async def receive(self, message: Any) -> Any:
            try:
                return await self.context.spawn(Echo, name=message)
            except NameTaken as exc:
                return exc  # answer the error rather than crash

    async with ActorSystem() as system:
        await system.spawn(Echo, name="x")
        with pytest.raises(NameTaken, match="/user/x is already taken"):
            await system.spawn(Echo, name="x")
        parent = await system.spawn(Parent, name="p")
        kid = await parent.ask("x")  # another parent: no clash
        assert kid.path == "/user/p/x"
        error = await parent.ask("x")
        assert isinstance(error, NameTaken)
        assert "/user/p/x is already taken" in str(error)
        assert isinstance(NameTaken(), ActorsError)


async def test_a_name_is_free_again_once_its_actor_has_stopped() -> None:
    async with ActorSystem() as system:
        first = await system.spawn(Echo, name="x")
        await first.stop()
        second = await system.spawn(Echo, name="x")
        assert second.path == "/user/x"
        assert await second.ask(1) == 1


async def test_anonymous_actors_get_unique_names_from_their_class() -> None:
    async with ActorSystem() as system:
        refs = [await system.spawn(Echo) for _ in range(3)]
        names = [ref.name for ref in refs]
        assert len(set(names)) == 3
        assert all(name.startswith("echo-") for name in names)
        assert all(ref.path == f"/user/{ref.name}" for ref in refs)


async def test_ask_timeout_covers_waiting_for_mailbox_room() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref, mailbox=Mailbox(1))
        release = await blocked(system, ref)
        await ref.tell("fills the mailbox")
        with anyio.fail_after(100):  # fail, not hang, if the timeout is ignored
            start = anyio.current_time()
            with pytest.raises(AskTimeout):
                await ref.ask("no room", timeout=2)
            assert anyio.current_time() - start == pytest.approx(2)
        release.set()
        await probe.expect("fills the mailbox")
        await probe.expect_no_message()  # the timed-out ask was never queued


async def test_senders_waiting_for_room_are_released_when_the_actor_stops() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Forward, probe.ref, mailbox=Mailbox(1))
        release = await blocked(system, ref)
        await ref.tell("queued")
        outcomes: list[str] = []

        async def tell() -> None:
            await ref.tell("waiting tell")
            outcomes.append("tell returned")

        async def ask() -> None:
            with pytest.raises(ActorStopped):
                await ref.ask("waiting ask", timeout=10)
            outcomes.append("ask stopped")

        async with system.dead_letters() as letters, anyio.create_task_group() as tg:
            tg.start_soon(tell)
            tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            assert outcomes == []
            start = anyio.current_time()
            tg.start_soon(ref.stop)
            await anyio.wait_all_tasks_blocked()
            release.set()
        assert anyio.current_time() - start < 1
        assert sorted(outcomes) == ["ask stopped", "tell returned"]
        dead = {d.message for d in await letters_now(letters)}
        assert dead == {"queued", "waiting tell", "waiting ask"}
        await probe.expect_no_message()


async def test_a_child_failure_overtakes_queued_user_messages() -> None:
    class Parent(Tolerant):
        async def receive(self, message: Any) -> Any:
            match message:
                case ("wait", anyio.Event() as event):
                    await event.wait()
                case (type() as factory, str() as name):
                    return await super().receive((factory, name))
                case _:
                    await self.to.tell(message)
            return None

    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        parent = await system.spawn(Parent, probe.ref)
        child = await parent.ask((Crash, "crash"))
        release = anyio.Event()
        await parent.tell(("wait", release))
        await parent.tell("u1")
        with pytest.raises(ActorFailed):
            await child.ask("boom")
        release.set()
        first, second = await probe.receive_n(2)
        assert first[:2] == ("child failed", child)
        assert second == "u1"
