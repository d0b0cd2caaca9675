"""The testing kit: ``TestProbe``, the ``actor_system`` fixture, virtual time."""

from __future__ import annotations

import asyncio
import re
import textwrap
from typing import Any

import anyio
import pytest

import actors
from actors import Actor, ActorSystem, Terminated
from actors.testing import TestProbe, VirtualClockEventLoop, virtual_time

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return virtual_time(request.param)


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        return message


def is_even(message: Any) -> bool:
    return isinstance(message, int) and message % 2 == 0


# -- TestProbe ----------------------------------------------------------------


async def test_expect_matches_a_value_a_predicate_or_a_class() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system, name="probe")
        assert probe.ref.path == "/user/probe"
        for message in ("hello", 4, 2.5):
            await probe.ref.tell(message)
        assert await probe.expect("hello") == "hello"
        assert await probe.expect(is_even) == 4
        assert await probe.expect(float) == 2.5


@pytest.mark.parametrize(
    ("expected", "words"),
    [
        ("goodbye", "/user/probe expected 'goodbye', got 'hello'"),
        (is_even, "/user/probe expected a message satisfying 'is_even', got 'hello'"),
        (int, "/user/probe expected an instance of int, got 'hello'"),
    ],
)
async def test_a_failed_expect_says_what_was_expected_and_what_came(
    expected: Any, words: str
) -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system, name="probe")
        await probe.ref.tell("hello")
        with pytest.raises(AssertionError, match=re.escape(words)):
            await probe.expect(expected)


async def test_expect_times_out_with_a_clear_message() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system, name="probe")
        start = anyio.current_time()
        with pytest.raises(AssertionError, match="/user/probe received nothing within 7 s"):
            await probe.expect("anything", timeout=7)
        assert anyio.current_time() - start == pytest.approx(7)


async def test_expect_no_message() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system, name="probe")
        await probe.expect_no_message(within=5)
        await probe.ref.tell("surprise")
        with pytest.raises(AssertionError, match="/user/probe expected no message, got 'surprise'"):
            await probe.expect_no_message()


async def test_receive_n() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system, name="probe")
        for i in range(4):
            await probe.ref.tell(i)
        assert await probe.receive_n(3) == [0, 1, 2]
        with pytest.raises(AssertionError, match=r"received 1 of 2 messages within 1 s: \[3\]"):
            await probe.receive_n(2, timeout=1)
        # What came too late for the batch is not lost: it is still first in line.
        assert await probe.expect(3) == 3


async def test_a_cancelled_receive_n_gives_its_messages_back() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        await probe.ref.tell("a")
        await probe.ref.tell("b")
        with anyio.move_on_after(1):
            await probe.receive_n(3, timeout=60)
        assert await probe.receive_n(2) == ["a", "b"]


async def test_a_probe_answers_asks_with_its_reply() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        assert await probe.ref.ask("q") is None
        probe.reply = "fixed"
        assert await probe.ref.ask("q") == "fixed"
        probe.reply = lambda m: f"re: {m}"
        assert await probe.ref.ask("q") == "re: q"
        assert await probe.receive_n(3) == ["q", "q", "q"]
        assert "0 unread" in repr(probe)


async def test_probes_are_watchers() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Echo)
        probe.watch(ref)
        await ref.stop()
        assert await probe.expect(Terminated) == Terminated(ref, None)


async def test_probes_are_actors_handed_to_other_actors() -> None:
    class Greeter(Actor):
        async def receive(self, message: Any) -> Any:
            await message.tell("hello")

    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        greeter = await system.spawn(Greeter)
        await greeter.tell(probe.ref)
        await probe.expect("hello")


# -- virtual time -------------------------------------------------------------


async def test_virtual_time_jumps_over_sleeps() -> None:
    start = anyio.current_time()
    await anyio.sleep(3600)
    assert anyio.current_time() - start == pytest.approx(3600)


def test_virtual_time_values() -> None:
    backend, options = virtual_time("asyncio")
    assert backend == "asyncio"
    assert options["loop_factory"] is VirtualClockEventLoop
    backend, options = virtual_time("trio")
    assert backend == "trio"
    assert options["clock"].autojump_threshold == 0
    with pytest.raises(ValueError, match="not 'curio'"):
        virtual_time("curio")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_run_applies_the_virtual_clock(backend: str) -> None:
    # anyio 4.11 to 4.13 dropped backend_options on trio (hence our floor of
    # 4.14): the "virtual" run then slept for real.
    name, options = virtual_time(backend)

    async def main() -> float | None:
        if backend == "trio":
            import trio

            if trio.lowlevel.current_clock() is not options["clock"]:
                return None
        elif not isinstance(asyncio.get_running_loop(), VirtualClockEventLoop):
            return None
        start = anyio.current_time()
        await anyio.sleep(3600)
        return anyio.current_time() - start

    assert anyio.run(main, backend=name, backend_options=options) == pytest.approx(3600)


def test_the_virtual_clock_event_loop_starts_at_zero_and_jumps() -> None:
    async def main() -> float:
        await asyncio.sleep(10)
        return asyncio.get_running_loop().time()

    loop = VirtualClockEventLoop()
    try:
        assert loop.time() == 0
        assert loop.run_until_complete(main()) == 10
    finally:
        loop.close()


# -- the actor_system fixture -------------------------------------------------


async def test_the_actor_system_fixture(actor_system: ActorSystem) -> None:
    ref = await actor_system.spawn(Echo)
    assert await ref.ask("hi") == "hi"
    assert actor_system.name == "test"


INNER_TESTS = """
import pytest

import actors

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


class Crash(actors.Actor):
    async def receive(self, message):
        raise ValueError("crashed on purpose")


async def test_root_failure(actor_system):
    ref = await actor_system.spawn(Crash, name="crasher")
    await ref.tell("boom")


async def test_clean(actor_system):
    ref = await actor_system.spawn(actors.Actor, name="idle")
    await ref.tell("hi")
"""


def test_the_fixture_fails_the_test_when_a_failure_reaches_the_root(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_inner=textwrap.dedent(INNER_TESTS))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=4, errors=2)
    text = result.stdout.str()
    assert "ERROR at teardown of test_root_failure[asyncio]" in text
    assert "ERROR at teardown of test_root_failure[trio]" in text
    assert "ValueError: crashed on purpose" in text
    assert "raised in actor /user/crasher" in text


def test_actors_testing_has_the_fixture_registered_as_an_entry_point() -> None:
    from importlib.metadata import entry_points

    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("actors") == "actors.testing._plugin"
    assert actors.testing.TestProbe is TestProbe
